"""``dinov2``: DINOv2 ViT-L/14's CLS token after the final norm (1024-d), as FD-DINOv2 uses it.

The reference is dgm-eval (Stein et al. 2023): ``torch.hub.load('facebookresearch/dinov2',
'dinov2_vitl14')``, its forward output (``x_norm_clstoken``), on 224 x 224 inputs prepared by
:func:`gan_probe.encoders.preprocess.dgm_eval_preprocess`. The hub model keeps a 37 x 37 position
grid (518 px) and interpolates it for 224 px inputs with DINOv2's own formula; the loader does that
once, the same way (:func:`gan_probe.encoders.vit.dinov2_resample_pos_embed`).

Weights, first found: the ``weights`` argument, ``$GAN_PROBE_DINOV2_WEIGHTS``, the torch hub
cache's ``dinov2_vitl14_pretrain.pth`` (the official file, which ``torch.hub.load`` fetches),
then the Hugging Face hub cache: ``timm/vit_large_patch14_dinov2.lvd142m`` (timm's conversion)
and ``facebook/dinov2-large`` (transformers' ``Dinov2Model``). All three formats load.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from gan_probe.encoders.base import ViTEncoderFactory
from gan_probe.encoders.preprocess import dgm_eval_preprocess
from gan_probe.encoders.vit import ViTSpec, dinov2_resample_pos_embed, transformers_to_timm
from gan_probe.encoders.weights import (Candidate, WeightsFile, file_candidate, find_weights, hf_candidate,
                                        torch_hub_checkpoint)
from gan_probe.errors import GanProbeError

NAME = "dinov2"
SPEC = ViTSpec(patch_size=14, embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096, img_size=224,
               norm_eps=1e-6, act="gelu", layer_scale=True)
WEIGHTS_FILENAME = "dinov2_vitl14_pretrain.pth"
WEIGHTS_URL = f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/{WEIGHTS_FILENAME}"
WEIGHTS_ENV = "GAN_PROBE_DINOV2_WEIGHTS"
HF_REPOS = (("timm/vit_large_patch14_dinov2.lvd142m", ("model.safetensors", "pytorch_model.bin")),
            ("facebook/dinov2-large", ("model.safetensors", "pytorch_model.bin")))
PREPROCESSING = ("dgm-eval: uint8 RGB -> PIL bicubic resize to 224x224 (antialiased, uint8) -> /255 -> "
                 "ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225)")
NETWORK = ("DINOv2 ViT-L/14 (timm VisionTransformer), CLS token after the final LayerNorm; position grid "
           "37x37 -> 16x16 by DINOv2's bicubic interpolation")


def candidates() -> list[Candidate]:
    return ([file_candidate(torch_hub_checkpoint(WEIGHTS_FILENAME), "the torch hub cache")]
            + [hf_candidate(repo, files) for repo, files in HF_REPOS])


def find_dinov2_weights(path: str | os.PathLike | None = None) -> WeightsFile:
    """The DINOv2 ViT-L/14 weights file (see the module doc for the search order)."""
    return find_weights("DINOv2 ViT-L/14", candidates(), path=path, env=WEIGHTS_ENV,
                        get_it=f"download {WEIGHTS_URL} and put it at {torch_hub_checkpoint(WEIGHTS_FILENAME)}")


_HF_EXACT = {"embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed"}
_HF_PREFIXES = {"embeddings.patch_embeddings.projection.": "patch_embed.proj.", "layernorm.": "norm."}
_HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.([^.]+)$")
_LAYER_SCALE = re.compile(r"^(encoder\.layer\.\d+)\.layer_scale([12])\.lambda1$")
_HF_NAMES = {"norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
             "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj"}
_HF_QKV = {"attention.attention.query": "q", "attention.attention.key": "k", "attention.attention.value": "v",
           "attention.q_proj": "q", "attention.k_proj": "k", "attention.v_proj": "v"}


def weights_format(state: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("embeddings.") or k.startswith("dinov2.embeddings.") for k in state):
        return "transformers Dinov2Model"
    if "cls_token" in state and "blocks.0.attn.qkv.weight" in state:
        return "official DINOv2 / timm"
    raise GanProbeError("not DINOv2 weights (neither the official/timm nor the transformers key names)")


def to_timm(state: dict[str, torch.Tensor], spec: ViTSpec = SPEC) -> dict[str, torch.Tensor]:
    """Any accepted DINOv2 state dict -> timm's keys, position grid resampled to ``spec``'s input size."""
    fmt = weights_format(state)
    if fmt == "official DINOv2 / timm":
        out = {k: v for k, v in state.items() if k != "mask_token"}
    else:
        items = []
        for k, v in state.items():
            k = k.removeprefix("dinov2.")
            if k != "embeddings.mask_token" and k.startswith(("embeddings.", "encoder.", "layernorm.")):
                items.append((_LAYER_SCALE.sub(r"\1.ls\2.gamma", k), v))
        out = transformers_to_timm(items, exact=_HF_EXACT, prefixes=_HF_PREFIXES, layer=_HF_LAYER,
                                   names=_HF_NAMES, qkv=_HF_QKV)
    if "pos_embed" in out:
        out["pos_embed"] = dinov2_resample_pos_embed(out["pos_embed"], spec.grid)
    return out


dinov2_encoder = ViTEncoderFactory(
    name=NAME, what="DINOv2", spec=SPEC, network=NETWORK, preprocessing=PREPROCESSING, preprocess=dgm_eval_preprocess,
    find_weights=find_dinov2_weights, weights_format=weights_format, to_timm=to_timm)
"""The ``dinov2`` encoder: ``dinov2_encoder(weights=None, device="cpu", spec=SPEC)``; ``weights``: a file in
any accepted format (else searched for)."""


def write_standin_weights(path: str | os.PathLike, spec: ViTSpec = SPEC, seed: int = 0,
                          grid: int = 37) -> Path:
    """A stand-in weights file in the official format (the real keys; position grid ``grid``),
    random seeded values, for offline tests and trying the commands. Never for real scores."""
    from gan_probe.encoders.vit import build_vit
    from gan_probe.io import atomic_path

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_vit(spec)
        state = {k: torch.randn_like(v) * (0.02 if v.dim() > 1 else 0.1) + (1.0 if k.endswith("norm1.weight")
                 or k.endswith("norm2.weight") or k == "norm.weight" else 0.0) for k, v in net.state_dict().items()}
        state["pos_embed"] = torch.randn(1, 1 + grid * grid, spec.embed_dim) * 0.02
        state["mask_token"] = torch.zeros(1, spec.embed_dim)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)
