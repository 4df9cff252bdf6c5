"""What D's filters respond to: the DCGAN paper's Fig. 5 and its neighbours.

- :func:`first_layer_filters_grid`: D's first conv layer's kernels as an image grid.
- :func:`feature_responses` / :func:`top_activating`: each chosen channel of a conv
  layer scored by its maximal (axis-aligned: one channel, one position) response
  on each image; the top-k images per channel.
- :func:`guided_backprop`: Springenberg et al. (2014) guided backpropagation of
  that maximal response to the input image. At every rectifier (D's LeakyReLUs)
  the backward pass lets a gradient through only where the forward input was > 0
  AND the incoming gradient is > 0 (:class:`GuidedLeakyReLU`, our own autograd
  Function: libraries such as Captum only guide ``nn.ReLU``).
- :func:`visualize_filters`: ``gan-probe filters``; the trained D beside a
  random-init D of the same architecture (seeded; the feature registry's
  ``random-disc``), as the paper's Fig. 5 shows random filters beside trained
  ones (6 features x top-5 images each). It is :func:`compute_filters` (both Ds,
  nothing written), then :func:`write_filter_figures` and :func:`filters_summary`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_probe import runs
from gan_probe.device import exact_float32
from gan_probe.errors import GanProbeError

DEFAULT_FEATURES = (0, 1, 2, 3, 4, 5)


# ---------------------------------------------------------------- guided rectifier
class GuidedLeakyReLU(torch.autograd.Function):
    """LeakyReLU forward; guided backward: grad * [input > 0] * [grad > 0].

    Where the input is > 0 LeakyReLU's own derivative is 1, so the guided gradient
    equals the ordinary one there and is zero everywhere else.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, negative_slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.leaky_relu(x, negative_slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (grad > 0)).to(grad.dtype), None


class GuidedRectifierOutput(torch.autograd.Function):
    """Identity on a rectifier's output ``y``; backward: grad * [y > 0] * [grad > 0].

    For a rectifier applied as a function (StyleGAN's ``bias_act``: ``clamp(lrelu(x + b) * gain)``,
    gain > 0), ``y > 0`` exactly where its input is > 0, so with the function's own backward after
    this one the gradient at its input is :class:`GuidedLeakyReLU`'s rule (times the positive gain).
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(y)
        return y.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        return grad * ((y > 0) & (grad > 0)).to(grad.dtype)


@contextlib.contextmanager
def guided_functions(model: nn.Module):
    """While inside: the activation functions ``model`` calls (a user's D:
    ``activation_functions()``, StyleGAN's ``bias_act``) put their rectifiers' outputs through
    :class:`GuidedRectifierOutput`; a linear one passes; any other is an error naming it."""
    targets = model.activation_functions() if hasattr(model, "activation_functions") else []
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]

    def guide(fn):
        sig = inspect.signature(fn)

        def guided(*args, **kwargs):
            act = sig.bind(*args, **kwargs).arguments.get("act") or "linear"
            y = fn(*args, **kwargs)
            if act in ("relu", "lrelu"):
                return GuidedRectifierOutput.apply(y)
            if act != "linear":
                raise GanProbeError(f"guided backprop handles ReLU and LeakyReLU; this discriminator applies "
                                    f"{fn.__name__}(act={act!r}), whose guided rule gan-probe does not define")
            return y

        return guided

    try:
        for owner, name, fn in saved:
            setattr(owner, name, guide(fn))
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


class GuidedLeakyReLUModule(nn.Module):
    def __init__(self, negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return GuidedLeakyReLU.apply(x, self.negative_slope)


def guided_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (left untouched) with every LeakyReLU / ReLU replaced by the
    guided rectifier. In eval mode: BatchNorm uses its running statistics."""
    if hasattr(model, "check_guidable"):  # a user's D: rectifiers we cannot guide are named
        model.check_guidable()
    guided = copy.deepcopy(model).eval()

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.LeakyReLU):
                setattr(parent, name, GuidedLeakyReLUModule(child.negative_slope))
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, GuidedLeakyReLUModule(0.0))
            else:
                swap(child)

    swap(guided)
    for p in guided.parameters():
        p.requires_grad_(False)
    return guided


