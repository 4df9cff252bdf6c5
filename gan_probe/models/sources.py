"""Model sources: one way to name any generator or discriminator.

``load_generator(spec)`` / ``load_discriminator(spec)`` return ``(module, info)`` whatever the
source. ``info`` is a :class:`ModelInfo` (it has the fields the analyses read from a
``DCGANConfig``: ``nz``, ``z_dist``, ``image_size``, ``channels``), and the module is

- for a generator, a :class:`GeneratorAdapter`: ``g(z)`` takes flat z (N x nz, drawn from
  ``info.z_dist``), reshapes it to the model's ``z_shape``, adds the class label of a
  conditional model and returns images rescaled from the model's ``output_range`` to
  [-1, 1] (the analyses' convention), so seeded sampling (:mod:`gan_probe.sampling`) works
  unchanged: sample i of seed s is the same whatever n or the batch size;
- for a discriminator, a :class:`DiscriminatorAdapter` whose ``features(images)`` gives the
  maps of the chosen ``layers`` (the paper's disc features max-pool each to 4x4).

Sources (one function + one :func:`register_source` call each), tried in order:

- ``checkpoint``: a gan-probe checkpoint or RUN_DIR (as always);
- ``stylegan``: a StyleGAN2-ADA / StyleGAN3 network pickle (``.pkl``), only with
  ``trust_pickle`` (unpickling runs code; without it nothing is unpickled);
- ``torchscript``: a ``torch.jit.save`` file with a sidecar ``FILE.json`` beside it;
- ``card``: a JSON model card ``{"factory": "pkg.mod:callable", "kwargs": {...},
  "state_dict": "d.pt", ...}`` (the factory runs the user's code), or
  ``{"torchscript": "g.ts", ...}`` / ``{"pickle": "net.pkl", ...}``.

Card / sidecar keys (relative paths resolve against the card's folder): ``kind``
(generator | discriminator), ``z_dim``, ``z_shape``, ``z_dist`` (normal | uniform),
``output_range`` ([-1, 1], [0, 1] or [0, 255]; for a discriminator: the range it expects
its input in), ``image_size``, ``channels``, ``num_classes`` (0: unconditional; a
conditional generator is called ``G(z, labels)`` with int64 labels), ``layers``
(discriminator layers to read features from; default: every conv output after its
activation). Every model is checked with one probe forward at load: wrong output shape or
channels, output outside the declared range, NaN, a z of the wrong size are one
:class:`GanProbeError` line naming what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gan_probe.errors import GanProbeError

KINDS = ("generator", "discriminator")
RANGES = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))
ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "PReLU", "ReLU6", "SELU", "CELU", "Mish", "Tanh",
               "Sigmoid", "Hardswish", "Softplus")


class ModelSpec(os.PathLike):
    """A model path plus how to run it: ``class_index`` (conditional G: the class every sample
    gets; None: each sample's class is derived from its z), ``psi`` (StyleGAN truncation),
    ``trust_pickle`` (allow unpickling a StyleGAN pickle). ``str()`` / ``os.fspath()`` give the
    path, so a spec goes wherever a checkpoint path went."""

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


# ------------------------------------------------------------------ adapters
def labels_from_z(z: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A class per row of z, a function of that row's bytes only (so sample i of seed s keeps its
    class whatever n or the batch size)."""
    rows = z.detach().float().cpu().contiguous().numpy()
    return torch.tensor([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little")
                         % num_classes for r in rows], dtype=torch.int64)


class GeneratorAdapter(nn.Module):
    """Flat z (N x nz) -> images in [-1, 1], whatever the model's z shape, labels and range."""

    def __init__(self, net: nn.Module, info: ModelInfo, call: Callable | None = None,
                 class_index: int | None = None):
        super().__init__()
        self.net = net
        self.info = info
        self.call = call or _plain_call
        self.class_index = class_index

    def labels(self, z: torch.Tensor) -> torch.Tensor | None:
        k = self.info.num_classes
        if not k:
            return None
        if self.class_index is not None:
            return torch.full((len(z),), self.class_index, dtype=torch.int64, device=z.device)
        return labels_from_z(z, k).to(z.device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(len(z), *self.info.z_shape)
        out = self.call(self.net, x, self.labels(z))
        lo, hi = self.info.output_range
        return (out.float() - lo) * (2.0 / (hi - lo)) - 1.0


def _plain_call(net, z, labels):
    return net(z) if labels is None else net(z, labels)


class DiscriminatorAdapter(nn.Module):
    """A user's D: ``forward(images in [-1, 1])`` and ``features(images)``, the maps of
    ``info.layers`` (forward hooks on an eager model; a TorchScript ``nn.Sequential`` is run
    layer by layer, as TorchScript modules take no hooks)."""

    def __init__(self, net: nn.Module, info: ModelInfo):
        super().__init__()
        self.net = net
        self.info = info

    def scale(self, images: torch.Tensor) -> torch.Tensor:
        lo, hi = self.info.output_range
        return (images.float() + 1.0) * ((hi - lo) / 2.0) + lo

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.scale(images))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.scale(images)
        wanted = list(self.info.layers or [])
        if isinstance(self.net, torch.jit.ScriptModule):
            got = {}
            for name, m in sequential_layers(self.net, self.info.path):
                x = m(x)
                if name in wanted:
                    got[name] = x
                if len(got) == len(wanted):
                    break
            return [got[n] for n in wanted]
        modules = dict(self.net.named_modules())
        got: dict[str, torch.Tensor] = {}
        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: got.setdefault(n, o)) for n in wanted]
        try:
            self.net(x)
        finally:
            for h in hooks:
                h.remove()
        return [got[n] for n in wanted]


    # ---- what `gan-probe filters` needs of a user's D
    def widths(self) -> list[int]:
        """Channels of each feature layer (one probe forward)."""
        info = self.info
        with torch.no_grad():
            x = torch.zeros(1, info.channels, info.image_size, info.image_size,
                            device=next(self.net.parameters()).device)
            return [int(m.shape[1]) for m in self.features(x)]

    def first_conv(self) -> nn.Module:
        for _, m in self.net.named_modules():
            if module_type(m) == "Conv2d":
                return m
        raise GanProbeError(f"{self.info.path}: the discriminator has no Conv2d layer to show the filters of")

    def check_guidable(self) -> None:
        """Guided backprop swaps each ReLU / LeakyReLU module for its guided rule; a TorchScript model
        or any other activation module is a clear error naming it."""
        if isinstance(self.net, torch.jit.ScriptModule):
            raise GanProbeError(f"{self.info.path}: guided backprop replaces the model's rectifiers, which a "
                                "TorchScript model does not allow; give a factory card (docs/your-model.md)")
        other = [(n, module_type(m)) for n, m in self.net.named_modules()
                 if module_type(m) in ACTIVATIONS and module_type(m) not in ("ReLU", "LeakyReLU")]
        if other:
            n, t = other[0]
            raise GanProbeError(f"{self.info.path}: guided backprop handles ReLU and LeakyReLU; layer {n!r} is a "
                                f"{t}, whose guided rule gan-probe does not define")


