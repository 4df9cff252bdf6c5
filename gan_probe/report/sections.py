"""The analyses a report knows: which command makes each, which paper figure it answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable



@dataclass(frozen=True)
class Datasets:
    """The run's training data as dataset arguments for the analysis commands."""

    train: str
    test: str  # "" when the dataset has no test split


@dataclass(frozen=True)
class Analysis:
    name: str  # the command and the folder RUN_DIR/analysis/<name>
    title: str
    figure: str  # which figure / table of the paper it corresponds to
    blurb: str
    args: Callable[[str, Datasets], list[str]]  # command-line args after `gan-probe`
    offline: bool = True  # --run-missing may run it (needs no download)


def _memorization_args(run: str, ds: Datasets) -> list[str]:
    return ["memorization", run, "--train", ds.train] + (["--test", ds.test] if ds.test else [])


ANALYSES: tuple[Analysis, ...] = (
    Analysis("score", "Sample quality: FID, IS, KID", "no figure in the paper (section 6 discusses quality by eye); "
             "published DCGAN FIDs for reference: CIFAR-10 49.03 (StudioGAN), CelebA-64 12.5 (TTUR)",
             "Fréchet Inception distance, Inception score and kernel Inception distance of the generator's samples "
             "against the training data.",
             lambda run, ds: ["score", run, "--ref", ds.train]),
    Analysis("memorization", "Memorization: nearest training neighbours",
             "beyond the paper (section 6 says no nearest-neighbour search was done)",
             "Each generated sample beside its nearest training images; distance statistics against held-out data.",
             _memorization_args),
    Analysis("walk", "Walking in the latent space", "Fig. 4",
             "Interpolations between random points of Z. Smooth transitions suggest the model learned relevant "
             "representations; sharp jumps would suggest memorization.",
             lambda run, ds: ["walk", run, "--gif"]),
    Analysis("arithmetic", "Vector arithmetic on z", "Figs. 7 and 8",
             "Averaged exemplar z vectors combined as a - b + c and decoded; the same arithmetic in pixel space for "
             "comparison.",
             lambda run, ds: ["arithmetic", run, "--sheet"]),
    Analysis("filters", "What the discriminator's features respond to", "Fig. 5",
             "Guided backpropagation of the maximal responses of features of D's last conv layer on the images "
             "that excite them most, random-init D beside the trained D; D's first-layer filters; top-activating "
             "images.",
             lambda run, ds: ["filters", run]),
    Analysis("classify", "Discriminator features + linear L2-SVM", "Tables 1 and 2",
             "The paper's representation experiment: D's conv layers max-pooled to 4x4, concatenated, a linear "
             "L2-SVM on top.",
             lambda run, ds: ["classify", run, "--features", "disc", "--dataset", ds.train.split(":")[0]]),
)

# The paper's numbers for the classification section.
PAPER_CLASSIFICATION = (
    ("CIFAR-10 (Table 1)", "accuracy, all labels", "82.8%",
     "D trained on Imagenet-1k (not CIFAR-10); 28,672-d features; L2-SVM"),
    ("CIFAR-10 (Table 1)", "accuracy, 400 labels per class", "73.8% (±0.4)", "same features"),
    ("SVHN (Table 2)", "test error, 1000 labels", "22.48%", "D trained on SVHN; supervised CNN of the same "
                                                              "architecture: 28.87%"),
)


def run_datasets(dataset: str) -> Datasets:
    """Train/test dataset arguments for a run trained on ``dataset`` (``digits``, ``cifar10:train``, a folder)."""
    from gan_probe.data import DATASETS

    if not dataset:
        return Datasets("digits:train", "digits:test")
    name, _, _split = dataset.partition(":")
    info = DATASETS.get(name.lower())
    if info is None:  # an image folder
        return Datasets(dataset, "")
    test = f"{info.name}:test" if "test" in info.splits else ""
    return Datasets(f"{info.name}:{_split or info.default_split}", test)


def inception_weights_path() -> Path | None:
    """pytorch-fid's Inception weights, where `gan-probe score` would find them (None if absent)."""
    from gan_probe.errors import GanProbeError
    from gan_probe.features.inception import find_inception_weights

    try:
        return find_inception_weights()
    except GanProbeError:
        return None


def inception_note() -> str:
    from gan_probe.features.inception import WEIGHTS_FILENAME as INCEPTION_WEIGHTS, WEIGHTS_URL as INCEPTION_URL
    from gan_probe.features.inception import hub_weights_path

    where = hub_weights_path().parent
    return (f"FID, IS and KID need pytorch-fid's Inception weights ({INCEPTION_WEIGHTS}, about 95 MB), "
            f"which gan-probe never downloads behind your back. On a machine with network access, download "
            f"{INCEPTION_URL} and put the file in {where} (torch hub's cache; set $TORCH_HOME to move it), "
            f"then run the command below.")
