"""``gan-probe memorization``: images in, statistics + figures + summary.json out.

GEN is a checkpoint / RUN_DIR (``n`` samples generated with ``seed``), an image
folder, or a dataset name; TRAIN and TEST are image folders or dataset names
(``digits:train``, ``cifar10:test``). Every set is brought to one resolution and
channel count: the checkpoint's; without a checkpoint, ``image_size`` if given,
else TRAIN's (a dataset's default size, or a folder's first image). Images of
another size are resized (shorter side, bilinear) and centre-cropped to it, as
training does; the summary's ``notes`` say which sets were resized.

Under ``torchrun`` each process extracts the features of its contiguous share of every set (image
files, dataset indices, generated samples by index, in whole batches); features, images and names
are gathered in rank order, so rank 0 holds exactly the one-process sets; it alone runs the kNN
and writes.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gan_probe.analysis.memorization import MemorizationSettings, features_to_memorization
from gan_probe.errors import GanProbeError

PAPER_FIGURE = "beyond the paper (section 6 says no nearest-neighbour search was done)"


@dataclass
class ImageSet:
    """Images of one role, as uint8 N x H x W x C (for figures) and features N x dim."""

    role: str
    source: str
    kind: str  # checkpoint | folder | dataset
    images: np.ndarray
    features: np.ndarray
    names: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Geometry:
    image_size: int
    channels: int
    origin: str


def gen_kind(gen: str | os.PathLike) -> str:
    """``checkpoint`` (file or RUN_DIR), ``folder`` (images) or ``dataset`` (a name)."""
    p = Path(gen).expanduser()
    if p.is_file():
        return "checkpoint"
    if p.is_dir():
        if (p / "checkpoints" / "last.pt").is_file() or (p / "last.pt").is_file():
            return "checkpoint"
        return "folder"
    from gan_probe.data import parse_dataset

    spec = parse_dataset(str(gen))  # raises a clear error for a missing path / unknown name
    return "folder" if spec.path is not None else "dataset"


def default_out_dir(gen: str | os.PathLike) -> Path:
    """``<RUN_DIR>/analysis/memorization``; beside a GEN folder: ``<folder>-memorization``."""
    from gan_probe import runs

    kind = gen_kind(gen)
    if kind == "checkpoint":
        return runs.default_out(gen, "memorization")
    if kind == "folder":
        p = Path(gen).expanduser().resolve()
        return p.with_name(p.name + "-memorization")
    return Path("memorization-" + str(gen).replace(":", "-").replace(os.sep, "-"))


def choose_geometry(gen, train: str, image_size: int) -> Geometry:
    """The resolution every set is compared at (see the module docstring)."""
    from gan_probe.data import dataset_channels, dataset_image_size, list_images, open_image, parse_dataset

    if gen_kind(gen) == "checkpoint":
        from gan_probe.models.sources import model_info

        cfg = model_info(gen)  # a checkpoint's config, or any model source's info
        if image_size and image_size != cfg.image_size:
            raise GanProbeError(f"image_size {image_size} differs from the checkpoint's {cfg.image_size}px; "
                                "leave it out (samples are compared at the model's resolution)", param="image_size")
        return Geometry(cfg.image_size, cfg.channels, "the checkpoint")
    spec = parse_dataset(train)
    if spec.path is None:
        return Geometry(image_size or dataset_image_size(spec), dataset_channels(spec), f"TRAIN ({spec})")
    files = list_images(spec.path)
    if not files:
        raise GanProbeError(f"TRAIN folder {spec.path} holds no images")
    first = open_image(files[0])
    channels = 1 if first.mode in ("L", "LA", "I", "I;16", "F", "1") else 3
    return Geometry(image_size or min(first.size), channels, f"TRAIN's first image ({files[0].name})")


def _dataset_batches(spec_text: str, geo: Geometry, batch_size: int, data_root, download: bool,
                     role: str, d=None) -> Iterator[tuple[torch.Tensor, list[str], set, int]]:
    """Yield ([-1,1] batch, names, native sizes seen, images in this process's share) for a dataset
    or an image folder (this process's share of it under torchrun, ``d``; all of it without)."""
    from gan_probe.data import (TensorImageDataset, image_transform, list_images, load_dataset, open_image,
                                parse_dataset)

    spec = parse_dataset(spec_text)
    if spec.path is not None:
        files = list_images(spec.path)
        if not files:
            raise GanProbeError(f"{role} folder {spec.path} holds no images")
        tf = image_transform(geo.image_size, geo.channels)
        rows = _share(len(files), batch_size, d)
        for s in range(rows.start, rows.stop, batch_size):
            chunk = files[s:min(s + batch_size, rows.stop)]
            ims = [open_image(f) for f in chunk]
            yield (torch.stack([tf(im) for im in ims]), [str(f.relative_to(spec.path)) for f in chunk],
                   {im.size for im in ims}, len(rows))
        return
    ds = load_dataset(spec, geo.image_size, geo.channels, data_root, download)
    rows = _share(len(ds), batch_size, d)
    if isinstance(ds, TensorImageDataset):
        for s in range(rows.start, rows.stop, batch_size):
            x = ds.images[s:min(s + batch_size, rows.stop)]
            yield x, [f"{spec}#{i}" for i in range(s, s + len(x))], set(), len(rows)
        return
    if not rows:
        return
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, list(rows)), batch_size=batch_size,
                                         shuffle=False, num_workers=0)
    start = rows.start
    for x, _ in loader:
        yield x, [f"{spec}#{i}" for i in range(start, start + len(x))], set(), len(rows)
        start += len(x)


