"""One interface whatever the model: :class:`GeneratorAdapter` (flat z -> images in [-1, 1], class
labels of a conditional model) and :class:`DiscriminatorAdapter` (``features(images)``: the maps of
the chosen layers), the layer helpers they use, and the probe forward every model passes at load
(:func:`check_generator`, :func:`check_discriminator`)."""

from __future__ import annotations

import hashlib
from typing import Callable

import torch
from torch import nn

from gan_probe.errors import GanProbeError
from gan_probe.models.cards import ModelInfo, _fail

CONVOLUTIONS = ("Conv2d", "Conv2dLayer")  # torch's, StyleGAN's (weight N(0, 1), scaled by its gain at run time)
ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "PReLU", "ReLU6", "SELU", "CELU", "Mish", "Tanh",
               "Sigmoid", "Hardswish", "Softplus")



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
    layer by layer, as TorchScript modules take no hooks). ``call(net, images)`` runs the model
    (default ``net(images)``; a StyleGAN D: ``net(images, c)``)."""

    def __init__(self, net: nn.Module, info: ModelInfo, call: Callable | None = None):
        super().__init__()
        self.net = net
        self.info = info
        self.call = call or _plain_d_call

    def scale(self, images: torch.Tensor) -> torch.Tensor:
        lo, hi = self.info.output_range
        return (images.float() + 1.0) * ((hi - lo) / 2.0) + lo

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.call(self.net, self.scale(images))

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

        def hook(_m, _i, out, n):
            got.setdefault(n, _feature_map(out))
            if len(got) == len(set(wanted)):
                raise _FeaturesRead  # the layers after the last feature layer are not run

        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: hook(m, i, o, n)) for n in wanted]
        try:
            self.call(self.net, x)
        except _FeaturesRead:
            pass
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
        """The first convolution (``nn.Conv2d``, or StyleGAN's ``Conv2dLayer``): its ``weight`` is out x in x k x k."""
        for _, m in self.net.named_modules():
            if module_type(m) in CONVOLUTIONS and getattr(getattr(m, "weight", None), "ndim", 0) == 4:
                return m
        raise GanProbeError(f"{self.info.path}: the discriminator has no Conv2d layer to show the filters of")

    def activation_functions(self) -> list[tuple[object, str]]:
        """The activation functions its layers call, as (module, attribute name): StyleGAN's ``bias_act``
        (:func:`gan_probe.models.stylegan.activation_functions`); empty for other networks."""
        from gan_probe.models.stylegan import activation_functions

        return [] if isinstance(self.net, torch.jit.ScriptModule) else activation_functions(self.net)

    def check_guidable(self) -> None:
        """Guided backprop swaps each ReLU / LeakyReLU module for its guided rule, and guides the
        rectifiers StyleGAN's ``bias_act`` applies (:meth:`activation_functions`); a TorchScript model,
        any other activation module up to the deepest feature layer, or no rectifier at all is a clear
        error naming it."""
        if isinstance(self.net, torch.jit.ScriptModule):
            raise GanProbeError(f"{self.info.path}: guided backprop replaces the model's rectifiers, which a "
                                "TorchScript model does not allow; give a factory card (docs/your-model.md)")
        modules = list(self.net.named_modules())
        names = [n for n, _ in modules]
        deepest = max((names.index(n) for n in self.info.layers or [] if n in names), default=len(modules) - 1)
        # the gradient of a feature flows back only through the layers before it: an output Sigmoid is no matter
        other = [(n, module_type(m)) for n, m in modules[:deepest + 1]
                 if module_type(m) in ACTIVATIONS and module_type(m) not in ("ReLU", "LeakyReLU")]
        if other:
            n, t = other[0]
            raise GanProbeError(f"{self.info.path}: guided backprop handles ReLU and LeakyReLU; layer {n!r} is a "
                                f"{t}, whose guided rule gan-probe does not define")
        if not (any(module_type(m) in ("ReLU", "LeakyReLU") for _, m in modules[:deepest + 1])
                or self.activation_functions()):
            raise GanProbeError(f"{self.info.path}: guided backprop guides rectifier modules (ReLU, LeakyReLU) and "
                                "StyleGAN's bias_act, and this discriminator has neither before its feature layers: "
                                "its activations are applied as functions, which guided backprop cannot reach")


class _FeaturesRead(Exception):
    """Raised by the last feature layer's hook: D's forward stops there. Its later layers cost time and
    may not be per-sample (StyleGAN's minibatch-std layer mixes the samples of a batch and needs N to be
    a multiple of its group size)."""


def _feature_map(out):
    """A layer's output as a float map: the first tensor of a block returning a tuple (StyleGAN's
    ``DiscriminatorBlock`` returns ``(x, img)``), in float32 (a float16 block's output too)."""
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out


def _plain_d_call(net, images):
    return net(images)


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
    (before the next conv); the logit conv is left out: a conv with none after it, or the last
    conv when only a Sigmoid follows it (pytorch/examples' D ends ``Conv2d(ndf * 8, 1), Sigmoid()``).
    With no activation modules at all (functional activations), every conv but the last."""
    order = [(n, module_type(m)) for n, m in net.named_modules() if n]
    if isinstance(net, torch.jit.ScriptModule):
        order = [(n, module_type(m)) for n, m in sequential_layers(net, "the model")]
    convs = [i for i, (_, t) in enumerate(order) if t == "Conv2d"]
    layers = []
    for j, i in enumerate(convs):
        stop = convs[j + 1] if j + 1 < len(convs) else len(order)
        act = next(((n, t) for n, t in order[i + 1:stop] if t in ACTIVATIONS), None)
        if act is not None and not (j == len(convs) - 1 and act[1] == "Sigmoid"):
            layers.append(act[0])
    if not layers:
        layers = [order[i][0] for i in convs[:-1]] or [order[i][0] for i in convs]
    return layers


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


