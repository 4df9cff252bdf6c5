"""Pick a torch device by name; never hard-code one."""

from __future__ import annotations

import torch

from gan_probe.errors import GanProbeError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU. ``cuda:1`` style names work too."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise GanProbeError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise GanProbeError("device cuda asked for, but no CUDA GPU is visible to torch", param="device")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GanProbeError("device mps asked for, but MPS is not available", param="device")
    return torch.device(name)