def _share(n: int, batch_size: int, d) -> range:
    """This process's rows of a set of ``n`` (all of them without torchrun), in whole batches."""
    from gan_probe.distributed import Dist, shard

    return shard(n, d or Dist(), block=batch_size)


def _generated_batches(checkpoint: str, n: int, seed: int, batch_size: int,
                       device, d=None) -> Iterator[tuple[torch.Tensor, list[str], set, int]]:
    from gan_probe.checkpoint import load_generator
    from gan_probe.sampling import generate

    g, config = load_generator(checkpoint, device)
    rows = _share(n, batch_size, d)
    start = rows.start
    for x in generate(g, config, rows.stop, seed, batch_size, device, start=rows.start):
        yield x, [f"seed {seed} #{i}" for i in range(start, start + len(x))], set(), len(rows)
        start += len(x)


def collect(role: str, source: str, kind: str, batches, space, d=None, geo: Geometry | None = None,
            progress: bool = False) -> ImageSet:
    """Run the feature space over every batch; keep uint8 images for the figures. Under torchrun
    (``d``), ``batches`` are this process's share: features, images, names are gathered in rank
    order (every rank gets the whole set). ``progress``: a bar (or lines) with the time left on
    stderr, from rank 0."""
    import contextlib

    from gan_probe.distributed import Dist, gather_objects, gather_rows, on_every_rank
    from gan_probe.progress import progress_bar
    from gan_probe.sampling import to_uint8

    d = d or Dist()

    def run():
        ims, feats, names, sizes = [], [], [], set()
        with contextlib.ExitStack() as stack:
            advance = None
            for x, nm, sz, total in batches:
                if advance is None:  # the total is known once the source is open
                    label = f"{space.name} features: {role} {source}"
                    advance = stack.enter_context(progress_bar(total, label, progress and d.main))
                feats.append(space(x).numpy())
                ims.append(to_uint8(x))
                names += nm
                sizes |= sz
                advance(len(x))
        return ims, feats, names, sizes

    ims, feats, names, sizes = on_every_rank(run, d)
    if d.world > 1:
        empty = (0, geo.image_size, geo.image_size, geo.channels) if geo else (0, 0, 0, 0)
        feats = [gather_rows(np.concatenate(feats) if feats else np.zeros((0, space.dim), np.float32), d)]
        ims = [gather_rows(np.concatenate(ims) if ims else np.zeros(empty, np.uint8), d)]
        shares = gather_objects((names, sizes), d)
        names = [name for nm, _ in shares for name in nm]
        sizes = set().union(*(sz for _, sz in shares))
        if not len(feats[0]):
            feats = []
    if not feats:
        raise GanProbeError(f"{role} ({source}) holds no images")
    images = np.concatenate(ims)
    notes = []
    h, w = images.shape[1:3]
    other = sorted(s for s in sizes if s != (w, h))
    if other:
        shown = ", ".join(f"{a}x{b}" for a, b in other[:4]) + (" ..." if len(other) > 4 else "")
        notes.append(f"{role} images of size {shown} were resized (shorter side) and centre-cropped to {w}x{h}")
    return ImageSet(role, source, kind, images, np.concatenate(feats).astype(np.float32), names, notes)


