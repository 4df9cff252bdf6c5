"""The one Vision Transformer both ViT encoders run on: timm's ``VisionTransformer``.

A :class:`ViTSpec` names an architecture by its sizes (patch, width, depth, heads, MLP width,
input size) and its variant switches (DINOv2's layer scale; CLIP's pre-norm, QuickGELU and
projection). :func:`load_vit` builds that network and loads a state dict already in timm's key
names (:func:`load_vit_file`: from a weights file, through an encoder's own format converter); the
per-encoder modules convert the published file formats into those names. The tiny test models and
the real ViT-L/14s go through the same code: nothing here knows their sizes.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Iterator

import torch

from gan_probe.errors import GanProbeError


@dataclass(frozen=True)
class ViTSpec:
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    img_size: int  # the input size the encoder runs at (its position grid is img_size // patch_size)
    norm_eps: float = 1e-6
    act: str = "gelu"  # "gelu" (erf) or "quick_gelu" (OpenAI CLIP)
    layer_scale: bool = False  # DINOv2's per-channel ls1 / ls2
    pre_norm: bool = False  # CLIP's ln_pre (and no bias in the patch projection)
    proj_dim: int | None = None  # CLIP's output projection (no bias); None: the CLS token itself

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def out_dim(self) -> int:
        return self.proj_dim or self.embed_dim

    def describe(self) -> str:
        return (f"ViT patch {self.patch_size}, width {self.embed_dim}, depth {self.depth}, "
                f"{self.num_heads} heads, at {self.img_size}px")


def build_vit(spec: ViTSpec, device: str | torch.device | None = None) -> torch.nn.Module:
    """timm's VisionTransformer for ``spec``, CLS-token pooled, head = the projection (or none).
    ``device="meta"`` builds it without memory or initialisation (then load with ``assign=True``)."""
    from timm.models.vision_transformer import VisionTransformer

    with torch.device(device) if device is not None else contextlib.nullcontext():
        return VisionTransformer(
            img_size=spec.img_size, patch_size=spec.patch_size, embed_dim=spec.embed_dim, depth=spec.depth,
            num_heads=spec.num_heads, mlp_ratio=spec.mlp_dim / spec.embed_dim, qkv_bias=True,
            init_values=1.0 if spec.layer_scale else None, class_token=True, global_pool="token",
            num_classes=spec.proj_dim or 0, pre_norm=spec.pre_norm,
            norm_layer=partial(torch.nn.LayerNorm, eps=spec.norm_eps), act_layer=spec.act,
            weight_init="skip")


def load_vit(spec: ViTSpec, state: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    """The network of ``spec`` holding ``state`` (timm key names, float32), eval mode, on the CPU.
    Keys or shapes that do not fit give one GanProbeError naming ``what`` (the file)."""
    model = build_vit(spec, device="meta")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        detail = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                  else f"{wrong[0]} is {list(have[wrong[0]])}, expected {list(want[wrong[0]])}")
        raise GanProbeError(f"{what} does not hold the weights of a {spec.describe()} "
                            f"({len(missing)} missing, {len(extra)} unexpected, {len(wrong)} mis-shaped keys; "
                            f"{detail})")
    model.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a timm version with extra non-persistent state: not loadable this way
        raise RuntimeError(f"timm's VisionTransformer kept uninitialised tensors: {left[:3]}")
    return model.eval().requires_grad_(False)


def load_vit_file(path: str | os.PathLike, spec: ViTSpec, what: str,
                  weights_format: Callable[[dict[str, torch.Tensor]], str],
                  to_timm: Callable[[dict[str, torch.Tensor], ViTSpec], dict[str, torch.Tensor]]
                  ) -> tuple[torch.nn.Module, str]:
    """(the network of ``spec`` holding a weights file's tensors, the file's format). ``what`` names the
    weights in messages ("DINOv2"); ``weights_format(state)`` names the file's format (or raises a
    GanProbeError, given here prefixed with the path); ``to_timm(state, spec)`` renames its keys to timm's."""
    from gan_probe.encoders.weights import read_state_dict

    state = read_state_dict(path, what)
    try:
        fmt = weights_format(state)
    except GanProbeError as e:
        raise GanProbeError(f"{path}: {e}") from None
    return load_vit(spec, to_timm(state, spec), str(path)), fmt


