"""Devices and numerical precision: the one place that decides what runs where, and how exactly.

- :func:`resolve_device` picks a device by name (never a hard-coded one);
  :func:`distributed_device` and :func:`process_group_backend` place each torchrun process.
- :func:`exact_float32`: every measurement (sampling, decoding for PPL and walks, feature
  passes, BatchNorm recompute, filter responses, kNN and SVM products) runs inside it, so
  float32 convolutions and matrix products are IEEE float32 on every device, never TF32 (which
  PyTorch allows for cuDNN convolutions by default on Ampere and newer GPUs) nor a bf16 CPU path.
- :func:`supports_float64` / :func:`float64_device`: Apple's MPS has no float64; float64 work
  moves to the CPU there.
- :func:`training_autocast`: bf16 autocast in training, on purpose and only where bf16 is
  native (CUDA compute capability >= 8.0); :func:`training_determinism` for ``--deterministic``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from gan_probe.errors import GanProbeError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU. ``cuda:1`` style names work too."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise GanProbeError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}", param="device")
    if base == "cuda" and not torch.cuda.is_available():
        raise GanProbeError("device cuda asked for, but no CUDA GPU is visible to torch", param="device")
    if base == "mps" and not _mps_available():
        raise GanProbeError("device mps asked for, but MPS is not available", param="device")
    return torch.device(name)


# ---------------------------------------------------------------- several processes (torchrun)
def distributed_device(name: str, local_rank: int) -> torch.device:
    """The device of the torchrun process ``local_rank``: with ``auto`` on a CUDA machine and with
    any CUDA name (``cuda``, ``cuda:N``), ``cuda:LOCAL_RANK`` (one GPU per process, as torchrun
    expects; pick the GPUs with ``CUDA_VISIBLE_DEVICES``); otherwise :func:`resolve_device`'s."""
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise GanProbeError(f"process LOCAL_RANK {local_rank} needs cuda:{local_rank}, but torch sees {count} "
                            f"GPU(s); start at most {count} processes per node", param="device")
    return torch.device("cuda", local_rank)


def process_group_backend(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for everything else."""
    return "nccl" if device.type == "cuda" else "gloo"


# ---------------------------------------------------------------- exact float32
# (backend, op) leaves of torch >= 2.9's fp32_precision tree that a float32 conv or product reads
_FP32_LEAVES = (("cuda", "matmul"), ("cuda", "conv"), ("cuda", "rnn"),
                ("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn"))


def _has_fp32_precision_api() -> bool:
    """torch >= 2.9: the ``fp32_precision`` tree (``torch.backends.cuda.matmul.fp32_precision``...)."""
    return hasattr(torch._C, "_get_fp32_precision_getter") and hasattr(torch._C, "_set_fp32_precision_setter")


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """IEEE float32 convolutions and matrix products inside (no TF32 on CUDA, no bf16/TF32 oneDNN
    path on the CPU), whatever the caller set; every flag is put back on exit.

    With torch >= 2.9 it sets the ``fp32_precision`` leaves and keeps the legacy flags in step, so
    neither API's getters see the "mix" torch refuses (``torch.backends.cuda.matmul.allow_tf32``
    raises once ``torch.backends.cuda.matmul.fp32_precision = "tf32"`` was set); on exit the legacy
    flags and then each leaf's effective precision are restored. Older torch: ``allow_tf32`` flags.
    The flags are process-wide: cheap to flip, so it wraps each batch, and it also runs on the CPU."""
    if not _has_fp32_precision_api():
        saved = (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = saved[0]
            torch.set_float32_matmul_precision(saved[1])
        return
    get, put = torch._C._get_fp32_precision_getter, torch._C._set_fp32_precision_setter
    leaves = {leaf: get(*leaf) for leaf in _FP32_LEAVES}  # effective precisions (a leaf's "none" reads its parent's)
    for leaf in _FP32_LEAVES:
        put(*leaf, "ieee")
    # the legacy state behind the old getters, readable now that no leaf disagrees with it
    matmul_legacy = torch.get_float32_matmul_precision()
    try:
        cudnn_legacy = torch._C._get_cudnn_allow_tf32()  # conv and rnn are "ieee": reads if it is False
    except RuntimeError:
        cudnn_legacy = True
    torch._C._set_cudnn_allow_tf32(False)  # (sets conv and rnn to "none")
    torch.set_float32_matmul_precision("highest")
    for leaf in _FP32_LEAVES:
        put(*leaf, "ieee")
    try:
        yield
    finally:
        torch._C._set_cudnn_allow_tf32(cudnn_legacy)
        torch.set_float32_matmul_precision(matmul_legacy)
        for leaf, value in leaves.items():
            put(*leaf, value)


def tf32_state() -> dict[str, bool]:
    """Whether cuDNN convolutions and CUDA matrix products may use TF32 now (for checks and tests)."""
    if _has_fp32_precision_api():
        get = torch._C._get_fp32_precision_getter
        return {"cudnn_conv": get("cuda", "conv") == "tf32", "cuda_matmul": get("cuda", "matmul") == "tf32"}
    return {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
            "cuda_matmul": torch.get_float32_matmul_precision() != "highest"}


# ---------------------------------------------------------------- float64
def supports_float64(device: str | torch.device) -> bool:
    """False on Apple's MPS, which has no float64 tensors."""
    return torch.device(device).type != "mps"


def float64_device(device: str | torch.device) -> torch.device:
    """Where float64 work for ``device`` runs: the device itself, or the CPU where it has no float64."""
    device = torch.device(device)
    return device if supports_float64(device) else torch.device("cpu")


# ---------------------------------------------------------------- training
def bf16_autocast_ok(device: str | torch.device) -> bool:
    """bf16 autocast pays only where bf16 is native: CUDA GPUs of compute capability >= 8.0
    (Ampere and newer). Older GPUs emulate it (slower than float32); the CPU trains in float32."""
    device = torch.device(device)
    if device.type != "cuda":
        return False
    return torch.cuda.get_device_capability(device)[0] >= 8


def training_autocast(device: str | torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """The autocast training's forward passes run under: bf16 where :func:`bf16_autocast_ok`
    (and ``enabled``), else none (float32). Measurements never use it."""
    if enabled and bf16_autocast_ok(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


CUBLAS_WORKSPACE = ":4096:8"  # what deterministic cuBLAS needs (CUDA >= 10.2)


@contextlib.contextmanager
def training_determinism(device: str | torch.device, deterministic: bool = False) -> Iterator[None]:
    """Backend flags for training on ``device``: with ``deterministic``, deterministic algorithms
    only (an op without one raises), cuDNN deterministic and its autotuner off; otherwise, on CUDA,
    the cuDNN autotuner on (faster, not bitwise repeatable). Every flag is put back on exit."""
    device = torch.device(device)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
