"""Datasets by name: a small registry over torchvision's loaders.

Every dataset yields ``(image, label)`` with ``image`` a float tensor in [-1, 1]
of shape ``channels x size x size`` (the DCGAN paper's only preprocessing) and
``label`` an int (-1 where a dataset has none). Names take an optional split:
``cifar10:train``, ``svhn:extra``, ``digits:test``, ``lsun:bedroom_train``. A path
to a directory is an image folder (recursive, extensions in any case; the first
level of sub-folders gives the class labels).

Nothing is downloaded unless the caller passes ``download=True``; missing data
gives a :class:`GanProbeError` naming the command that fetches it.

Adding a dataset: one torchvision dataset is one row of :data:`TORCHVISION_DATASETS`;
any other is one loader function under ``@register(...)`` (see ``digits``, ``imagenet32``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from gan_probe.errors import GanProbeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
DATA_ROOT_ENV = "GAN_PROBE_DATA_ROOT"
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def default_data_root() -> Path:
    """``$GAN_PROBE_DATA_ROOT``, else ``$XDG_CACHE_HOME/gan-probe/data`` (``~/.cache/...``)."""
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "gan-probe" / "data"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    channels: int
    image_size: int  # the size a model is trained at by default
    splits: tuple[str, ...]
    default_split: str
    loader: Callable[..., Dataset]
    description: str
    downloadable: bool = True


DATASETS: dict[str, DatasetInfo] = {}


def register(name: str, *, channels: int, image_size: int, splits: tuple[str, ...],
             default_split: str, description: str, downloadable: bool = True, fetch_by_hand: str | None = None):
    """Register the decorated ``loader(root=, split=, image_size=, channels=, download=)`` as dataset ``name``.
    ``fetch_by_hand``: for data only its publisher hands out, how to get it: the dataset is not downloadable,
    and asking its loader to download raises that message (before the loader runs)."""
    def deco(fn: Callable[..., Dataset]):
        if fetch_by_hand is not None:
            fn = _refusing_download(fn, fetch_by_hand)
        DATASETS[name] = DatasetInfo(name, channels, image_size, splits, default_split, fn,
                                     description, downloadable and fetch_by_hand is None)
        return fn
    return deco


def _refusing_download(load: Callable[..., Dataset], fetch_by_hand: str) -> Callable[..., Dataset]:
    @functools.wraps(load)
    def refusing(*, download: bool = False, **kwargs) -> Dataset:
        if download:
            raise GanProbeError(fetch_by_hand)
        return load(download=download, **kwargs)

    return refusing


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``NAME[:SPLIT]`` or image-folder path."""

    name: str  # registry name, or "folder"
    split: str
    path: Path | None = None

    def __str__(self) -> str:
        return str(self.path) if self.path else f"{self.name}:{self.split}"

    @property
    def info(self) -> DatasetInfo | None:
        return DATASETS.get(self.name)


