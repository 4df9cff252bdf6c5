"""StyleGAN2-ADA / StyleGAN3 network pickles (``G_ema``, ``D``), behind ``trust_pickle``.

Unpickling runs code, so without ``trust_pickle`` the file is refused before it is opened.
The networks' own code (``dnnlib``, ``torch_utils``) must be importable. G is called as
``G(z, c, truncation_psi=psi, noise_mode="const")`` with one-hot class labels ``c``; its
output is nominally [-1, 1] (StyleGAN overshoots a little; values are clamped downstream). D is
called as ``D(img, c, force_fp32=True)`` with ``c`` zeros (float32 features on every device). Its
layers are StyleGAN's own modules (``Conv2dLayer`` with the activation applied by the function
``bias_act``, no ``nn.Conv2d``), so the default feature layers are the outputs of its
``DiscriminatorBlock`` modules ``b{res}`` (``D.block_resolutions``, highest first: one map per
resolution, each at half its block's resolution), without the epilogue ``b4`` (its minibatch-std
layer mixes the samples of a batch; it ends in the logit). A card may name other layers
(``{"pickle": "net.pkl", "kind": "discriminator", "layers": ["b32.conv0", ...]}``).
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import torch

from gan_probe.errors import GanProbeError


class MissingNetwork(GanProbeError):
    """The pickle holds no network under the key asked for."""


def _refuse(path: Path) -> GanProbeError:
    return GanProbeError(f"trust_pickle is needed to load {path}: it is a Python pickle, and loading it runs "
                         "code stored in the file (nothing was unpickled; trust only pickles from a source you "
                         "trust)", param="trust_pickle")


def load_stylegan(spec, kind: str, device, card: dict, card_path: Path | None):
    where = str(card_path or spec.path)
    return _adapt(_unpickle(spec, kind, card, where), spec, kind, device, card, where)


def random_stylegan_discriminator(spec, device, seed: int = 0, card: dict | None = None,
                                  card_path: Path | None = None):
    """The pickle's D rebuilt with fresh weights: StyleGAN's ``persistent_class`` records each network's
    constructor arguments (``init_args``, ``init_kwargs``), so ``type(D)(*init_args, **init_kwargs)``
    runs StyleGAN's own initialisation (weights N(0, 1) under their run-time gains, biases as
    ``bias_init``), seeded by ``seed``. Loaded as :func:`load_stylegan` loads the trained D."""
    card = card or {}
    where = str(card_path or spec.path)
    net = _unpickle(spec, "discriminator", card, where)
    if not hasattr(net, "init_args") or not hasattr(net, "init_kwargs"):
        raise GanProbeError(f"random-disc is unavailable for {where}: its D records no constructor arguments "
                            "(init_args / init_kwargs, kept by StyleGAN's torch_utils.persistence), so gan-probe "
                            "cannot build the same architecture afresh")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(net)(*net.init_args, **net.init_kwargs)
    return _adapt(fresh, spec, "discriminator", device, card, where, {"random_init_seed": seed})


def activation_functions(net: torch.nn.Module) -> list[tuple[object, str]]:
    """Where ``net``'s layers find the function that applies their activations: StyleGAN's layers call
    ``bias_act.bias_act(x, b, act=..., gain=..., clamp=...)``, ``bias_act`` being the module
    ``torch_utils.ops.bias_act`` in their code's globals. Each (module, "bias_act") once, in the
    order first met; empty for a network built otherwise."""
    found: dict[int, tuple[object, str]] = {}
    for m in net.modules():
        owner = getattr(getattr(type(m), "forward", None), "__globals__", {}).get("bias_act")
        if inspect.ismodule(owner) and callable(getattr(owner, "bias_act", None)):
            found.setdefault(id(owner), (owner, "bias_act"))
    return list(found.values())


def _unpickle(spec, kind: str, card: dict, where: str) -> torch.nn.Module:
    """The network ``card["network"]`` (default ``G_ema`` / ``D``) of a trusted pickle, checked to be
    a StyleGAN network."""
    path = spec.path
    if not spec.trust_pickle:
        raise _refuse(path)
    key = card.get("network", "G_ema" if kind == "generator" else "D")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 - explicitly trusted by the user
    except FileNotFoundError:
        raise GanProbeError(f"pickle not found: {path}") from None
    except (ImportError, AttributeError) as e:
        raise GanProbeError(f"{path}: the StyleGAN code it needs does not import ({e}); put the StyleGAN "
                            "repository (dnnlib, torch_utils) on PYTHONPATH") from None
    except Exception as e:  # noqa: BLE001 - truncated / foreign file
        raise GanProbeError(f"{path} is not a readable network pickle ({type(e).__name__})") from None
    net = data.get(key) if isinstance(data, dict) else None
    if not isinstance(net, torch.nn.Module):
        found = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise MissingNetwork(f"{where}: expected a network {key!r} in the pickle (found: {found})")
    missing = [a for a in ("img_resolution", "img_channels", "c_dim") if not hasattr(net, a)]
    if kind == "generator" and not hasattr(net, "z_dim"):
        missing.append("z_dim")
    if missing:
        raise GanProbeError(f"{where}: {key} is not a StyleGAN network (no {', '.join(missing)})")
    return net


def _adapt(net: torch.nn.Module, spec, kind: str, device, card: dict, where: str, extra: dict | None = None):
    """``net``'s adapter and :class:`ModelInfo` (fingerprint: the pickle's bytes, the settings, ``extra``)."""
    from gan_probe.models.sources import ModelInfo, _finish, file_digest

    info = ModelInfo(kind, "stylegan", image_size=int(net.img_resolution), channels=int(net.img_channels),
                     num_classes=int(net.c_dim), output_range=(-1.0, 1.0), path=where, card=card,
                     layers=card.get("layers"))
    if kind == "discriminator" and info.layers is None:
        info.layers = block_layers(net)  # None for a network not built as StyleGAN's D: the generic default
    if kind == "generator":
        info.nz = int(net.z_dim)
        info.z_shape = (info.nz,)
    info.fingerprint = file_digest(spec.path, extra={"psi": spec.psi, **info.to_dict(), **(extra or {})})
    psi = float(spec.psi)
    c_dim = info.num_classes

    def call(g, z, labels):
        c = (torch.zeros(len(z), 0, device=z.device) if labels is None
             else torch.nn.functional.one_hot(labels, c_dim).float())
        return g(z, c, truncation_psi=psi, noise_mode="const")

    fp32 = {"force_fp32": True} if _takes(net.forward, "force_fp32") else {}

    def d_call(d, images):  # D(img, c): zero c (no class) for a conditional D; its features come before c is used
        return d(images, torch.zeros(len(images), c_dim, device=images.device), **fp32)

    return _finish(net.float(), info, spec, device, where, call=call if kind == "generator" else d_call)


def block_layers(net: torch.nn.Module) -> list[str] | None:
    """The default feature layers of a StyleGAN2-ADA / StyleGAN3 D: its ``DiscriminatorBlock``
    modules ``b{res}`` for ``res`` in ``D.block_resolutions`` (the order they run in), each output's
    map ``x`` (a block returns ``(x, img)``). None when ``net`` is not built that way."""
    names = [f"b{r}" for r in getattr(net, "block_resolutions", None) or []]
    if not names or not all(isinstance(getattr(net, n, None), torch.nn.Module) for n in names):
        return None
    return names


def _takes(fn, name: str) -> bool:
    """Whether ``fn`` accepts the keyword ``name`` (StyleGAN's D.forward passes ``**block_kwargs``
    on to its blocks)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)
