"""``clip``: OpenAI CLIP ViT-L/14@336 image embeddings after the projection, L2-normalised (768-d),
as the CMMD paper (Jayasumana et al. 2024) uses them.

The reference is google-research ``cmmd`` and its PyTorch port sayakpaul/cmmd-pytorch
(transformers' ``CLIPVisionModelWithProjection`` on ``openai/clip-vit-large-patch14-336``,
``image_embeds`` divided by their L2 norm), on inputs prepared by
:func:`gan_probe.encoders.preprocess.cmmd_preprocess` (central square crop, PIL bicubic to 336).

Weights, first found: the ``weights`` argument, ``$GAN_PROBE_CLIP_WEIGHTS``, OpenAI's
``~/.cache/clip/ViT-L-14-336px.pt`` (what ``clip.load`` fetches; a TorchScript archive), then the
Hugging Face hub cache: ``openai/clip-vit-large-patch14-336`` (transformers' ``CLIPModel``;
only the vision tower and its projection are read) and ``timm/vit_large_patch14_clip_336.openai``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from gan_probe.encoders.base import ViTEncoderFactory
from gan_probe.encoders.preprocess import cmmd_preprocess
from gan_probe.encoders.vit import ViTSpec, transformers_to_timm
from gan_probe.encoders.weights import Candidate, WeightsFile, file_candidate, find_weights, hf_candidate
from gan_probe.errors import GanProbeError

NAME = "clip"
SPEC = ViTSpec(patch_size=14, embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096, img_size=336,
               norm_eps=1e-5, act="quick_gelu", pre_norm=True, proj_dim=768)
OPENAI_FILENAME = "ViT-L-14-336px.pt"
# clip.py's download URL carries the file's SHA-256, and clip.load checks it
OPENAI_SHA256 = "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"
OPENAI_URL = f"https://openaipublic.azureedge.net/clip/models/{OPENAI_SHA256}/{OPENAI_FILENAME}"
WEIGHTS_ENV = "GAN_PROBE_CLIP_WEIGHTS"
HF_REPOS = (("openai/clip-vit-large-patch14-336", ("model.safetensors", "pytorch_model.bin")),
            ("timm/vit_large_patch14_clip_336.openai", ("model.safetensors", "open_clip_pytorch_model.bin")))
PREPROCESSING = ("CMMD reference: uint8 RGB -> central square crop -> PIL bicubic resize to 336x336 "
                 "(antialiased, uint8) -> /255 -> CLIP mean (0.48145466, 0.4578275, 0.40821073) / "
                 "std (0.26862954, 0.26130258, 0.27577711)")
NETWORK = ("OpenAI CLIP ViT-L/14@336 image tower (timm VisionTransformer, QuickGELU), CLS token -> "
           "ln_post -> projection to 768, L2-normalised")


def openai_cache_path() -> Path:
    """Where OpenAI's ``clip.load`` keeps its files (``~/.cache/clip``)."""
    return Path.home() / ".cache" / "clip" / OPENAI_FILENAME


def candidates() -> list[Candidate]:
    return ([file_candidate(openai_cache_path(), "OpenAI's clip cache", OPENAI_SHA256)]
            + [hf_candidate(repo, files) for repo, files in HF_REPOS])


def find_clip_weights(path: str | os.PathLike | None = None) -> WeightsFile:
    """The CLIP ViT-L/14@336 weights file (see the module doc for the search order)."""
    return find_weights("CLIP ViT-L/14@336", candidates(), path=path, env=WEIGHTS_ENV,
                        get_it=f"download {OPENAI_URL} and put it at {openai_cache_path()}",
                        known={OPENAI_FILENAME: OPENAI_SHA256})


def weights_format(state: dict[str, torch.Tensor]) -> str:
    if "vision_model.embeddings.class_embedding" in state:
        return "transformers CLIP"
    if "visual.class_embedding" in state:
        return "OpenAI CLIP"
    if "cls_token" in state and "norm_pre.weight" in state:
        return "timm"
    raise GanProbeError("not CLIP image-tower weights (neither OpenAI's, transformers' nor timm's key names)")


_OPENAI_SWAPS = (("conv1.", "patch_embed.proj."), ("ln_pre.", "norm_pre."), ("ln_post.", "norm."),
                 ("transformer.resblocks.", "blocks."), (".ln_1.", ".norm1."), (".ln_2.", ".norm2."),
                 (".attn.in_proj_", ".attn.qkv."), (".attn.out_proj.", ".attn.proj."),
                 (".mlp.c_fc.", ".mlp.fc1."), (".mlp.c_proj.", ".mlp.fc2."))
