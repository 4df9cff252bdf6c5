"""Naming a model: :class:`ModelSpec` (a path plus how to run it), :class:`ModelInfo` (what the
analyses need to know about it) and the model card / sidecar keys, read and checked here (see
:mod:`gan_probe.models.sources` for the keys and the sources that use them)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gan_probe.errors import GanProbeError

KINDS = ("generator", "discriminator")
RANGES = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))


class ModelSpec(os.PathLike):
    """A model path plus how to run it: ``class_index`` (conditional G: the class every sample
    gets; None: each sample's class is derived from its z), ``psi`` (StyleGAN truncation),
    ``trust_pickle`` (allow unpickling a StyleGAN pickle). ``str()`` / ``os.fspath()`` give the
    path and every other attribute is the path's (``.name``, ``.parent``, ``.is_file()``), so a spec
    goes wherever a checkpoint path went and carries its options to where the model is loaded."""

    def __init__(self, path: str | os.PathLike, *, class_index: int | None = None, psi: float = 1.0,
                 trust_pickle: bool = False):
        self.path = Path(path)
        self.class_index = class_index
        self.psi = psi
        self.trust_pickle = trust_pickle

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "path":
            raise AttributeError(name)
        return getattr(self.path, name)

    def __truediv__(self, other) -> Path:
        return self.path / other

    def with_path(self, path: str | os.PathLike) -> "ModelSpec":
        """The same options on another path (a RUN_DIR resolved to its checkpoint file)."""
        return ModelSpec(path, class_index=self.class_index, psi=self.psi, trust_pickle=self.trust_pickle)

    def has_options(self) -> bool:
        """Whether any of class_index, psi, trust_pickle is set (then the path must name a model)."""
        return self.class_index is not None or self.psi != 1.0 or self.trust_pickle

    def run_options(self) -> dict:
        """The options that change what the model outputs (class, psi): part of a sample's cache key."""
        return {k: v for k, v in (("class_index", self.class_index), ("psi", self.psi))
                if v is not None and not (k == "psi" and v == 1.0)}

    def cli_options(self) -> dict:
        """The command-line options that reproduce this spec (those not at their default)."""
        return {"class": self.class_index, "psi": None if self.psi == 1.0 else self.psi,
                "trust_pickle": self.trust_pickle}

    def __repr__(self) -> str:
        return f"ModelSpec({str(self.path)!r}, class_index={self.class_index}, psi={self.psi})"


def as_spec(spec: str | os.PathLike | ModelSpec) -> ModelSpec:
    return spec if isinstance(spec, ModelSpec) else ModelSpec(spec)


@dataclass
class ModelInfo:
    """What the analyses need to know about a model (DCGANConfig's field names where shared)."""

    kind: str
    source: str
    nz: int = 0
    z_shape: tuple[int, ...] = ()
    z_dist: str = "normal"
    image_size: int = 0
    channels: int = 0
    num_classes: int = 0
    output_range: tuple[float, float] = (-1.0, 1.0)
    layers: list[str] | None = None
    fingerprint: str = ""  # sha256 over the model's content (files it was built from)
    path: str = ""
    card: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source, "z_dim": self.nz, "z_shape": list(self.z_shape),
                "z_dist": self.z_dist, "image_size": self.image_size, "channels": self.channels,
                "num_classes": self.num_classes, "output_range": list(self.output_range), "layers": self.layers}


# ------------------------------------------------------------------ card reading
def _fail(where: str, what: str) -> GanProbeError:
    return GanProbeError(f"{where}: {what}")


def _key(card: dict, name: str, where: str, kind: type | tuple = int):
    if name not in card:
        raise _fail(where, f"missing key {name!r} (see docs/your-model.md for the card keys)")
    v = card[name]
    if not isinstance(v, kind) or isinstance(v, bool):
        raise _fail(where, f"{name!r} must be {getattr(kind, '__name__', kind)} (found {v!r})")
    return v


def info_from_card(card: dict, where: str, kind: str, source: str) -> ModelInfo:
    """A :class:`ModelInfo` from card keys, each checked (missing key, bad value: one line)."""
    if card.get("kind", kind) != kind:
        raise _fail(where, f"is a {card.get('kind')} card; this needs a {kind}")
    rng = tuple(float(v) for v in card.get("output_range", card.get("input_range", [-1, 1])))
    if rng not in RANGES:
        raise _fail(where, f"output_range must be one of [-1, 1], [0, 1], [0, 255] (found {list(rng)})")
    info = ModelInfo(kind, source, output_range=rng, image_size=_key(card, "image_size", where),
                     channels=_key(card, "channels", where), num_classes=int(card.get("num_classes", 0)),
                     path=where, card=card)
    if kind == "generator":
        info.nz = _key(card, "z_dim", where)
        shape = card.get("z_shape", [info.nz])
        if not isinstance(shape, list) or not shape or int(torch.tensor(shape).prod()) != info.nz:
            raise _fail(where, f"z_shape {shape!r} must be a list whose product is z_dim {info.nz}")
        info.z_shape = tuple(int(s) for s in shape)
        info.z_dist = card.get("z_dist", "normal")
        if info.z_dist not in ("normal", "uniform"):
            raise _fail(where, f"z_dist must be normal or uniform (found {info.z_dist!r})")
    else:
        layers = card.get("layers")
        if layers is not None and (not isinstance(layers, list) or not all(isinstance(s, str) for s in layers)):
            raise _fail(where, f"layers must be a list of layer names (found {layers!r})")
        info.layers = layers
    return info


def read_card(path: Path) -> dict:
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise GanProbeError(f"model card not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GanProbeError(f"{path} is not a JSON model card ({e})") from None
    if not isinstance(card, dict):
        raise GanProbeError(f"{path} is not a JSON model card (an object of keys)")
    return card


def file_digest(*paths: Path, extra: Any = None) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _rel(card_path: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else card_path.parent / p