def module_type(m: nn.Module) -> str:
    return getattr(m, "original_name", None) or type(m).__name__


def sequential_layers(net: nn.Module, where: str) -> list[tuple[str, nn.Module]]:
    """The leaf layers of a (nested) ``nn.Sequential`` in order; anything else is an error."""
    if module_type(net) != "Sequential":
        raise GanProbeError(f"{where}: a TorchScript discriminator takes no forward hooks, so gan-probe reads its "
                            f"features by running it layer by layer, which needs an nn.Sequential (found "
                            f"{module_type(net)} with its own forward); give a factory card instead")
    out = []
    for name, child in net.named_children():
        if module_type(child) == "Sequential":
            out += [(f"{name}.{n}", m) for n, m in sequential_layers(child, where)]
        else:
            out.append((name, child))
    return out


def default_layers(net: nn.Module) -> list[str]:
    """Every conv's output after its activation: the first activation module after each conv
    (before the next conv); a conv with none after it (the logit) is left out. With no
    activation modules at all (functional activations), every conv but the last."""
    order = [(n, module_type(m)) for n, m in net.named_modules() if n]
    if isinstance(net, torch.jit.ScriptModule):
        order = [(n, module_type(m)) for n, m in sequential_layers(net, "the model")]
    convs = [i for i, (_, t) in enumerate(order) if t == "Conv2d"]
    layers = []
    for j, i in enumerate(convs):
        stop = convs[j + 1] if j + 1 < len(convs) else len(order)
        act = next((n for n, t in order[i + 1:stop] if t in ACTIVATIONS), None)
        if act is not None:
            layers.append(act)
    if not layers:
        layers = [order[i][0] for i in convs[:-1]] or [order[i][0] for i in convs]
    return layers


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