_HF_EXACT = {"embeddings.class_embedding": "cls_token", "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
             "embeddings.position_embedding.weight": "pos_embed"}
_HF_PREFIXES = {"pre_layrnorm.": "norm_pre.", "post_layernorm.": "norm."}
_HF_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_HF_NAMES = {"layer_norm1": "norm1", "layer_norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
             "self_attn.out_proj": "attn.proj"}
_HF_QKV = {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v"}


def to_timm(state: dict[str, torch.Tensor], spec: ViTSpec = SPEC) -> dict[str, torch.Tensor]:
    """Any accepted CLIP state dict -> timm's keys (the text tower, if present, is dropped)."""
    fmt = weights_format(state)
    if fmt == "timm":
        out = dict(state)
        if "head.weight" in out and "head.bias" not in out:  # the projection has no bias
            out["head.bias"] = torch.zeros(out["head.weight"].shape[0])
        return out
    out: dict[str, torch.Tensor] = {}
    if fmt == "OpenAI CLIP":
        for k, v in state.items():
            if not k.startswith("visual."):
                continue
            k = k.removeprefix("visual.")
            if k == "class_embedding":
                out["cls_token"] = v.reshape(1, 1, -1)
            elif k == "positional_embedding":
                out["pos_embed"] = v.unsqueeze(0)
            elif k == "proj":  # x @ proj: D x P
                out["head.weight"] = v.t()
                out["head.bias"] = torch.zeros(v.shape[1])
            else:
                for a, b in _OPENAI_SWAPS:
                    k = k.replace(a, b) if a.startswith(".") else (b + k[len(a):] if k.startswith(a) else k)
                out[k] = v
        return out
    items = []
    for k, v in state.items():
        if k == "visual_projection.weight":
            out["head.weight"] = v
            out["head.bias"] = torch.zeros(v.shape[0])
        elif k.startswith("vision_model.") and not k.endswith("position_ids"):
            items.append((k.removeprefix("vision_model."), v))
    out.update(transformers_to_timm(items, exact=_HF_EXACT, prefixes=_HF_PREFIXES, layer=_HF_LAYER,
                                    names=_HF_NAMES, qkv=_HF_QKV))
    if "cls_token" in out:
        out["cls_token"] = out["cls_token"].reshape(1, 1, -1)
    if "pos_embed" in out:
        out["pos_embed"] = out["pos_embed"].unsqueeze(0)
    return out


clip_encoder = ViTEncoderFactory(
    name=NAME, what="CLIP", spec=SPEC, network=NETWORK, preprocessing=PREPROCESSING, preprocess=cmmd_preprocess,
    find_weights=find_clip_weights, weights_format=weights_format, to_timm=to_timm, l2_normalize=True)
"""The ``clip`` encoder: ``clip_encoder(weights=None, device="cpu", spec=SPEC)``; ``weights``: a file in any
accepted format (else searched for)."""


def write_standin_weights(path: str | os.PathLike, spec: ViTSpec = SPEC, seed: int = 0) -> Path:
    """A stand-in weights file in transformers' ``CLIPVisionModelWithProjection`` safetensors format
    (the real keys and shapes), random seeded values, for offline tests and trying the commands."""
    from safetensors.torch import save_file

    from gan_probe.io import atomic_path

    d, n = spec.embed_dim, spec.grid ** 2 + 1
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.02):
        return torch.randn(*shape, generator=g) * scale

    state = {"vision_model.embeddings.class_embedding": rnd(d),
             "vision_model.embeddings.patch_embedding.weight": rnd(d, 3, spec.patch_size, spec.patch_size),
             "vision_model.embeddings.position_embedding.weight": rnd(n, d),
             "vision_model.pre_layrnorm.weight": 1 + rnd(d), "vision_model.pre_layrnorm.bias": rnd(d),
             "vision_model.post_layernorm.weight": 1 + rnd(d), "vision_model.post_layernorm.bias": rnd(d),
             "visual_projection.weight": rnd(spec.out_dim, d)}
    for i in range(spec.depth):
        p = f"vision_model.encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[p + f"self_attn.{name}.weight"] = rnd(d, d)
            state[p + f"self_attn.{name}.bias"] = rnd(d)
        for name in ("layer_norm1", "layer_norm2"):
            state[p + f"{name}.weight"] = 1 + rnd(d)
            state[p + f"{name}.bias"] = rnd(d)
        state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"] = rnd(spec.mlp_dim, d), rnd(spec.mlp_dim)
        state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"] = rnd(d, spec.mlp_dim), rnd(d)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return Path(path)