# ---------------------------------------------------------------- responses
def check_layer_and_features(d: nn.Module, layer: int, features: list[int]) -> tuple[int, list[int]]:
    """``layer`` (negative counts from the end) as an index into ``d.blocks``; features checked."""
    n = len(d.blocks) if hasattr(d, "blocks") else len(d.info.layers)
    if not -n <= layer < n:
        raise GanProbeError(f"layer {layer} is out of range: the discriminator has {n} conv layers "
                            f"(0..{n - 1}, or -1 for the last)", param="layer")
    layer = layer % n
    width = layer_width(d, layer)
    if not features:
        raise GanProbeError("features is empty; give channel indices such as 0,1,2,3,4,5", param="features")
    bad = [f for f in features if not 0 <= f < width]
    if bad:
        raise GanProbeError(f"feature index {bad[0]} is out of range: conv layer {layer} has {width} channels "
                            f"(0..{width - 1})", param="features")
    return layer, list(features)


def layer_width(d: nn.Module, layer: int) -> int:
    """Channels of conv layer ``layer`` (a user's D: of its ``layer``-th feature layer)."""
    return d.blocks[layer][0].out_channels if hasattr(d, "blocks") else d.widths()[layer]


def first_conv(d: nn.Module) -> nn.Module:
    return d.blocks[0][0] if hasattr(d, "blocks") else d.first_conv()