def import_factory(text: str, where: str) -> Callable:
    """``pkg.mod:callable`` imported (this runs the user's code)."""
    mod, _, name = str(text).partition(":")
    if not mod or not name:
        raise _fail(where, f"factory must be 'package.module:callable' (found {text!r})")
    try:
        obj = importlib.import_module(mod)
        for part in name.split("."):
            obj = getattr(obj, part)
    except ImportError as e:
        raise _fail(where, f"factory {text!r} does not import ({e}); put its package on PYTHONPATH") from None
    except AttributeError:
        raise _fail(where, f"factory {text!r}: module {mod} has no {name}") from None
    if not callable(obj):
        raise _fail(where, f"factory {text!r} is not callable")
    return obj


def build_factory(card: dict, card_path: Path, where: str, weights: bool = True) -> nn.Module:
    factory = import_factory(_key(card, "factory", where, str), where)
    kwargs = card.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _fail(where, f"kwargs must be an object (found {kwargs!r})")
    try:
        net = factory(**kwargs)
    except Exception as e:  # noqa: BLE001 - the user's code
        raise _fail(where, f"factory {card['factory']}(**kwargs) failed: {type(e).__name__}: {e}") from None
    if not isinstance(net, nn.Module):
        raise _fail(where, f"factory {card['factory']} returned {type(net).__name__}, not a torch nn.Module")
    if weights and card.get("state_dict"):
        sd_path = _rel(card_path, card["state_dict"])
        try:
            sd = torch.load(sd_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise _fail(where, f"state_dict file not found: {sd_path}") from None
        except Exception as e:  # noqa: BLE001 - foreign file
            raise _fail(where, f"{sd_path} is not a torch state dict ({type(e).__name__})") from None
        try:
            net.load_state_dict(sd)
        except RuntimeError as e:
            raise _fail(where, f"state_dict does not fit the factory's model: {str(e).splitlines()[0]}") from None
    return net


# ------------------------------------------------------------------ probe check
@torch.no_grad()
def check_generator(g: GeneratorAdapter, where: str, device) -> None:
    """One probe forward: shape, channels, finiteness and range as declared."""
    from gan_probe.sampling import latents

    info = g.info
    z = latents(info, 0, 0, 2).to(device)
    try:
        out = g(z)
    except Exception as e:  # noqa: BLE001 - the user's model rejecting our z
        raise _fail(where, f"the generator failed on z of shape {[2, *info.z_shape]}"
                    f"{' with int64 labels' if info.num_classes else ''} (z_dim {info.nz}, z_shape "
                    f"{list(info.z_shape)}): {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    want = (2, info.channels, info.image_size, info.image_size)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise _fail(where, f"the generator's output should be N x channels x image_size x image_size = {want} "
                    f"(found {found})")
    if not torch.isfinite(out).all():
        raise _fail(where, "the generator's output holds NaN or inf on a probe z")
    lo, hi = float(out.min()), float(out.max())
    if info.source != "stylegan" and (lo < -1.01 or hi > 1.01):  # StyleGAN outputs overshoot by design
        span = info.output_range[1] - info.output_range[0]
        raw = [round((v + 1) / 2 * span + info.output_range[0], 4) for v in (lo, hi)]
        raise _fail(where, f"the generator's output should lie in output_range {list(info.output_range)} "
                    f"(found values in {raw})")


@torch.no_grad()
def check_discriminator(d: DiscriminatorAdapter, where: str, device) -> None:
    info = d.info
    x = torch.zeros(2, info.channels, info.image_size, info.image_size, device=device)
    known = [n for n, _ in (sequential_layers(d.net, where) if isinstance(d.net, torch.jit.ScriptModule)
                            else d.net.named_modules()) if n]
    missing = [n for n in info.layers if n not in known]
    if missing:
        raise _fail(where, f"layers {missing} are not layers of this model (it has: {', '.join(known[:30])})")
    try:
        maps = d.features(x)
    except GanProbeError:
        raise
    except Exception as e:  # noqa: BLE001
        raise _fail(where, f"the discriminator failed on images of shape {list(x.shape)}: "
                    f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    for n, m in zip(info.layers, maps):
        if not isinstance(m, torch.Tensor) or m.dim() != 4:
            found = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise _fail(where, f"layer {n} should give an N x C x H x W map (found {found})")


# ------------------------------------------------------------------ sources
SOURCES: list[tuple[str, Callable[[ModelSpec], bool], Callable[..., tuple]]] = []


def register_source(name: str, accepts: Callable[[ModelSpec], bool], load: Callable[..., tuple]) -> None:
    """``accepts(spec)``: whether ``spec`` is this source's; ``load(spec, kind, device)`` ->
    ``(adapter module, ModelInfo)``."""
    SOURCES.append((name, accepts, load))


def _is_checkpoint(spec: ModelSpec) -> bool:
    p = spec.path  # a missing path too: "checkpoint not found", as always
    return p.is_dir() or not p.exists() or p.suffix.lower() in (".pt", ".pth", ".ckpt")


def _load_checkpoint(spec: ModelSpec, kind: str, device):
    from gan_probe.checkpoint import _load_network

    return _load_network(spec.path, "G" if kind == "generator" else "D", device)


def _is_pickle(spec: ModelSpec) -> bool:
    return spec.path.suffix.lower() == ".pkl"


def _load_pickle(spec: ModelSpec, kind: str, device, card: dict | None = None, card_path: Path | None = None):
    from gan_probe.models.stylegan import load_stylegan

    return load_stylegan(spec, kind, device, card or {}, card_path)


def _is_torchscript(spec: ModelSpec) -> bool:
    return spec.path.suffix.lower() != ".json" and spec.path.with_name(spec.path.name + ".json").is_file()


def _load_torchscript(spec: ModelSpec, kind: str, device):
    side = spec.path.with_name(spec.path.name + ".json")
    return _torchscript(spec, kind, device, read_card(side), spec.path, side)


def _torchscript(spec, kind, device, card, ts_path: Path, card_path: Path):
    where = str(card_path)
    info = info_from_card(card, where, kind, "torchscript")
    try:
        net = torch.jit.load(str(ts_path), map_location="cpu")
    except (FileNotFoundError, ValueError) as e:
        raise _fail(where, f"TorchScript file not found or unreadable: {ts_path} ({e})") from None
    except RuntimeError as e:
        raise _fail(where, f"{ts_path} is not a TorchScript file ({str(e).splitlines()[0][:120]})") from None
    info.fingerprint = file_digest(ts_path, extra=info.to_dict())
    return _finish(net, info, spec, device, where)


def _is_card(spec: ModelSpec) -> bool:
    return spec.path.suffix.lower() == ".json"


def _load_card(spec: ModelSpec, kind: str, device):
    card = read_card(spec.path)
    where = str(spec.path)
    if "torchscript" in card:
        return _torchscript(spec, kind, device, card, _rel(spec.path, card["torchscript"]), spec.path)
    if "pickle" in card:
        return _load_pickle(ModelSpec(_rel(spec.path, card["pickle"]), class_index=spec.class_index,
                                      psi=card.get("psi", spec.psi), trust_pickle=spec.trust_pickle),
                            kind, device, card, spec.path)
    info = info_from_card(card, where, kind, "card")
    net = build_factory(card, spec.path, where)
    files = [spec.path] + ([_rel(spec.path, card["state_dict"])] if card.get("state_dict") else [])
    info.fingerprint = file_digest(*files, extra=info.to_dict())
    return _finish(net, info, spec, device, where)


def _finish(net: nn.Module, info: ModelInfo, spec: ModelSpec, device, where: str, call=None):
    net = net.to(device).eval()
    if info.kind == "generator":
        if spec.class_index is not None and not 0 <= spec.class_index < max(info.num_classes, 0):
            raise GanProbeError(f"class_index {spec.class_index} is out of range: the generator has "
                                f"{info.num_classes} classes" + (" (it is unconditional)" if not info.num_classes
                                                                 else ""), param="class_index")
        g = GeneratorAdapter(net, info, call, spec.class_index).eval()
        check_generator(g, where, device)
        return g, info
    if info.layers is None:
        info.layers = default_layers(net)
        if not info.layers:
            raise _fail(where, "found no Conv2d layer to read features from; name them in the card's 'layers'")
    d = DiscriminatorAdapter(net, info).eval()
    check_discriminator(d, where, device)
    return d, info


register_source("stylegan", _is_pickle, _load_pickle)
register_source("torchscript", _is_torchscript, _load_torchscript)  # before checkpoint: a .pt may be TorchScript
register_source("card", _is_card, _load_card)
register_source("checkpoint", _is_checkpoint, _load_checkpoint)


def _load(spec, kind: str, device) -> tuple[nn.Module, Any]:
    spec = as_spec(spec)
    for _name, accepts, load in SOURCES:
        if accepts(spec):
            return load(spec, kind, device)
    p = spec.path
    hint = f" (a TorchScript file needs its sidecar {p.name}.json)" if p.is_file() else ""
    raise GanProbeError(f"{p} is not a model gan-probe can load: a checkpoint, RUN_DIR, TorchScript file with a "
                        f"sidecar, model card (.json) or StyleGAN pickle (.pkl){hint}")


def load_generator(spec, device: str | torch.device = "cpu") -> tuple[nn.Module, Any]:
    """``(G, info)`` from any source: G maps flat z (N x info.nz) to images in [-1, 1]."""
    return _load(spec, "generator", device)


def load_discriminator(spec, device: str | torch.device = "cpu") -> tuple[nn.Module, Any]:
    """``(D, info)`` from any source: D.features(images in [-1, 1]) gives its chosen layers' maps."""
    return _load(spec, "discriminator", device)


def is_foreign(spec) -> bool:
    """Whether ``spec`` names a model that is not a gan-probe checkpoint / RUN_DIR."""
    s = as_spec(spec)
    return s.path.is_file() and (_is_pickle(s) or _is_torchscript(s) or _is_card(s))


def model_fingerprint(spec) -> str:
    """sha256 of a model's content: the checkpoint file, or everything a card / TorchScript
    file / pickle is built from (read without running the model)."""
    from gan_probe.checkpoint import resolve_checkpoint

    s = as_spec(spec)
    if not is_foreign(s):
        return file_digest(resolve_checkpoint(s.path))
    if _is_pickle(s):
        return file_digest(s.path)
    if _is_torchscript(s):
        return file_digest(s.path, s.path.with_name(s.path.name + ".json"))
    card = read_card(s.path)
    files = [s.path] + [_rel(s.path, card[k]) for k in ("state_dict", "torchscript", "pickle")
                        if isinstance(card.get(k), str) and _rel(s.path, card[k]).is_file()]
    return file_digest(*files)


def random_discriminator(spec, device, seed: int = 0) -> tuple[nn.Module, Any]:
    """The same architecture as ``spec``'s D, re-initialised with ``seed`` (factory cards only)."""
    s = as_spec(spec)
    if not s.path.is_file() or s.path.suffix.lower() != ".json" or "factory" not in (card := read_card(s.path)):
        what = ("a TorchScript file holds a compiled graph and its trained weights, not code gan-probe can "
                "re-initialise" if _is_torchscript(s) or s.path.suffix.lower() == ".json" else
                "a pickle's code is not re-run by gan-probe")
        raise GanProbeError(f"random-disc is unavailable for {s.path}: it needs the same architecture "
                            f"re-initialised and {what}; write a factory card (docs/your-model.md)")
    info = info_from_card(card, str(s.path), "discriminator", "card")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_factory(card, s.path, str(s.path), weights=False)
    info.fingerprint = file_digest(s.path, extra={"random_init_seed": seed})
    return _finish(net, info, s, device, str(s.path))


def model_info(spec, kind: str | None = None):
    """The config (a ``DCGANConfig``) of a gan-probe checkpoint, or the :class:`ModelInfo` of any
    other source (its model is loaded and probed once); ``kind`` None: the card's own kind."""
    s = as_spec(spec)
    if not is_foreign(s):
        from gan_probe.checkpoint import load_checkpoint, model_config

        return model_config(load_checkpoint(s.path))
    if kind is None:
        card = s.path if _is_card(s) else s.path.with_name(s.path.name + ".json")
        kind = read_card(card).get("kind", "generator") if card.is_file() else "generator"
    return _load(s, kind, "cpu")[1]
