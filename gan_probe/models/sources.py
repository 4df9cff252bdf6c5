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
activation; a StyleGAN D: its blocks' outputs, :func:`gan_probe.models.stylegan.block_layers`). Every model is checked with one probe forward at load: wrong output shape or
channels, output outside the declared range, NaN, a z of the wrong size are one
:class:`GanProbeError` line naming what was expected and what was found.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gan_probe.errors import GanProbeError
# re-exported: the names this module always offered (tests, gan_probe.models.stylegan, users' code)
from gan_probe.models.adapters import (ACTIVATIONS, DiscriminatorAdapter, GeneratorAdapter,  # noqa: F401
                                       check_discriminator, check_generator, default_layers, labels_from_z,
                                       module_type, sequential_layers)
from gan_probe.models.cards import (KINDS, RANGES, ModelInfo, ModelSpec, _fail, _key, _rel, as_spec,  # noqa: F401
                                    file_digest, info_from_card, read_card)


# ------------------------------------------------------------------ factory cards
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

    check_options(spec, num_classes=0, stylegan=False)
    return _load_network(spec.path, "G" if kind == "generator" else "D", device)


def check_options(spec: ModelSpec, num_classes: int, stylegan: bool) -> None:
    """``class_index`` within the generator's classes, ``psi`` only for a StyleGAN network: else one line."""
    if spec.class_index is not None and not 0 <= spec.class_index < max(num_classes, 0):
        raise GanProbeError(f"class_index {spec.class_index} is out of range: the generator has "
                            f"{num_classes} classes" + (" (it is unconditional)" if not num_classes else ""),
                            param="class_index")
    if spec.psi != 1.0 and not stylegan:
        raise GanProbeError(f"psi (truncation) applies to StyleGAN networks only; {spec.path} is not one "
                            f"(got psi {spec.psi})", param="psi")


def refuse_untrusted_pickle(spec) -> None:
    """A pickle (a ``.pkl``, or a card naming one) without ``trust_pickle``: refused before anything
    is unpickled (every command calls this through :func:`model_fingerprint` or the loaders)."""
    from gan_probe.models.stylegan import _refuse

    s = as_spec(spec)
    if s.trust_pickle or not s.path.is_file():
        return
    if _is_pickle(s):
        raise _refuse(s.path)
    if _is_card(s):
        card = read_card(s.path)
        if isinstance(card.get("pickle"), str):
            raise _refuse(_rel(s.path, card["pickle"]))


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
        with warnings.catch_warnings():  # torch >= 2.9 calls TorchScript deprecated: nothing the user can act on here
            warnings.simplefilter("ignore", FutureWarning)
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
    """The adapter of ``net`` on ``device``, probed once; ``call``: how to run it (G: ``call(net, z,
    labels)``, D: ``call(net, images)``; default: ``net(z[, labels])`` / ``net(images)``)."""
    net = net.to(device).eval()
    if info.kind == "generator":
        check_options(spec, info.num_classes, info.source == "stylegan")
        g = GeneratorAdapter(net, info, call, spec.class_index).eval()
        check_generator(g, where, device)
        return g, info
    if info.layers is None:
        info.layers = default_layers(net)
        if not info.layers:
            raise _fail(where, "found no Conv2d layer to read features from; name them in the card's 'layers'")
    d = DiscriminatorAdapter(net, info, call).eval()
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


def names_model(path) -> bool:
    """Whether ``path`` names a model: a RUN_DIR, a checkpoint file, or :func:`is_foreign`."""
    from gan_probe.checkpoint import LAST, checkpoint_dir

    p = Path(path).expanduser()
    if p.is_dir():
        return (checkpoint_dir(p) / LAST).is_file() or (p / LAST).is_file()
    return p.is_file() and (p.suffix.lower() in (".pt", ".pth", ".ckpt") or is_foreign(p))


def model_fingerprint(spec) -> str:
    """sha256 of a model's content: the checkpoint file, or everything a card / TorchScript
    file / pickle is built from (read without running the model), and the spec's class / psi when
    set. An untrusted pickle is refused here (its bytes are hashed, never unpickled)."""
    s = as_spec(spec)
    refuse_untrusted_pickle(s)
    digest = _content_fingerprint(s)
    if not s.run_options():
        return digest
    return file_digest(extra={"model": digest, **s.run_options()})


def _content_fingerprint(s: ModelSpec) -> str:
    from gan_probe.checkpoint import resolve_checkpoint

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
    """The same architecture as ``spec``'s D, re-initialised with ``seed``: a factory card's factory
    called afresh, or a StyleGAN pickle's D rebuilt from its recorded constructor arguments."""
    from gan_probe.models.stylegan import random_stylegan_discriminator

    s = as_spec(spec)
    if _is_pickle(s) and s.path.is_file():
        return random_stylegan_discriminator(s, device, seed)
    card = read_card(s.path) if s.path.is_file() and s.path.suffix.lower() == ".json" else {}
    if "pickle" in card:
        pkl = ModelSpec(_rel(s.path, card["pickle"]), trust_pickle=s.trust_pickle)
        return random_stylegan_discriminator(pkl, device, seed, card, s.path)
    if "factory" not in card:
        what = ("a TorchScript file holds a compiled graph and its trained weights, not code gan-probe can "
                "re-initialise" if _is_torchscript(s) or s.path.suffix.lower() == ".json" else
                "it is not a file gan-probe can rebuild")
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
    return _load(s, kind or model_kind(s), "cpu")[1]


def model_kind(spec) -> str:
    """A model file's ``kind`` from its card or TorchScript sidecar (read, not run); a pickle or a card
    without one: generator."""
    s = as_spec(spec)
    card = s.path if s.path.suffix.lower() == ".json" else s.path.with_name(s.path.name + ".json")
    kind = read_card(card).get("kind", "generator") if card.is_file() else "generator"
    if kind not in ("generator", "discriminator"):
        raise GanProbeError(f"{card}: kind must be generator or discriminator (found {kind!r})")
    return kind


def describe_model(spec) -> dict[str, Any]:
    """`gan-probe info` of a model gan-probe did not train: each network the file holds (its card's or
    sidecar's kind; a StyleGAN pickle: those of ``G_ema`` and ``D`` it holds), loaded and probed once,
    with what the analyses know of it, its parameter count and its content fingerprint."""
    from gan_probe.models.stylegan import MissingNetwork

    s = as_spec(spec)
    networks, missing = [], []
    for kind in ["generator", "discriminator"] if _is_pickle(s) else [model_kind(s)]:
        try:
            model, info = _load(s, kind, "cpu")
        except MissingNetwork as e:
            missing.append(e)
            continue
        networks.append({**info.to_dict(), "parameters": sum(p.numel() for p in model.net.parameters()),
                         "fingerprint": info.fingerprint})
    if not networks:
        raise missing[0]
    return {"checkpoint": str(s.path), "source": networks[0]["source"], "networks": networks}