def dinov2_resample_pos_embed(pos_embed: torch.Tensor, grid: int, offset: float = 0.1) -> torch.Tensor:
    """DINOv2's own position-embedding interpolation (``interpolate_pos_encoding`` in
    facebookresearch/dinov2, as torch hub's ``dinov2_vitl14`` runs it): bicubic, no antialias,
    ``scale_factor = (grid + 0.1) / M`` (not ``size``: the offset moves the sample points too).
    ``pos_embed``: 1 x (1 + M^2) x D with the CLS position first. Returns 1 x (1 + grid^2) x D."""
    n = pos_embed.shape[1] - 1
    m = int(math.isqrt(n))
    if m * m != n:
        raise GanProbeError(f"position embedding of {n} patches is not a square grid")
    if m == grid:
        return pos_embed
    dim = pos_embed.shape[-1]
    pe = pos_embed.float()
    cls, patches = pe[:, :1], pe[:, 1:]
    scale = float(grid + offset) / m
    patches = torch.nn.functional.interpolate(patches.reshape(1, m, m, dim).permute(0, 3, 1, 2),
                                              scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if tuple(patches.shape[-2:]) != (grid, grid):
        raise GanProbeError(f"cannot resample a {m}x{m} position grid to {grid}x{grid}")
    return torch.cat([cls, patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def qkv_concat(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cat([q, k, v], dim=0)


@contextlib.contextmanager
def fast_inference(device: torch.device) -> Iterator[None]:
    """bfloat16 autocast on CUDA; float32 elsewhere (timm's attention already calls torch's fused
    ``scaled_dot_product_attention``, which picks the flash kernel on CPU too)."""
    with torch.inference_mode():
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield


def precision_on(device: torch.device) -> str:
    return "bfloat16 autocast" if device.type == "cuda" else "float32"


def transformers_to_timm(items: Iterable[tuple[str, torch.Tensor]], *, exact: dict[str, str],
                         prefixes: dict[str, str], layer: re.Pattern, names: dict[str, str],
                         qkv: dict[str, str]) -> dict[str, torch.Tensor]:
    """A transformers-format ViT's tensors (``items``: key, tensor, the model's own prefix stripped) under
    timm's names. ``exact``: whole keys renamed; ``prefixes``: a key's leading part renamed (its last part,
    ``weight``/``bias``, kept); a key ``layer`` matches (-> layer index, sub-module, parameter) becomes
    ``blocks.<index>.<names.get(sub, sub)>.<parameter>``, or, for a query/key/value part (``qkv[sub]``:
    "q", "k" or "v"), a third of timm's fused ``attn.qkv`` (:func:`merge_qkv`). Any other key is kept as
    it is (:func:`load_vit` then names it as unexpected)."""
    out: dict[str, torch.Tensor] = {}
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for k, v in items:
        prefix = next((p for p in prefixes if k.startswith(p)), None)
        if k in exact:
            out[exact[k]] = v
        elif prefix is not None:
            out[prefixes[prefix] + k.rsplit(".", 1)[1]] = v
        elif (m := layer.match(k)) is None:
            out[k] = v
        else:
            i, sub, param = m.groups()
            if sub in qkv:
                parts.setdefault((i, param), {})[qkv[sub]] = v
            else:
                out[f"blocks.{i}.{names.get(sub, sub)}.{param}"] = v
    merge_qkv(parts, out)
    return out


def merge_qkv(parts: dict[tuple[str, str], dict[str, torch.Tensor]], out: dict[str, torch.Tensor]) -> None:
    """Write separate query/key/value tensors (``parts[(layer, "weight"|"bias")] = {"q", "k", "v"}``)
    into ``out`` as timm's fused ``blocks.<layer>.attn.qkv.<param>``."""
    from gan_probe.errors import GanProbeError

    for (i, param), p in parts.items():
        if set(p) != {"q", "k", "v"}:
            raise GanProbeError(f"layer {i} lacks some of its query/key/value {param}s")
        out[f"blocks.{i}.attn.qkv.{param}"] = qkv_concat(p["q"], p["k"], p["v"])
