"""pytorch-fid's FID Inception network: pool3 features and bias-free logits in one pass.

The network is torchvision's Inception v3 with 1008 classes and pytorch-fid's
``FIDInception*`` blocks (TensorFlow's 2015-12-05 graph, quirks included), loaded
from the same weights file pytorch-fid uses, ``pt_inception-2015-12-05-6726825d.pth``.
Preprocessing is pytorch-fid's, step for step: uint8 RGB -> float in [0, 1] ->
bilinear resize to 299 x 299 (``align_corners=False``, no antialias) -> ``2x - 1``.

One forward pass gives the ``dims``-d features (2048: pool3; 768/192/64: the
earlier blocks, average-pooled, as pytorch-fid does) and, when asked, the 1008
logits computed *without* the fc bias (torch-fidelity's ``logits_unbiased``,
stylegan2-ada's ``no_output_bias``) for the Inception Score.

Weights are looked up, in order: an explicit path (``--inception-weights``),
``$GAN_PROBE_INCEPTION_WEIGHTS``, the torch hub cache
(``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``, where
pytorch-fid itself puts it). Nothing is downloaded unless the caller allows it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_probe.device import exact_float32
from gan_probe.errors import GanProbeError

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILENAME}"
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "GAN_PROBE_INCEPTION_WEIGHTS"
DIMS = (64, 192, 768, 2048)
INPUT_SIZE = 299
NUM_CLASSES = 1008
PREPROCESSING = "uint8 RGB -> [0,1] -> bilinear 299x299 (align_corners=False, no antialias) -> 2x-1"
EXTRACTOR = "pytorch-fid FID Inception v3 (TF 2015-12-05)"


def hub_weights_path() -> Path:
    """Where torch hub (and so pytorch-fid) keeps the weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, memoised per (path, size, mtime) within the process."""
    st = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    from gan_probe.cache import file_sha256

    return file_sha256(path)


def is_reference_weights(path: str | os.PathLike) -> bool:
    """Whether ``path`` is pytorch-fid's file (SHA-256 starting 6726825d): only then are
    gan-probe's Inception numbers comparable with pytorch-fid's."""
    return weights_sha256(path).startswith(WEIGHTS_SHA256_PREFIX)


def find_inception_weights(path: str | os.PathLike | None = None, download: bool = False,
                           progress: bool = True) -> Path:
    """The weights file: ``path``, else ``$GAN_PROBE_INCEPTION_WEIGHTS``, else the torch hub cache;
    downloaded into the hub cache only when ``download`` is true."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GanProbeError(f"Inception weights not found: {p} (--inception-weights)")
        return p
    if os.environ.get(WEIGHTS_ENV):
        p = Path(os.environ[WEIGHTS_ENV]).expanduser()
        if not p.is_file():
            raise GanProbeError(f"Inception weights not found: {p} (${WEIGHTS_ENV})")
        return p
    hub = hub_weights_path()
    if hub.is_file():
        return hub
    if download:
        return download_inception_weights(hub, progress=progress)
    raise GanProbeError(
        f"the FID Inception weights are not here: download {WEIGHTS_URL} and put it at {hub} "
        f"(or pass --inception-weights PATH, or set ${WEIGHTS_ENV}); or rerun with --download")


def download_inception_weights(dest: str | os.PathLike, url: str = WEIGHTS_URL, progress: bool = True,
                               timeout: float = 60.0) -> Path:
    """Fetch the weights to ``dest`` with ``torch.hub.download_url_to_file`` (a ``.partial`` temp
    file beside ``dest``, removed on any failure; SHA-256 prefix checked before the file is moved
    into place): ``dest`` is written only if its SHA-256 starts with 6726825d. ``timeout``: seconds
    a stalled connection is waited for (torch hub sets none; applied while this call runs)."""
    import socket

    dest = Path(dest)
    saved_timeout = socket.getdefaulttimeout()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if saved_timeout is None:
            socket.setdefaulttimeout(timeout)
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=WEIGHTS_SHA256_PREFIX, progress=progress)
    except RuntimeError as e:
        if "invalid hash value" not in str(e):
            raise
        raise GanProbeError(f"downloaded {url} but its SHA-256 does not start with {WEIGHTS_SHA256_PREFIX} "
                            f"({e}); nothing was kept") from e
    except OSError as e:  # URLError / HTTPError, a socket timeout, a full disk
        reason = getattr(e, "reason", None) or e.strerror or e
        raise GanProbeError(f"could not download {url} ({reason}); download it by hand and put "
                            f"it at {dest} (or pass --inception-weights PATH)") from e
    finally:
        socket.setdefaulttimeout(saved_timeout)
    return dest


