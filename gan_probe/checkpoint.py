"""Checkpoints: config + G + D + optimizers + step + RNG state, in one file.

Written atomically (temp file + rename), loaded with ``torch.load(weights_only=True)``
so a malicious pickle is refused, never executed. Every command that takes a
checkpoint accepts a file or a RUN_DIR (its ``checkpoints/last.pt``).
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from gan_probe.errors import GanProbeError
from gan_probe.io import atomic_path
from gan_probe.models import DCGANConfig, Discriminator, Generator

FORMAT = "gan-probe/dcgan-checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a RUN_DIR whose latest checkpoint is taken (a
    :class:`gan_probe.models.cards.ModelSpec` stays one, with its options, on the resolved path)."""
    p = _resolve(Path(path))
    with_path = getattr(path, "with_path", None)  # a ModelSpec: keep how to run the model
    return with_path(p) if with_path is not None else p


def _resolve(p: Path) -> Path:
    if p.is_dir():
        for candidate in (checkpoint_dir(p) / LAST, p / LAST):
            if candidate.is_file():
                return candidate
        raise GanProbeError(f"{p} is a directory with no checkpoint (looked for checkpoints/{LAST})")
    if not p.exists():
        raise GanProbeError(f"checkpoint not found: {p}")
    return p


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (see :func:`make_state`) atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a gan-probe checkpoint (file or RUN_DIR)."""
    p = resolve_checkpoint(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses arbitrary objects: report it, never execute it
        unsafe = re.search(r"Unsupported global[^.\n]*", str(e))
        if unsafe:
            raise GanProbeError(f"{p} is not a safe gan-probe checkpoint: it holds Python objects that "
                                f"gan-probe refuses to run ({unsafe.group(0)[:120]})") from e
        raise GanProbeError(f"{p} is truncated or not a torch checkpoint (unreadable pickle)") from e
    except IsADirectoryError as e:
        raise GanProbeError(f"{p} is a directory, not a checkpoint") from e
    except Exception as e:  # noqa: BLE001 - torch raises many kinds on a damaged or foreign file
        raise GanProbeError(f"{p} is truncated or not a torch checkpoint ({type(e).__name__})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanProbeError(f"{p} is not a gan-probe checkpoint (a torch file of another kind)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise GanProbeError(f"{p} was written by a newer gan-probe (format {state['format_version']})")
    state["path"] = str(p)
    return state


def model_config(state: dict[str, Any]) -> DCGANConfig:
    """The model config a checkpoint (see :func:`load_checkpoint`) was written with."""
    try:
        return DCGANConfig.from_dict(state["model"])
    except (KeyError, TypeError) as e:  # no config, or one missing a field
        raise GanProbeError(f"{state.get('path', 'the checkpoint')} holds no valid model config "
                            f"({type(e).__name__}: {e})") from e


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Generator, DCGANConfig]:
    """G in eval mode (samples never depend on the batch) from a checkpoint, or from any model
    source (:mod:`gan_probe.models.sources`: TorchScript, model card, StyleGAN pickle)."""
    from gan_probe.models.sources import load_generator as load

    return load(path, device)


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Discriminator, DCGANConfig]:
    """D in eval mode from a checkpoint or any model source (:mod:`gan_probe.models.sources`)."""
    from gan_probe.models.sources import load_discriminator as load

    return load(path, device)


# state key -> (network class, its name in messages)
NETWORKS: dict[str, tuple[type[torch.nn.Module], str]] = {"G": (Generator, "generator"),
                                                          "D": (Discriminator, "discriminator")}


def _load_network(path: str | os.PathLike, key: str, device: str | torch.device) -> tuple[Any, DCGANConfig]:
    """The network stored under ``state[key]`` (``"G"`` or ``"D"``), built from the checkpoint's
    config, on ``device``, in eval mode. A checkpoint without that network's weights (say, a
    generator-only file asked for its discriminator) or with weights that do not fit its config
    is a :class:`GanProbeError` naming the file."""
    cls, what = NETWORKS[key]
    state = load_checkpoint(path)
    config = model_config(state)
    weights = state.get(key)
    if not isinstance(weights, dict) or not weights:
        others = [name for k, (_, name) in NETWORKS.items() if k != key and isinstance(state.get(k), dict)]
        kind = f" (a {others[0]}-only checkpoint)" if others else ""
        raise GanProbeError(f"{state['path']} holds no {what} weights{kind}; this needs the {what}")
    module = cls(config)
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise GanProbeError(f"{state['path']}: the {what} weights do not match its config") from e
    return module.to(device).eval(), config


def make_state(*, model: DCGANConfig, train: dict, G: torch.nn.Module, D: torch.nn.Module,
               opt_g: torch.optim.Optimizer | None, opt_d: torch.optim.Optimizer | None,
               step: int, epoch: int, rng: dict[str, Any] | None = None, world_size: int = 1) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.to_dict(),
        "train": train,
        "G": _unwrap(G).state_dict(),
        "D": _unwrap(D).state_dict(),
        "opt_g": opt_g.state_dict() if opt_g is not None else None,
        "opt_d": opt_d.state_dict() if opt_d is not None else None,
        "step": int(step),
        "epoch": int(epoch),
        "rng": rng or {},
        "world_size": int(world_size),  # processes that trained it (a resume must use as many)
    }


def export_for_release(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A copy of a checkpoint without the optimizer states (about a third of the size):
    every analysis loads it, ``train --resume`` refuses it."""
    state = load_checkpoint(src)
    state.pop("path")
    state["opt_g"] = state["opt_d"] = None
    return save_checkpoint(dst, state)


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    m = getattr(m, "module", m)
    return getattr(m, "_orig_mod", m)