def parse_dataset(spec: str) -> DatasetSpec:
    """``cifar10`` -> (cifar10, train); ``svhn:test``; an existing directory -> folder."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return DatasetSpec("folder", "all", p)
    name, _, split = spec.partition(":")
    name = name.lower()
    if name not in DATASETS:
        if os.sep in spec or spec.startswith("."):
            raise GanProbeError(f"image folder not found: {spec}")
        raise GanProbeError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASETS)} or give an image folder")
    info = DATASETS[name]
    split = split or info.default_split
    if info.splits and split not in info.splits and name != "lsun":
        raise GanProbeError(f"dataset {name} has no split {split!r}; choose one of {', '.join(info.splits)}")
    return DatasetSpec(name, split)


def dataset_channels(spec: DatasetSpec) -> int:
    return spec.info.channels if spec.info else 3


def dataset_image_size(spec: DatasetSpec) -> int:
    return spec.info.image_size if spec.info else 64


def image_transform(image_size: int, channels: int):
    """PIL -> L/RGB -> resize (shorter side) -> centre crop -> [-1, 1] tensor."""
    from torchvision import transforms

    mode = "L" if channels == 1 else "RGB"
    return transforms.Compose([
        transforms.Lambda(lambda im: im.convert(mode)),
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * channels, [0.5] * channels),
    ])


def load_dataset(spec: str | DatasetSpec, image_size: int | None = None, channels: int | None = None,
                 root: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """The dataset named by ``spec`` at ``image_size`` (its default if None)."""
    if isinstance(spec, str):
        spec = parse_dataset(spec)
    size = image_size or dataset_image_size(spec)
    ch = channels or dataset_channels(spec)
    if spec.path is not None:
        ds = ImageFolderDataset(spec.path, image_transform(size, ch))
    else:
        root = Path(root).expanduser() if root else default_data_root()
        ds = spec.info.loader(root=root, split=spec.split, image_size=size, channels=ch, download=download)
    if len(ds) == 0:
        raise GanProbeError(f"dataset {spec} is empty")
    return ds


def _missing(name: str, root: Path, what: str) -> GanProbeError:
    return GanProbeError(
        f"{what} not found (or corrupt) under {root}; fetch it with `gan-probe download {name} --data-root {root}` "
        f"(or pass --download, or point --data-root / ${DATA_ROOT_ENV} at a copy)"
    )


def _torchvision(name: str, what: str, make: Callable[[], Dataset], root: Path, download: bool = False) -> Dataset:
    try:
        return make()
    except (RuntimeError, OSError) as e:
        if download:  # a failed fetch: saying "download it" again would go round in circles
            reason = " ".join(str(e).split()) or type(e).__name__
            reason = reason if len(reason) <= 240 else reason[:240] + "..."
            raise GanProbeError(f"could not download {what} to {root} ({reason}); without network access, copy "
                                f"the dataset files there by hand (the layout torchvision's {what} loader expects)"
                                ) from e
        if not isinstance(e, RuntimeError):
            raise GanProbeError(f"{what} under {root} could not be read ({type(e).__name__}: {e})") from e
        if "not found" in str(e).lower() or "download" in str(e).lower():
            raise _missing(name, root, what) from e
        raise GanProbeError(f"{what} under {root} could not be read: {e}") from e
    except ValueError as e:
        raise GanProbeError(f"{what} under {root} could not be read ({type(e).__name__}: {e})") from e


class TensorImageDataset(Dataset):
    """Images already in memory: ``images`` N x C x H x W in [-1, 1], ``labels`` N."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


@register("digits", channels=1, image_size=32, splits=("train", "test", "all"), default_split="train",
          description="scikit-learn's bundled 8x8 handwritten digits (1,797), upscaled; offline",
          downloadable=False)