def compute_memorization(gen: str, train: str, test: str | None = None, *, features: str = "pixels",
                         n: int = 1000, seed: int = 0, image_size: int = 0, batch_size: int = 256,
                         device: str | torch.device = "cpu", data_root=None, download: bool = False,
                         settings: MemorizationSettings = MemorizationSettings(), disc=None,
                         progress: bool = False) -> dict:
    """Load GEN / TRAIN / TEST, extract features, compute every statistic (``progress``: on stderr).
    ``disc``: the discriminator whose features ``disc`` / ``random-disc`` use (default: GEN's own, a
    gan-probe checkpoint's D); any model source (a card, TorchScript file), so a generator gan-probe
    did not train has one too.

    Returns ``{"summary", "per_sample", "sets"}`` (``sets``: role -> :class:`ImageSet`).
    """
    from gan_probe.distributed import init_distributed
    from gan_probe.features import get_feature_space

    d = init_distributed(str(device))  # under torchrun: this process's device, the group joined
    dev = d.device
    kind = gen_kind(gen)
    if kind != "checkpoint" and getattr(gen, "has_options", lambda: False)():
        raise GanProbeError(f"{gen} is not a model: class_index, psi and trust_pickle apply to a generator")
    geo = choose_geometry(gen, train, image_size)
    checkpoint = gen if kind == "checkpoint" else None  # a model spec keeps --class / --psi / --trust-pickle
    if disc is not None:
        geo = _disc_geometry(disc, features, geo, kind == "checkpoint")
        checkpoint = disc
    extra = {"image_size": geo.image_size, "channels": geo.channels} if features == "pixels" else {}
    from gan_probe.distributed import on_every_rank

    space = on_every_rank(lambda: get_feature_space(features, checkpoint=checkpoint, device=dev, **extra), d)

    if kind == "checkpoint":
        gen_batches = _generated_batches(gen, n, seed, batch_size, dev, d)
    else:
        gen_batches = _dataset_batches(str(gen), geo, batch_size, data_root, download, "GEN", d)
    sets = {"gen": collect("GEN", str(gen), kind, gen_batches, space, d, geo, progress),
            "train": collect("TRAIN", train, "dataset", _dataset_batches(train, geo, batch_size, data_root,
                                                                          download, "TRAIN", d), space, d, geo,
                             progress)}
    if test:
        sets["test"] = collect("TEST", test, "dataset",
                               _dataset_batches(test, geo, batch_size, data_root, download, "TEST", d), space, d,
                               geo, progress)
    if not d.main:  # the other ranks shared the feature passes; rank 0 searches and writes
        return None
    run_settings = MemorizationSettings(**(settings.to_dict() | {"device": str(dev)}))
    res = features_to_memorization(sets["gen"].features, sets["train"].features,
                                   sets["test"].features if test else None, run_settings)
    s = res["summary"]
    s["notes"] = [note for st in sets.values() for note in st.notes] + s["notes"]
    s.update({
        "gen": str(gen), "gen_kind": kind, "train": train, "test": test, "features": features,
        "disc": None if disc is None else str(disc),
        "feature_description": space.description, "image_size": geo.image_size, "channels": geo.channels,
        "resolution_from": geo.origin, "seed": seed if kind == "checkpoint" else None,
        "n_requested": n if kind == "checkpoint" else None, "settings": run_settings.to_dict(),
        "most_suspicious": _most_suspicious(res["per_sample"], sets, 10),
    })
    res["sets"] = sets
    res["model"] = gen if kind == "checkpoint" else None
    return res


