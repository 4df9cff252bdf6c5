"""What machine a benchmark figure was taken on: CPU model, ISA class, cores, torch build, load.

Every benchmark script prints ``describe()`` first and stores ``machine_info()`` in its results,
so a figure always names its CPU. The ISA class is what the kernels may use:

- ``AMX``: AMX tiles with bfloat16 (Intel Sapphire Rapids and later);
- ``AVX-512+BF16``: AVX-512 with bfloat16 dot products (AVX512_BF16, e.g. AMD Zen 4);
- ``AVX-512``; ``AVX2``; ``other``.

It is read from ``/proc/cpuinfo`` (the hardware) and then capped by the ISA that oneDNN and MKL
were told to use: ``ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` make torch's matrix
kernels dispatch as on an AVX2-only CPU, and the record then says ``AVX2 (capped by env)``.
"""

from __future__ import annotations

import os
import platform

ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY",
           "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def isa_class(flags: set[str]) -> str:
    """The best matrix-product ISA of a CPU from its /proc/cpuinfo flags."""
    if {"amx_tile", "amx_bf16"} <= flags:
        return "AMX"
    if "avx512f" in flags:
        return "AVX-512+BF16" if "avx512_bf16" in flags else "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return "other"


def _env_cap() -> str | None:
    """The ISA the ONEDNN/MKL env vars cap the kernels at, if they do."""
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
        v = os.environ.get(name, "").upper()
        if v.startswith("AVX2"):
            return "AVX2"
        if v.startswith("AVX512") and "AMX" not in v:
            return "AVX-512"
    return None


def machine_info() -> dict:
    """A JSON-able record of the CPU, its ISA class, cores, torch build, ISA env vars and load."""
    import torch

    model, flags = _cpuinfo()
    hw = isa_class(flags)
    cap = _env_cap()
    order = ["other", "AVX2", "AVX-512", "AVX-512+BF16", "AMX"]
    effective = cap if cap and order.index(cap) < order.index(hw) else hw
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    info = {
        "cpu_model": model,
        "isa_hardware": hw,
        "isa_effective": effective + (" (capped by env)" if effective != hw else ""),
        "isa_flags": sorted(flags & {"avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16",
                                      "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"}),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "mkldnn": torch.backends.mkldnn.is_available(),
        "env": {k: os.environ[k] for k in ISA_ENV if k in os.environ},
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def describe(info: dict | None = None) -> str:
    """One line for the top of a benchmark's output."""
    info = info or machine_info()
    env = " ".join(f"{k}={v}" for k, v in info["env"].items()) or "no ISA env vars"
    quiet = "quiet" if info["load_average_1min"] < 0.5 * info["cores"] + 0.5 else "contended"
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (f"# machine: {info['cpu_model']}, ISA {info['isa_effective']} (hardware {info['isa_hardware']}), "
            f"{info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads, "
            f"capability {info['torch_cpu_capability']}, {info['blas']}){gpu}; {env}; "
            f"load average {info['load_average_1min']} at the start: {quiet}")


if __name__ == "__main__":
    import json

    print(describe())
    print(json.dumps(machine_info(), indent=1))