def build_fid_inception() -> torch.nn.Module:
    """The FID Inception architecture, untrained: torchvision's Inception v3 (1008 classes, no aux
    head) with pytorch-fid's FIDInceptionA/C/E_1/E_2 blocks swapped in."""
    import torchvision
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

    net = torchvision.models.inception_v3(num_classes=NUM_CLASSES, aux_logits=False, weights=None,
                                          init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def write_standin_weights(path: str | os.PathLike, seed: int = 20151205) -> Path:
    """A stand-in for the real weights file, for offline tests and benchmarks: the same keys and
    shapes, random seeded weights, BatchNorm running statistics set by one train-mode batch
    (momentum=None, plain averages; without them the features collapse and every FID is ~0).
    pytorch-fid loads the same file, so the two tools can be compared on it. Never for real scores."""
    from gan_probe.io import atomic_path

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_fid_inception()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                m.reset_running_stats()
        net.train()
        with torch.no_grad():  # one batch of smooth random images, resized as the FID pipeline does
            x = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8), size=(INPUT_SIZE, INPUT_SIZE),
                                                mode="bilinear", align_corners=False)
            net(2 * x - 1)
    with atomic_path(path) as tmp:
        torch.save(net.state_dict(), tmp)
    return Path(path)


def load_fid_inception(weights: str | os.PathLike) -> torch.nn.Module:
    """The FID Inception network with ``weights`` loaded, in eval mode, on the CPU."""
    net = build_fid_inception()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, refused pickle
        raise GanProbeError(f"{weights} is not a readable Inception weights file ({type(e).__name__}); "
                            f"get {WEIGHTS_URL}") from e
    if not isinstance(state, dict):
        raise GanProbeError(f"{weights} is not an Inception state dict; get {WEIGHTS_URL}")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise GanProbeError(f"{weights} does not hold the FID Inception weights (keys or shapes differ); "
                            f"get {WEIGHTS_URL}") from e
    return net.eval().requires_grad_(False)


def to_inception_input(images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """pytorch-fid's preprocessing. ``images``: a uint8 (or [0, 1] float) batch B x 3 x H x W, or a
    list of 3 x H x W images of any sizes (each resized on its own). Returns B x 3 x 299 x 299 in [-1, 1]."""
    if isinstance(images, torch.Tensor):
        return _resize01(_as01(images))
    return torch.cat([_resize01(_as01(im[None])) for im in images])


def _as01(x: torch.Tensor) -> torch.Tensor:
    # torchvision's ToTensor: uint8 -> float32 / 255
    return x.float().div(255) if x.dtype == torch.uint8 else x.float()


def _resize01(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


@dataclass
class InceptionOutput:
    features: torch.Tensor  # B x dims float32
    logits: torch.Tensor | None  # B x 1008 float64 (fc without its bias), when asked


class InceptionExtractor:
    """The loaded network on a device; call it on preprocessed batches (:func:`to_inception_input`)."""

    def __init__(self, weights: str | os.PathLike, device: str | torch.device = "cpu", dims: int = 2048,
                 channels_last: bool = True):
        if dims not in DIMS:
            raise GanProbeError(f"dims must be one of {', '.join(map(str, DIMS))} (got {dims})", param="dims")
        self.weights = Path(weights)
        self.device = torch.device(device)
        self.dims = dims
        self.net = load_fid_inception(weights).to(self.device)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # 1008 x 2048 (no bias), float64 on the CPU, where the pooled features are (MPS has no float64)
        self.fc_weight = self.net.fc.weight.detach().to("cpu", torch.float64)

    def weights_id(self) -> list:
        """What identifies the weights in a cache key (name, size, mtime: cheap and changes with the file)."""
        st = self.weights.stat()
        return [self.weights.name, st.st_size, st.st_mtime_ns]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, logits: bool = False) -> InceptionOutput:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        n = self.net
        with exact_float32():  # no TF32: numbers must not drift from pytorch-fid's
            x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))
            if self.dims == 64 and not logits:
                return InceptionOutput(_pool(x), None)
            f64 = _pool(x) if self.dims == 64 else None
            x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))
            f192 = _pool(x) if self.dims == 192 else None
            if self.dims == 192 and not logits:
                return InceptionOutput(f192, None)
            for block in (n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d,
                          n.Mixed_6e):
                x = block(x)
            f768 = _pool(x) if self.dims == 768 else None
            if self.dims == 768 and not logits:
                return InceptionOutput(f768, None)
            x = n.Mixed_7c(n.Mixed_7b(n.Mixed_7a(x)))
            pool3 = _pool(x)
        feats = {64: f64, 192: f192, 768: f768, 2048: pool3}[self.dims]
        out_logits = None
        if logits:
            out_logits = pool3.to(torch.float64) @ self.fc_weight.T
        return InceptionOutput(feats, out_logits)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1).float().cpu()


def inception_feature_space(checkpoint=None, device: str | torch.device = "cpu", weights=None, dims: int = 2048,
                            download: bool = False, **_):
    """The registry's ``inception`` space: [-1, 1] images -> N x dims float32 (pool3 by default)."""
    from gan_probe.features import FeatureSpace

    extractor = InceptionExtractor(find_inception_weights(weights, download=download), device, dims)

    def extract(images: torch.Tensor) -> torch.Tensor:
        x01 = ((images.float() + 1) / 2).clamp(0, 1)
        return extractor(to_inception_input(x01)).features

    return FeatureSpace("inception", dims, extract, None, 3,
                        f"{EXTRACTOR}, {dims}-d; {PREPROCESSING}", module=extractor.net)