def layer_output(d: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """Conv layer ``layer``'s map (after its LeakyReLU); stops there. A user's D
    (:class:`gan_probe.models.sources.DiscriminatorAdapter`): its ``layer``-th feature layer."""
    if not hasattr(d, "blocks"):
        return d.features(x)[layer]
    for block in d.blocks[: layer + 1]:
        x = block(x)
    return x


@torch.inference_mode()
def feature_responses(d: nn.Module, images: torch.Tensor, layer: int, features: list[int],
                      batch_size: int = 256, device: str | torch.device = "cpu") -> torch.Tensor:
    """N x len(features): each image's maximal response of each feature (max over positions)."""
    out = []
    idx = torch.as_tensor(features, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device).float()
        maps = layer_output(d, x, layer)[:, idx.to(x.device)]
        out.append(maps.amax(dim=(2, 3)).float().cpu())
    return torch.cat(out) if out else torch.empty(0, len(features))


def top_activating(responses: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices), each F x k: per feature the k images with the largest response,
    largest first; ties broken by the lower image index (a stable order)."""
    if k < 1:
        raise GanProbeError(f"k must be >= 1, got {k}", param="k")
    k = min(k, responses.shape[0])
    order = torch.from_numpy(np.argsort(-responses.T.numpy(), axis=1, kind="stable")[:, :k].copy())
    return torch.gather(responses.T, 1, order), order


def guided_backprop(d: nn.Module, images: torch.Tensor, layer: int, feature: int,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """Guided gradient of each image's maximal response of ``feature`` at ``layer``
    (N x C x H x W, CPU). ``d`` is copied and guided; the caller's module is unchanged."""
    return guided_gradient(guided_copy(d).to(device), images, layer, feature, device)


def guided_gradient(guided: nn.Module, images: torch.Tensor, layer: int, feature: int,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """As :func:`guided_backprop`, on a model :func:`guided_copy` already made (reused across features)."""
    x = images.to(device).float().clone().requires_grad_(True)
    with torch.enable_grad(), guided_functions(guided):
        maps = layer_output(guided, x, layer)[:, feature]  # N x H x W
        peak = maps.flatten(1).amax(dim=1)  # the maximal axis-aligned response of each image
        (grad,) = torch.autograd.grad(peak.sum(), x)
    return grad.detach().float().cpu()


# ---------------------------------------------------------------- pictures
def gradient_to_image(grad: torch.Tensor, percentile: float = 99.0) -> torch.Tensor:
    """Signed gradients -> [-1, 1] images, zero at mid-grey, each image scaled by
    the given percentile of its |values| (so one hot pixel does not wash it out)."""
    flat = grad.flatten(1).abs()
    scale = torch.quantile(flat, percentile / 100.0, dim=1).clamp_min(1e-12)
    return (grad / scale[:, None, None, None]).clamp(-1, 1)


def first_layer_filters_grid(d: nn.Module, cell: int = 32) -> torch.Tensor:
    """D's first conv kernels (out x in x k x k), each min-max scaled, upscaled
    (nearest) to ``cell`` px: out x in x cell x cell in [-1, 1]."""
    w = first_conv(d).weight.detach().float().cpu()
    lo = w.flatten(1).amin(1)[:, None, None, None]
    hi = w.flatten(1).amax(1)[:, None, None, None]
    w = (w - lo) / (hi - lo).clamp_min(1e-12)
    w = F.interpolate(w, size=(cell, cell), mode="nearest")
    return w * 2 - 1


def upscale(images: torch.Tensor, min_size: int = 64) -> torch.Tensor:
    """Nearest-neighbour upscale small images by an integer factor so each is >= min_size px."""
    s = max(1, -(-min_size // images.shape[-1]))
    return F.interpolate(images, scale_factor=s, mode="nearest") if s > 1 else images


def grid_array(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Images in [-1, 1] -> one H x W x 3 uint8 grid array."""
    from torchvision.utils import make_grid

    x = images.float() * 0.5 + 0.5
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    g = make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value)
    return (g.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def titled_side_by_side(panels: list[tuple[str, np.ndarray]], row_labels: list[str] = (), gap: int = 16
                        ) -> np.ndarray:
    """Panels placed left to right on white, each with its title above it; ``row_labels`` (one per grid
    row, rows of equal height) go in a gutter on the left."""
    from PIL import Image, ImageDraw

    title_h, gutter = 18, (34 if row_labels else 0)
    h = max(a.shape[0] for _, a in panels) + title_h
    w = gutter + sum(a.shape[1] for _, a in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    if row_labels:
        row_h = (panels[0][1].shape[0] - 2) / len(row_labels)
        for i, label in enumerate(row_labels):
            draw.text((2, title_h + 2 + row_h * (i + 0.5) - 5), label, fill=(60, 60, 60))
    x = gutter
    for title, a in panels:
        draw.text((x + 2, 3), title, fill=(20, 20, 20))
        canvas.paste(Image.fromarray(a), (x, title_h))
        x += a.shape[1] + gap
    return np.asarray(canvas)


# ---------------------------------------------------------------- the command
def parse_features(text: str) -> list[int]:
    """"0,1,2" or "0-5" (or a mix) -> [0, 1, 2, ...]."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if re.fullmatch(r"\d+\s*-\s*\d+", part):
                a, b = (int(v) for v in part.split("-"))
                if a > b:
                    raise GanProbeError(f"features range {part} runs backwards; write {b}-{a}", param="features")
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise GanProbeError(f"features expects channel indices like 0,1,2 or 0-5, got {text!r}",
                                param="features") from None
    if not out:
        raise GanProbeError("features is empty; give channel indices such as 0,1,2,3,4,5", param="features")
    return out


def load_images(dataset: str, image_size: int, channels: int, n_images: int, seed: int,
                data_root: str | os.PathLike | None = None, download: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, labels, dataset indices): all of ``dataset`` if it has <= n_images,
    else a seeded random subset of n_images (indices sorted)."""
    from gan_probe.data import TensorImageDataset, load_dataset

    if n_images < 1:
        raise GanProbeError(f"n_images must be >= 1, got {n_images}", param="n_images")
    ds = load_dataset(dataset, image_size, channels, data_root, download)
    n = len(ds)
    if n <= n_images:
        idx = torch.arange(n)
    else:
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_images].sort().values
    if isinstance(ds, TensorImageDataset):
        return ds.images[idx].float(), ds.labels[idx].long(), idx
    items = [ds[int(i)] for i in idx]
    return (torch.stack([im for im, _ in items]).float(), torch.tensor([int(lb) for _, lb in items]), idx)


@exact_float32()
def analyse_discriminator(d: nn.Module, images: torch.Tensor, layer: int, features: list[int], top_k: int,
                          batch_size: int, device) -> dict:
    """Top-k images and their guided gradients for each feature of one D (exact float32, no TF32)."""
    responses = feature_responses(d, images, layer, features, batch_size, device)
    values, order = top_activating(responses, top_k)
    tops, grads = [], []
    guided = guided_copy(d).to(device)
    for row, feature in enumerate(features):
        chosen = images[order[row]]
        tops.append(chosen)
        grads.append(gradient_to_image(guided_gradient(guided, chosen, layer, feature, device)))
    return {"values": values, "order": order, "top_images": torch.cat(tops), "guided": torch.cat(grads)}


@dataclass(frozen=True)
class FilterOptions:
    """What ``gan-probe filters`` looks at (its flags, one field each)."""

    layer: int = -1  # D's conv layer; negative counts from the end
    features: tuple[int, ...] = DEFAULT_FEATURES  # channels of that layer
    top_k: int = 5  # top-activating images per feature
    dataset: str = ""  # images searched; "" = the run's training dataset (digits if unknown)
    n_images: int = 5000  # search at most this many (a seeded random subset of larger datasets)
    seed: int = 0  # seeds the subset and the random-init D
    batch_size: int = 256
    device: str | torch.device = "cpu"
    data_root: str | os.PathLike | None = None
    download: bool = False


@dataclass
class FilterAnalysis:
    """The computed part of ``gan-probe filters``: both Ds, the images searched, and for each D
    (``results["trained"]``, ``results["random"]``) :func:`analyse_discriminator`'s output."""

    state: dict  # the checkpoint (its path, step, train settings)
    trained: nn.Module
    random: nn.Module
    layer: int  # resolved (non-negative)
    features: list[int]
    top_k: int  # capped at the images searched
    dataset: str  # resolved name
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor  # each image's index in the dataset
    results: dict[str, dict]
    notes: list[str]


def compute_filters(checkpoint: str | os.PathLike, opts: FilterOptions = FilterOptions()) -> FilterAnalysis:
    """Load the trained D and a seeded random-init D of its architecture, search the images and
    guide-backpropagate each feature's top-k; nothing is written."""
    from gan_probe.checkpoint import load_checkpoint, load_discriminator
    from gan_probe.models.sources import is_foreign

    foreign = is_foreign(checkpoint)  # a user's D (model card / TorchScript): no run state
    state = {"path": checkpoint} if foreign else load_checkpoint(checkpoint)
    d, config = load_discriminator(state["path"], opts.device)
    layer, features = check_layer_and_features(d, opts.layer, list(opts.features))
    if opts.top_k < 1:
        raise GanProbeError(f"top_k must be >= 1, got {opts.top_k}", param="top_k")
    dataset = opts.dataset or (state.get("train") or {}).get("dataset") or "digits"
    images, labels, indices = load_images(dataset, config.image_size, config.channels, opts.n_images, opts.seed,
                                          opts.data_root, opts.download)
    notes, top_k = [], opts.top_k
    if top_k > len(images):
        notes.append(f"--top-k {top_k} is more than the {len(images)} images searched: showing {len(images)}")
        top_k = len(images)
    # the random-init control is the feature registry's random-disc network (same architecture,
    # N(0, 0.02) weights seeded by `seed`, eval mode), the same D as `classify --features random-disc`
    from gan_probe.features import get_feature_space

    rand = get_feature_space("random-disc", seed=opts.seed, device=opts.device,
                             **({"checkpoint": state["path"]} if foreign else {"config": config})).module
    results = {which: analyse_discriminator(net, images, layer, features, top_k, opts.batch_size, opts.device)
               for which, net in (("trained", d), ("random", rand))}
    return FilterAnalysis(state, d, rand, layer, features, top_k, dataset, images, labels, indices, results, notes)


def write_filter_figures(a: FilterAnalysis, out: Path) -> dict[str, str]:
    """guided_backprop.png, top_images.png (random | trained, one row per feature) and
    first_layer_filters.png into ``out``; returns {name: path}."""
    from gan_probe.figures import save_png

    files: dict[str, str] = {}
    rows = [f"f{f}" for f in a.features]
    for name, key in (("guided_backprop", "guided"), ("top_images", "top_images")):
        files[name] = str(save_png(titled_side_by_side([
            ("Random filters", grid_array(upscale(a.results["random"][key]), nrow=a.top_k)),
            ("Trained filters", grid_array(upscale(a.results["trained"][key]), nrow=a.top_k))], rows),
            out / f"{name}.png"))
    n_filters = first_conv(a.trained).weight.shape[0]
    files["first_layer_filters"] = str(save_png(titled_side_by_side([
        ("Trained D, first conv layer", grid_array(first_layer_filters_grid(a.trained), nrow=min(8, n_filters))),
        ("Random-init D", grid_array(first_layer_filters_grid(a.random), nrow=min(8, n_filters)))]),
        out / "first_layer_filters.png"))
    return files


def filters_summary(a: FilterAnalysis, checkpoint: str | os.PathLike, opts: FilterOptions, files: dict[str, str],
                    summary_path: Path) -> dict:
    """The summary.json object: settings, each feature's top images (dataset index, label,
    response) for both Ds, their label purity, files and captions."""
    labels = a.labels

    def per_feature(which: str) -> list[dict]:
        r = a.results[which]
        return [{"feature": f,
                 "dataset_index": [int(a.indices[j]) for j in r["order"][row].tolist()],
                 "label": [int(labels[j]) for j in r["order"][row].tolist()],
                 "response": [round(float(v), 6) for v in r["values"][row].tolist()]}
                for row, f in enumerate(a.features)]

    def purity(which: str) -> float | None:
        """Mean over features of the share of its top-k images carrying the most common label."""
        rows = [labels[r] for r in a.results[which]["order"]]
        if bool((labels < 0).any()) or labels.unique().numel() < 2:  # unlabelled, or a single class
            return None
        return round(float(np.mean([torch.bincount(r).max().item() / len(r) for r in rows])), 4)

    layer, features, top_k, n = a.layer, a.features, a.top_k, len(a.images)
    captions = {
        "guided_backprop.png": (f"Guided backpropagation of the maximal response of features {features} of conv "
                                f"layer {layer} (rows), on the top-{top_k} images of each (columns); random-init "
                                f"D left, trained D right (paper Fig. 5)"),
        "top_images.png": f"The {top_k} images (of {n} searched) that excite each feature most",
        "first_layer_filters.png": "D's first-layer kernels, each min-max scaled (trained | random init)",
    }
    argv = runs.command_line("filters", checkpoint, layer=layer, features=features, top_k=top_k, dataset=a.dataset,
                             n_images=opts.n_images, seed=opts.seed)
    settings = {"layer": layer, "layer_channels": layer_width(a.trained, layer),
                "features": features, "top_k": top_k, "dataset": a.dataset, "n_images": n,
                "seed": opts.seed, "random_init_seed": opts.seed,
                **_rule_settings(a.trained, layer)}
    results = {"checkpoint": str(a.state["path"]), "step": a.state.get("step"),
               "top_k_label_purity": {"trained": purity("trained"), "random": purity("random")},
               "trained": per_feature("trained"), "random": per_feature("random"), "notes": a.notes}
    return runs.new_summary("filters", results, argv=argv, settings=settings,
                            provenance=runs.provenance(a.state["path"], dataset=a.dataset), seed=opts.seed,
                            files={**files, "summary": str(summary_path)}, captions=captions,
                            paper_figure="Fig. 5 (guided backpropagation, random vs trained filters)")


def _rule_settings(d: nn.Module, layer: int) -> dict[str, str]:
    """What a response is and where the guided rule applies, for gan-probe's D or a user's."""
    if hasattr(d, "blocks"):
        return {"response": "max over positions of the channel's map after LeakyReLU",
                "guided_rule": "grad * [input > 0] * [grad > 0] at every LeakyReLU"}
    return {"response": f"max over positions of the channel's map at feature layer {d.info.layers[layer]!r}",
            "guided_rule": "grad * [input > 0] * [grad > 0] at every ReLU / LeakyReLU, modules or StyleGAN's "
                           "bias_act"}


def visualize_filters(checkpoint: str | os.PathLike, out: str | os.PathLike, opts: FilterOptions | None = None,
                      **settings) -> dict:
    """``gan-probe filters``: compute, write the figures and summary.json into ``out``; return the
    summary. ``settings`` (``layer=``, ``features=``, ``top_k=``, ...: the :class:`FilterOptions`
    fields) override ``opts``."""
    opts = replace(opts or FilterOptions(), **settings)
    analysis = compute_filters(checkpoint, opts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = write_filter_figures(analysis, out)
    summary = filters_summary(analysis, checkpoint, opts, files, out / runs.SUMMARY_FILE)
    runs.write_summary(out, summary)
    return summary