def _digits(root: Path, split: str, image_size: int, channels: int, download: bool) -> Dataset:
    images, labels = digits_arrays()
    x = torch.from_numpy(images.astype(np.float32) / 16.0)[:, None]  # N x 1 x 8 x 8 in [0, 1]
    y = torch.from_numpy(labels)
    idx = digits_split_indices(split, labels)
    x, y = x[idx], y[idx]
    if image_size != 8:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear",
                                            align_corners=False).clamp_(0, 1)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    return TensorImageDataset(x * 2 - 1, y)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797 x 8 x 8 float64, 0..16) and labels (int64), as
    ``sklearn.datasets.load_digits`` gives them, read from its bundled CSV without importing
    scikit-learn (about a second of a short run's start-up)."""
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")  # finds the package without running it
    folders = list(spec.submodule_search_locations or []) if spec else []
    csv = Path(folders[0]) / "datasets" / "data" / "digits.csv.gz" if folders else None
    if csv is not None and csv.is_file():
        with gzip.open(csv, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # a layout this reader does not know

    d = load_digits()
    return d.images, d.target.astype(np.int64)


# The fixed digits split: which of the 1,797 images are test images (a bit per image, packed), i.e.
# sklearn's train_test_split(test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
# stratify=labels), stored so that reading digits needs no scikit-learn (a test recomputes it).
_DIGITS_TEST_BITS = (
    "000004883526104000164101934205001a00080102240028062c1e081108960a009019120420f8a0028110e040080a9a"
    "304415244942c0a00a2030804004d821408b8020004885c400104008a0900005486800301000020ec409001224840083"
    "b8013c21a69c0a0204000f48400804a4184902124061e5008024604e94376a819216015480004842a0a4180a5000a40b"
    "8561e688108049124c80c02205068e000109f202c141398813c009190000148e01008410a0e10033282900c144c8c068"
    "0a0102930292030922a6402c26042108a8608198c8a01412861202128138a41500")


def digits_split_indices(split: str, labels: np.ndarray) -> np.ndarray:
    """The fixed, seeded, stratified digits split (25% test), as sorted indices."""
    if split == "all":
        return np.arange(len(labels))
    if len(labels) != 1797:
        raise GanProbeError(f"the digits split is defined for scikit-learn's 1,797 digits (got {len(labels)})")
    test = np.unpackbits(np.frombuffer(bytes.fromhex(_DIGITS_TEST_BITS), np.uint8))[:len(labels)].astype(bool)
    return np.flatnonzero(test if split == "test" else ~test)


@register("shapes", channels=3, image_size=32, splits=("train", "test"), default_split="train",
          description="procedural 32x32 textured shapes, 10 classes (5,000 train / 2,000 test), made from a seed; "
                      "offline", downloadable=False)
def _shapes(root: Path, split: str, image_size: int, channels: int, download: bool) -> Dataset:
    from gan_probe.datasets_procedural import shapes_dataset

    return shapes_dataset(split, image_size, channels)


@dataclass(frozen=True)
class TorchvisionDataset:
    """One dataset torchvision reads (and can download): a row of :data:`TORCHVISION_DATASETS`."""

    name: str  # registry name
    loader: str  # the class in torchvision.datasets
    what: str  # how messages name it; "{split}" is filled in
    split_by: str  # "train": torchvision takes train=True/False; "split": it takes split=NAME
    splits: tuple[str, ...]
    channels: int
    image_size: int
    description: str
    options: tuple[tuple[str, object], ...] = ()  # further keyword arguments of the torchvision class

    def load(self, root: Path, split: str, image_size: int, channels: int, download: bool) -> Dataset:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, self.loader)
        split_arg = {"train": split == "train"} if self.split_by == "train" else {"split": split}
        return _torchvision(self.name, self.what.format(split=split), lambda: cls(
            str(root), **split_arg, **dict(self.options), download=download,
            transform=image_transform(image_size, channels)), root, download)


TORCHVISION_DATASETS = (
    TorchvisionDataset("cifar10", "CIFAR10", "CIFAR-10", "train", ("train", "test"), 3, 32,
                       "CIFAR-10 (python pickle batches under cifar-10-batches-py/)"),
    TorchvisionDataset("svhn", "SVHN", "SVHN {split}_32x32.mat", "split", ("train", "test", "extra"), 3, 32,
                       "SVHN cropped digits (train_32x32.mat / test_32x32.mat / extra_32x32.mat); label 10 means 0"),
    TorchvisionDataset("mnist", "MNIST", "MNIST", "train", ("train", "test"), 1, 32,
                       "MNIST (idx files under MNIST/raw/)"),
    TorchvisionDataset("fashion-mnist", "FashionMNIST", "Fashion-MNIST", "train", ("train", "test"), 1, 32,
                       "Fashion-MNIST (idx files under FashionMNIST/raw/)"),
    TorchvisionDataset("celeba", "CelebA", "CelebA", "split", ("train", "valid", "test", "all"), 3, 64,
                       "CelebA aligned faces (celeba/img_align_celeba + list files); label = identity",
                       options=(("target_type", "identity"),)),
)


def register_torchvision(row: TorchvisionDataset) -> None:
    """Register one torchvision dataset (its default split: the first of ``row.splits``)."""
    register(row.name, channels=row.channels, image_size=row.image_size, splits=row.splits,
             default_split=row.splits[0], description=row.description)(row.load)


for _row in TORCHVISION_DATASETS:
    register_torchvision(_row)
del _row


@register("lsun", channels=3, image_size=64, splits=(), default_split="bedroom_train",
          description="LSUN scenes, one category: lsun:bedroom_train (lmdb folders; needs `pip install lmdb`)",
          fetch_by_hand="LSUN cannot be downloaded by torchvision; get it with the LSUN download script "
                        "(github.com/fyu/lsun) and pass --data-root")
def _lsun(root: Path, split: str, image_size: int, channels: int, download: bool) -> Dataset:
    from torchvision.datasets import LSUN

    try:
        import lmdb  # noqa: F401
    except ImportError as e:
        raise GanProbeError("LSUN needs the lmdb package: pip install lmdb") from e
    category = split if split.endswith(("_train", "_val")) else f"{split}_train"
    return _torchvision("lsun", f"LSUN {category}_lmdb", lambda: LSUN(
        str(root), classes=[category], transform=image_transform(image_size, channels)), root, download)


@register("imagenet32", channels=3, image_size=32, splits=("train", "val"), default_split="train",
          description="Downsampled Imagenet 32x32 (Imagenet32_train_npz/train_data_batch_*.npz, Imagenet32_val_npz/)",
          fetch_by_hand="Imagenet32 needs a (free) image-net.org account; download Imagenet32_train_npz "
                        "and Imagenet32_val_npz there and unpack them under --data-root")
def _imagenet32(root: Path, split: str, image_size: int, channels: int, download: bool) -> Dataset:
    return Imagenet32Dataset(root, split, image_transform(image_size, channels))


class Imagenet32Dataset(Dataset):
    """The official downsampled-Imagenet npz batches: ``data`` N x 3072 uint8 (CHW), ``labels`` 1..1000."""

    def __init__(self, root: Path, split: str, transform):
        folder = Path(root) / f"Imagenet32_{split}_npz"
        files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        if not files:
            raise _missing("imagenet32", Path(root), f"Imagenet32 {split} batches ({folder.name}/*.npz)")
        data, labels = [], []
        for f in files:
            try:
                with np.load(f) as z:
                    data.append(z["data"].reshape(-1, 3, 32, 32))
                    labels.append(np.asarray(z["labels"], dtype=np.int64) - 1)
            except (OSError, KeyError, ValueError) as e:
                raise GanProbeError(f"{f} is not an Imagenet32 batch ({type(e).__name__})") from e
        self.data = np.concatenate(data)
        self.labels = np.concatenate(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i].transpose(1, 2, 0))), int(self.labels[i])


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder``, recursively, any extension case, sorted."""
    folder = Path(folder)
    if not folder.exists():
        raise GanProbeError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise GanProbeError(f"not a folder: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def open_image(path: Path):
    """PIL image, fully decoded; a corrupt file or a decompression bomb (more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS``) raises GanProbeError naming it."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from gan_probe.metrics.sources import bomb_refusal

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if (refusal := bomb_refusal(im.size)) is not None:
                    raise GanProbeError(f"cannot read image {path} ({refusal})")
                im.load()
                return im.copy() if im.mode not in ("P", "PA") else im.convert("RGBA")
    except Image.DecompressionBombError as e:
        raise GanProbeError(f"cannot read image {path} ({bomb_refusal(None, str(e))})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise GanProbeError(f"cannot read image {path} ({type(e).__name__})") from e


class ImageFolderDataset(Dataset):
    """Recursive image folder; label = index of the first-level sub-folder (0 if flat)."""

    def __init__(self, folder: str | os.PathLike, transform):
        self.root = Path(folder)
        self.files = list_images(self.root)
        if not self.files:
            raise GanProbeError(f"no images found in {self.root} (extensions: {' '.join(IMAGE_EXTENSIONS)})")
        classes = sorted({f.relative_to(self.root).parts[0] for f in self.files
                          if len(f.relative_to(self.root).parts) > 1})
        self.classes = classes
        index = {c: i for i, c in enumerate(classes)}
        self.labels = [index.get(f.relative_to(self.root).parts[0], 0) if len(f.relative_to(self.root).parts) > 1
                       else 0 for f in self.files]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        return self.transform(open_image(self.files[i])), self.labels[i]


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Fetch a downloadable dataset's every split into ``root``."""
    spec = parse_dataset(name)
    info = spec.info
    if info is None or not info.downloadable:
        raise GanProbeError(f"{name} cannot be downloaded by gan-probe: {info.description if info else 'a folder'}")
    root = Path(root).expanduser() if root else default_data_root()
    for split in info.splits:
        info.loader(root=root, split=split, image_size=info.image_size, channels=info.channels, download=True)
    return root
