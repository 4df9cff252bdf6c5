"""Encoders (gan_probe.encoders): embedding equivalence with the reference implementations on tiny
randomly initialised models in the references' own file formats, the reference preprocessing,
weights search / hashes / one-line errors, and the content-keyed feature cache.

transformers is the oracle (the ``dev`` extra); nothing here downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from gan_probe.encoders import ENCODERS, get_encoder
from gan_probe.encoders import clip as clip_mod
from gan_probe.encoders import dinov2 as dino_mod
from gan_probe.encoders.vit import ViTSpec, dinov2_resample_pos_embed
from gan_probe.errors import GanProbeError

transformers = pytest.importorskip("transformers")

TOL = 1e-5
DINO_TINY = ViTSpec(patch_size=14, embed_dim=32, depth=2, num_heads=4, mlp_dim=64, img_size=28,
                    norm_eps=1e-6, act="gelu", layer_scale=True)
CLIP_TINY = ViTSpec(patch_size=14, embed_dim=32, depth=2, num_heads=4, mlp_dim=48, img_size=42,
                    norm_eps=1e-5, act="quick_gelu", pre_norm=True, proj_dim=16)


@pytest.fixture(autouse=True)
def _no_user_weights(tmp_path, monkeypatch):
    """No test may see the user's real weights: empty HF hub cache, home and torch hub."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "gan-probe-cache"))
    for var in ("GAN_PROBE_DINOV2_WEIGHTS", "GAN_PROBE_CLIP_WEIGHTS", "HF_HOME", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)


def _randomize_norms(model: nn.Module, seed: int) -> nn.Module:
    """LayerNorm gains/biases and layer scales away from 1/0, so a swapped key would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(p + 0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def hf_dino(tmp_path_factory):
    """A tiny transformers Dinov2Model (3x3 position grid: 42 px) saved in its own format."""
    torch.manual_seed(0)
    cfg = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2,
                                    image_size=42, patch_size=14, layerscale_value=0.5)
    model = _randomize_norms(transformers.Dinov2Model(cfg), 1)
    out = tmp_path_factory.mktemp("hf-dino")
    model.save_pretrained(out)
    return model, out / "model.safetensors"


@pytest.fixture(scope="module")
def hf_clip(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=48, image_size=42, patch_size=14, projection_dim=16)
    model = _randomize_norms(transformers.CLIPVisionModelWithProjection(cfg), 2)
    out = tmp_path_factory.mktemp("hf-clip")
    model.save_pretrained(out)
    return model, out / "model.safetensors"


def _images(n=4, seed=0, sizes=((37, 53), (64, 40), (28, 28), (90, 90))):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)) for h, w in sizes[:n]]


def _official_interpolate(pos_embed, w, h, patch, offset=0.1):
    """facebookresearch/dinov2 ``interpolate_pos_encoding`` (interpolate_offset=0.1, no antialias), transcribed."""
    import math

    N = pos_embed.shape[1] - 1
    pos_embed = pos_embed.float()
    class_pos_embed, patch_pos_embed = pos_embed[:, 0], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    w0, h0 = w // patch, h // patch
    M = int(math.sqrt(N))
    sx, sy = float(w0 + offset) / M, float(h0 + offset) / M
    patch_pos_embed = nn.functional.interpolate(patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2),
                                                scale_factor=(sx, sy), mode="bicubic", antialias=False)
    assert (w0, h0) == patch_pos_embed.shape[-2:]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def _hf_to_official_dino(model) -> dict:
    """The official DINOv2 key names (as torch hub's dinov2_vitl14 state dict), from a transformers model."""
    sd, out = model.state_dict(), {}
    out["cls_token"] = sd["embeddings.cls_token"]
    out["pos_embed"] = sd["embeddings.position_embeddings"]
    out["mask_token"] = sd["embeddings.mask_token"]
    out["patch_embed.proj.weight"] = sd["embeddings.patch_embeddings.projection.weight"]
    out["patch_embed.proj.bias"] = sd["embeddings.patch_embeddings.projection.bias"]
    for i in range(model.config.num_hidden_layers):
        p, q = f"encoder.layer.{i}.", f"blocks.{i}."
        for t in ("weight", "bias"):
            out[q + f"norm1.{t}"], out[q + f"norm2.{t}"] = sd[p + f"norm1.{t}"], sd[p + f"norm2.{t}"]
            out[q + f"attn.qkv.{t}"] = torch.cat([sd[p + f"attention.{x}_proj.{t}"] for x in "qkv"])
            out[q + f"attn.proj.{t}"] = sd[p + f"attention.o_proj.{t}"]
            out[q + f"mlp.fc1.{t}"], out[q + f"mlp.fc2.{t}"] = sd[p + f"mlp.fc1.{t}"], sd[p + f"mlp.fc2.{t}"]
        out[q + "ls1.gamma"], out[q + "ls2.gamma"] = sd[p + "layer_scale1.lambda1"], sd[p + "layer_scale2.lambda1"]
    out["norm.weight"], out["norm.bias"] = sd["layernorm.weight"], sd["layernorm.bias"]
    return {k: v.clone() for k, v in out.items()}


def _dgm_eval_reference(images, size):
    """dgm-eval's DINOv2 transform: PIL RGB -> Resize((size, size), BICUBIC) -> ToTensor -> Normalize."""
    import torchvision.transforms as TF
    from PIL import Image

    tf = TF.Compose([TF.Resize((size, size), TF.InterpolationMode.BICUBIC), TF.ToTensor(),
                     TF.Normalize(np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))])
    return torch.stack([tf(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("RGB")) for im in images]).float()