def _disc_geometry(disc, features: str, geo: Geometry, gen_is_model: bool) -> Geometry:
    """The comparison geometry with a separate discriminator: G's, which D must take; else D's."""
    from gan_probe.models.sources import model_info

    if features not in ("disc", "random-disc"):
        raise GanProbeError(f"disc names the discriminator whose features disc / random-disc use; features is "
                            f"{features!r}", param="disc")
    d = model_info(disc, "discriminator")
    if gen_is_model and (d.image_size, d.channels) != (geo.image_size, geo.channels):
        raise GanProbeError(f"the discriminator {disc} takes {d.channels} x {d.image_size}px images but GEN makes "
                            f"{geo.channels} x {geo.image_size}px", param="disc")
    return geo if gen_is_model else Geometry(d.image_size, d.channels, "the discriminator")


def _most_suspicious(per: dict, sets: dict, count: int) -> list[dict]:
    order = np.argsort(per["relative_distance"], kind="stable")[:count]
    return [{"gen": sets["gen"].names[i], "relative_distance": float(per["relative_distance"][i]),
             "nearest_distance": float(per["nearest_distance"][i]), "flagged": bool(per["flagged"][i]),
             "nearest_train": sets["train"].names[int(per["neighbour_indices"][i, 0])]} for i in order]


def write_outputs(res: dict, out_dir: str | os.PathLike, *, grid_rows: int = 8, seed: int = 0) -> dict:
    """Figures, per_sample.csv and summary.json (each written atomically) under ``out_dir``."""
    from gan_probe import runs
    from gan_probe.analysis.memorization_figures import distance_histogram_png, neighbour_grid_png
    from gan_probe.io import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s, per, sets = res["summary"], res["per_sample"], res["sets"]
    files = {
        "neighbours": neighbour_grid_png(out / "neighbours.png", sets["gen"].images, sets["train"].images, per,
                                         rows=grid_rows, seed=seed),
        "histogram": distance_histogram_png(out / "distances.png", per, s),
    }
    with atomic_path(out / "per_sample.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "gen", "nearest_distance", "relative_distance", "flagged", "nearest_train"])
        for i, name in enumerate(sets["gen"].names):
            j = int(per["neighbour_indices"][i, 0])
            w.writerow([i, name, f"{per['nearest_distance'][i]:.9g}", f"{per['relative_distance'][i]:.9g}",
                        int(per["flagged"][i]), sets["train"].names[j]])
    files["per_sample"] = out / "per_sample.csv"
    s["out"] = str(out)
    s["files"] = {k: str(v) for k, v in files.items()} | {"summary": str(out / runs.SUMMARY_FILE)}
    s["command"] = "memorization"
    summary = runs.new_summary("memorization", s, argv=_command_line(s, out, res.get("model")), settings=s["settings"],
                               provenance=runs.provenance(s["gen"] if s["gen_kind"] == "checkpoint" else None,
                                                          gen=s["gen"], train=s["train"], test=s["test"]),
                               seed=s["seed"], paper_figure=PAPER_FIGURE)
    runs.write_summary(out, summary)
    return summary


def _command_line(s: dict, out: Path, model=None) -> list[str]:
    """The ``gan-probe memorization`` line that redoes the run recorded in summary ``s``."""
    from gan_probe import runs

    default = MemorizationSettings()
    checkpoint = s["gen_kind"] == "checkpoint"
    flags = {"train": s["train"], "test": s["test"],
             "features": None if s["features"] == "pixels" else s["features"],
             "n": s["n_requested"] if checkpoint else None, "seed": s["seed"] or None,
             "image_size": None if checkpoint or s.get("disc") else s["image_size"], "disc": s.get("disc")}
    flags.update({name: s["settings"][name] for name in ("k", "alpha", "n_rel", "copy_quantile", "ct_cells")
                  if s["settings"][name] != getattr(default, name)})
    return runs.command_line("memorization", model if checkpoint and model is not None else s["gen"], **flags,
                             out=out)


def run_memorization(gen: str, train: str, test: str | None = None, *, out: str | os.PathLike | None = None,
                     **kwargs) -> dict:
    """:func:`compute_memorization` then :func:`write_outputs` (default out: :func:`default_out_dir`)."""
    out_dir = Path(out) if out else default_out_dir(gen)
    res = compute_memorization(gen, train, test, **kwargs)
    if res is None:  # torchrun, rank > 0
        return None
    return write_outputs(res, out_dir, seed=kwargs.get("seed", 0))