def _cmmd_reference(images, size):
    """cmmd-pytorch: central crop + PIL bicubic (io_util), /255, torch bicubic to size, CLIPImageProcessor normalize."""
    from PIL import Image

    arrs = []
    for t in images:
        im = Image.fromarray(t.permute(1, 2, 0).numpy())
        w, h = im.size
        l = min(w, h)
        top, left = (h - l) // 2, (w - l) // 2
        im = im.crop((left, top, left + l, top + l)).resize((size, size), resample=Image.BICUBIC)
        arrs.append(np.asarray(im).astype(np.float32))
    batch = np.stack(arrs) / 255.0
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2))
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic").permute(0, 2, 3, 1).numpy()
    proc = transformers.CLIPImageProcessor()
    out = proc(images=list(x), do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
               return_tensors="pt")
    return out["pixel_values"].float()


# ---------------------------------------------------------------- preprocessing

def test_dgm_eval_preprocessing_matches_torchvision_pil_pipeline():
    from gan_probe.encoders.preprocess import dgm_eval_preprocess

    imgs = _images()
    gray = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (1, 30, 45), dtype=np.uint8))
    ref = _dgm_eval_reference(imgs + [gray.expand(3, -1, -1).contiguous()], 224)
    ours = dgm_eval_preprocess(imgs + [gray], 224)
    assert ours.shape == (5, 3, 224, 224)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    # not a no-op check: bilinear would differ
    assert not torch.allclose(ours[:1], ((torch.nn.functional.interpolate(
        imgs[0][None].float() / 255, size=(224, 224), mode="bilinear") - ref[:1].new_tensor(
        [0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / ref[:1].new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)),
        atol=1e-3)


def test_cmmd_preprocessing_matches_reference():
    from gan_probe.encoders.preprocess import cmmd_preprocess

    imgs = _images()
    ref = _cmmd_reference(imgs, 336)
    ours = cmmd_preprocess(imgs, 336)
    assert ours.shape == ref.shape == (4, 3, 336, 336)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)


def test_images_must_be_uint8():
    from gan_probe.encoders.preprocess import dgm_eval_preprocess

    with pytest.raises(GanProbeError, match="uint8"):
        dgm_eval_preprocess(torch.rand(2, 3, 8, 8), 28)


# ---------------------------------------------------------------- DINOv2 equivalence

def test_dinov2_transformers_format_matches_transformers(hf_dino, tmp_path):
    model, path = hf_dino
    spec = ViTSpec(**{**DINO_TINY.__dict__, "img_size": 42})  # the model's own grid: no interpolation
    enc = dino_mod.dinov2_encoder(weights=path, spec=spec)
    assert enc.weights_format == "transformers Dinov2Model" and enc.dim == 32
    imgs = _images()
    x = _dgm_eval_reference(imgs, 42)
    with torch.no_grad():
        ref = model(pixel_values=x).pooler_output
    assert (ref - enc.embed(x)).abs().max() < TOL
    assert (ref - enc(imgs)).abs().max() < TOL  # end to end from uint8, our preprocessing


def test_dinov2_official_format_interpolates_like_dinov2(hf_dino, tmp_path, monkeypatch):
    """Official-format file (3x3 grid) run at 28 px (2x2): DINOv2's +0.1-offset bicubic interpolation."""
    model, _ = hf_dino
    path = tmp_path / "dinov2_tiny_pretrain.pth"
    torch.save(_hf_to_official_dino(model), path)
    enc = dino_mod.dinov2_encoder(weights=path, spec=DINO_TINY)
    assert enc.weights_format == "official DINOv2 / timm"
    emb = model.embeddings
    monkeypatch.setattr(emb, "interpolate_pos_encoding",
                        lambda e, h, w: _official_interpolate(emb.position_embeddings, w, h, 14))
    imgs = _images()
    x = _dgm_eval_reference(imgs, 28)
    with torch.no_grad():
        ref = model(pixel_values=x).pooler_output
    assert (ref - enc.embed(x)).abs().max() < TOL
    # and the offset matters: transformers' own size= interpolation gives other position embeddings
    pe = emb.position_embeddings.detach()
    by_size = torch.nn.functional.interpolate(pe[:, 1:].reshape(1, 3, 3, -1).permute(0, 3, 1, 2), size=(2, 2),
                                              mode="bicubic", align_corners=False)
    ours = dinov2_resample_pos_embed(pe, 2)[:, 1:].reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
    assert (by_size - ours).abs().max() > 1e-3


def test_dinov2_timm_safetensors_format(hf_dino, tmp_path):
    from safetensors.torch import save_file

    model, _ = hf_dino
    state = _hf_to_official_dino(model)
    state.pop("mask_token")
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    a = dino_mod.dinov2_encoder(weights=path, spec=DINO_TINY)
    b = dino_mod.dinov2_encoder(weights=hf_dino[1], spec=DINO_TINY)
    imgs = _images()
    assert (a(imgs) - b(imgs)).abs().max() < TOL


# ---------------------------------------------------------------- CLIP equivalence

def test_clip_transformers_format_matches_cmmd_pytorch(hf_clip):
    model, path = hf_clip
    enc = clip_mod.clip_encoder(weights=path, spec=CLIP_TINY)
    assert enc.weights_format == "transformers CLIP" and enc.dim == 16 and enc.l2_normalize
    imgs = _images()
    x = _cmmd_reference(imgs, 42)
    with torch.no_grad():
        ref = model(pixel_values=x).image_embeds
    ref = ref / torch.linalg.norm(ref, axis=-1, keepdims=True)
    ours = enc(imgs)
    assert (ref - ours).abs().max() < TOL
    assert torch.allclose(ours.norm(dim=1), torch.ones(4), atol=1e-6)


def _openai_state(model) -> dict:
    """OpenAI CLIP's key names (``visual.*``; fp16, as ViT-L-14-336px.pt stores them), from a transformers model."""
    sd, out = model.state_dict(), {}
    v = "vision_model."
    out["visual.class_embedding"] = sd[v + "embeddings.class_embedding"]
    out["visual.conv1.weight"] = sd[v + "embeddings.patch_embedding.weight"]
    out["visual.positional_embedding"] = sd[v + "embeddings.position_embedding.weight"]
    for t in ("weight", "bias"):
        out[f"visual.ln_pre.{t}"] = sd[v + f"pre_layrnorm.{t}"]
        out[f"visual.ln_post.{t}"] = sd[v + f"post_layernorm.{t}"]
    for i in range(model.config.num_hidden_layers):
        p, q = v + f"encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for t in ("weight", "bias"):
            out[q + f"attn.in_proj_{t}"] = torch.cat([sd[p + f"self_attn.{x}_proj.{t}"] for x in "qkv"])
            out[q + f"attn.out_proj.{t}"] = sd[p + f"self_attn.out_proj.{t}"]
            out[q + f"ln_1.{t}"], out[q + f"ln_2.{t}"] = sd[p + f"layer_norm1.{t}"], sd[p + f"layer_norm2.{t}"]
            out[q + f"mlp.c_fc.{t}"], out[q + f"mlp.c_proj.{t}"] = sd[p + f"mlp.fc1.{t}"], sd[p + f"mlp.fc2.{t}"]
    out["visual.proj"] = sd["visual_projection.weight"].t()
    out["text_projection"] = torch.zeros(8, 8)  # the text tower is ignored
    return {k: t.detach().half().clone() for k, t in out.items()}


class _Holder(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _save_torchscript(state: dict, path: Path) -> None:
    """A TorchScript archive holding ``state`` under its dotted names, as OpenAI's .pt files are."""
    import warnings

    root = _Holder()
    for key, t in state.items():
        *mods, name = key.split(".")
        m = root
        for part in mods:
            if not hasattr(m, part):
                m.add_module(part, _Holder())
            m = getattr(m, part)
        m.register_parameter(name, nn.Parameter(t, requires_grad=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(root).save(str(path))


@pytest.mark.parametrize("as_torchscript", [False, True])
def test_clip_openai_format_matches_transformers(hf_clip, tmp_path, as_torchscript):
    model, _ = hf_clip
    state = _openai_state(model)
    path = tmp_path / "ViT-tiny.pt"
    if as_torchscript:
        _save_torchscript(state, path)
    else:
        torch.save(state, path)
    enc = clip_mod.clip_encoder(weights=path, spec=CLIP_TINY)
    assert enc.weights_format == "OpenAI CLIP"
    ref_model = transformers.CLIPVisionModelWithProjection(model.config)
    ref_model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})  # the fp16 weights
    x = _cmmd_reference(_images(), 42)
    with torch.no_grad():
        ref = ref_model.eval()(pixel_values=x).image_embeds
    ref = ref / torch.linalg.norm(ref, axis=-1, keepdims=True)
    assert (ref - enc.embed(x)).abs().max() < TOL


# ---------------------------------------------------------------- weights: search, hashes, errors

def _hf_cache_entry(root: Path, repo: str, filename: str, src: Path, blob_name: str | None = None) -> Path:
    """Lay out ``src`` as huggingface_hub caches it: blobs/<sha256> + snapshots/<rev>/<file> -> blob."""
    d = root / ("models--" + repo.replace("/", "--"))
    sha = blob_name or hashlib.sha256(src.read_bytes()).hexdigest()
    (d / "blobs").mkdir(parents=True, exist_ok=True)
    shutil.copy(src, d / "blobs" / sha)
    rev = "0" * 40
    (d / "snapshots" / rev).mkdir(parents=True, exist_ok=True)
    (d / "refs").mkdir(exist_ok=True)
    (d / "refs" / "main").write_text(rev)
    link = d / "snapshots" / rev / filename
    os.symlink(Path("..") / ".." / "blobs" / sha, link)
    return link


def test_weights_found_in_hf_cache_and_checked_against_published_hash(hf_clip, tmp_path):
    hub = Path(os.environ["HF_HUB_CACHE"])
    _hf_cache_entry(hub, "openai/clip-vit-large-patch14-336", "model.safetensors", hf_clip[1])
    enc = clip_mod.clip_encoder(spec=CLIP_TINY)
    assert "models--openai--clip-vit-large-patch14-336" in str(enc.weights)
    assert enc.weights_sha256 == hashlib.sha256(hf_clip[1].read_bytes()).hexdigest()
    assert enc.matches_published is True
    prov = enc.provenance()
    assert prov["space"] == "clip" and prov["weights_sha256"] == enc.weights_sha256 and "336" not in prov["network"]
    assert "central square crop" in prov["preprocessing"] and prov["precision"] == "float32"


def test_weights_that_are_not_the_published_file_say_so(hf_dino, tmp_path):
    hub = Path(os.environ["HF_HUB_CACHE"])
    _hf_cache_entry(hub, "facebook/dinov2-large", "model.safetensors", hf_dino[1], blob_name="ab" * 32)
    enc = get_encoder("dinov2", spec=DINO_TINY)
    assert enc.published_sha256 == "ab" * 32 and enc.matches_published is False
    assert any("not the published file" in n for n in enc.notes)


def test_official_dinov2_file_in_torch_hub_cache_reports_its_hash(hf_dino):
    path = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / "dinov2_vitl14_pretrain.pth"
    path.parent.mkdir(parents=True)
    torch.save(_hf_to_official_dino(hf_dino[0]), path)
    enc = get_encoder("dinov2", spec=DINO_TINY)
    assert enc.weights == path and enc.published_sha256 is None and enc.matches_published is None
    assert any(enc.weights_sha256 in n for n in enc.notes)


def test_openai_clip_file_is_checked_against_openais_hash(hf_clip):
    path = Path(os.environ["HOME"]) / ".cache" / "clip" / "ViT-L-14-336px.pt"
    path.parent.mkdir(parents=True)
    torch.save(_openai_state(hf_clip[0]), path)
    enc = get_encoder("clip", spec=CLIP_TINY)
    assert enc.weights == path and enc.published_sha256 == clip_mod.OPENAI_SHA256
    assert enc.matches_published is False  # a stand-in, not OpenAI's file


@pytest.mark.parametrize("name,filename,url", [
    ("dinov2", "dinov2_vitl14_pretrain.pth", dino_mod.WEIGHTS_URL),
    ("clip", "ViT-L-14-336px.pt", clip_mod.OPENAI_URL)])
def test_missing_weights_one_line_naming_file_and_place(name, filename, url):
    with pytest.raises(GanProbeError) as e:
        get_encoder(name)
    msg = str(e.value)
    assert "\n" not in msg and filename in msg and url in msg and "not here" in msg


def test_env_variable_and_bad_paths(hf_dino, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_DINOV2_WEIGHTS", str(hf_dino[1]))
    assert get_encoder("dinov2", spec=DINO_TINY).weights == hf_dino[1]
    monkeypatch.setenv("GAN_PROBE_DINOV2_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(GanProbeError, match=r"nope\.pth.*GAN_PROBE_DINOV2_WEIGHTS"):
        get_encoder("dinov2", spec=DINO_TINY)
    with pytest.raises(GanProbeError) as e:
        get_encoder("dinov2", weights=tmp_path / "missing.pth")
    assert e.value.param == "weights" and "missing.pth" in str(e.value)


def test_mismatched_or_corrupt_weights_one_line(hf_dino, hf_clip, tmp_path):
    with pytest.raises(GanProbeError, match="does not hold the weights of a ViT patch 14, width 1024") as e:
        get_encoder("dinov2", weights=hf_dino[1])  # a tiny model given where ViT-L/14 is expected
    assert "\n" not in str(e.value)
    with pytest.raises(GanProbeError, match="not CLIP image-tower weights"):
        get_encoder("clip", weights=hf_dino[1], spec=CLIP_TINY)
    with pytest.raises(GanProbeError, match="not DINOv2 weights"):
        get_encoder("dinov2", weights=hf_clip[1], spec=DINO_TINY)
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(hf_dino[1].read_bytes()[:1000])
    with pytest.raises(GanProbeError, match="not a readable DINOv2 weights file"):
        get_encoder("dinov2", weights=bad, spec=DINO_TINY)
    bad2 = tmp_path / "truncated.safetensors"
    bad2.write_bytes(hf_dino[1].read_bytes()[:1000])
    with pytest.raises(GanProbeError, match="not a readable CLIP weights file"):
        get_encoder("clip", weights=bad2, spec=CLIP_TINY)


def test_registry():
    assert set(ENCODERS) == {"dinov2", "clip"}
    with pytest.raises(GanProbeError, match="dinov2, clip") as e:
        get_encoder("inceptionv4")
    assert e.value.param == "name"


def test_one_registration_makes_an_encoder_and_a_feature_space(tmp_path, monkeypatch):
    """``register_encoder`` is the one line: a "module:attribute" target is imported on first use, and every
    registered encoder is a feature space of the same name and help."""
    import gan_probe.encoders as encoders
    from gan_probe.features import FEATURE_SPACE_HELP, FEATURE_SPACES

    assert {n: FEATURE_SPACE_HELP[n] for n in encoders.ENCODER_HELP} == encoders.ENCODER_HELP
    assert list(FEATURE_SPACES)[-len(ENCODERS):] == list(ENCODERS)
    monkeypatch.setattr(encoders, "ENCODERS", dict(ENCODERS))
    monkeypatch.setattr(encoders, "ENCODER_HELP", dict(encoders.ENCODER_HELP))
    encoders.register_encoder("tiny-dino", "gan_probe.encoders.dinov2:dinov2_encoder", help="a test encoder")
    with pytest.raises(ValueError, match="already registered"):
        encoders.register_encoder("tiny-dino", dino_mod.dinov2_encoder)
    path = dino_mod.write_standin_weights(tmp_path / "d.pth", spec=DINO_TINY, grid=3)
    enc = encoders.get_encoder("tiny-dino", weights=path, spec=DINO_TINY)
    assert enc.dim == 32 and enc.weights_format == "official DINOv2 / timm"
    assert torch.equal(enc(_images(2)), dino_mod.dinov2_encoder(weights=path, spec=DINO_TINY)(_images(2)))


def test_standin_writers_load(tmp_path):
    a = dino_mod.write_standin_weights(tmp_path / "dinov2_vitl14_pretrain.pth", spec=DINO_TINY, grid=3)
    b = clip_mod.write_standin_weights(tmp_path / "clip.safetensors", spec=CLIP_TINY)
    imgs = _images(2)
    fa = dino_mod.dinov2_encoder(weights=a, spec=DINO_TINY)(imgs)
    fb = clip_mod.clip_encoder(weights=b, spec=CLIP_TINY)(imgs)
    assert fa.shape == (2, 32) and fb.shape == (2, 16) and torch.isfinite(fa).all() and torch.isfinite(fb).all()
    assert (fa[0] - fa[1]).abs().max() > 1e-4  # the stand-in still tells images apart


# ---------------------------------------------------------------- feature cache

def test_encode_source_caches_by_content(hf_dino, tmp_path):
    from PIL import Image

    from gan_probe.encoders.extract import encode_source
    from gan_probe.metrics.sources import open_source

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(_images(3, sizes=((20, 20),) * 3)):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    enc = dino_mod.dinov2_encoder(weights=hf_dino[1], spec=DINO_TINY)
    first = encode_source(open_source(folder), enc, batch_size=2, num_workers=0, progress=False)
    assert not first.from_cache and first.features.shape == (3, 32) and first.features.dtype == np.float32
    assert first.provenance["weights_sha256"] == enc.weights_sha256

    calls = []
    real = enc.model.forward
    enc.model.forward = lambda x: calls.append(1) or real(x)
    again = encode_source(open_source(folder), enc, batch_size=2, num_workers=0, progress=False)
    assert again.from_cache and not calls and np.array_equal(again.features, first.features)

    # other weights (another SHA-256) miss the cache
    other = tmp_path / "other.pth"
    torch.save(_hf_to_official_dino(hf_dino[0]), other)
    enc2 = dino_mod.dinov2_encoder(weights=other, spec=DINO_TINY)
    assert not encode_source(open_source(folder), enc2, num_workers=0, progress=False).from_cache
    # a rewritten image misses too
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "0.png")
    fresh = encode_source(open_source(folder), enc, num_workers=0, progress=False)
    assert not fresh.from_cache and not np.allclose(fresh.features[0], first.features[0])


def test_clip_timm_format(hf_clip, tmp_path):
    """timm's own safetensors (timm/vit_large_patch14_clip_336.openai), with or without the zero head bias."""
    from safetensors.torch import save_file

    model, path = hf_clip
    state = clip_mod.to_timm(dict(model.state_dict()), CLIP_TINY)
    state.pop("head.bias")
    timm_path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(timm_path))
    a = clip_mod.clip_encoder(weights=timm_path, spec=CLIP_TINY)
    assert a.weights_format == "timm"
    imgs = _images()
    assert (a(imgs) - clip_mod.clip_encoder(weights=path, spec=CLIP_TINY)(imgs)).abs().max() < TOL
