"""`gan-probe report MODEL` over a loose model: a TorchScript file, model card or pickle that is not a
gan-probe RUN_DIR (docs/your-model.md).

Every analysis of a loose model writes to ``analysis/<name>/`` in the model's folder (as a RUN_DIR's
do), so the report reads that folder and writes ``report.html`` there. There is no training section
(no config, log or samples over epochs); a *Model* section shows the card of each model instead.
The analyses are made on the generator (score, memorization, walk, arithmetic) or on the
discriminator (filters, classify): ``MODEL`` is one of them, by its card's ``kind``, and ``disc``
(or ``gen``) names the other. A missing analysis is listed with the command that makes it on that
model path, or with why it cannot be made yet (no discriminator given, no ``dataset`` given).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gan_probe.errors import GanProbeError
from gan_probe.report.sections import Analysis, Datasets, run_datasets

D_ANALYSES = ("filters", "classify")  # made on the discriminator; every other one on the generator
NEEDS_DATA = ("score", "memorization", "classify")  # need the model's data (report --dataset)
SEARCHES_DATA = ("filters",)  # search the model's data when report --dataset gives it (else digits)


@dataclass(frozen=True)
class LooseModel:
    """What a report over loose model files knows: the folder its analyses live in, the generator and
    discriminator paths (either may be None), the data (None: not given), and the options the
    analyses' commands pass on (``--class``/``--psi`` to the generator, ``--trust-pickle`` to both)."""

    folder: Path
    gen: str | None
    disc: str | None
    datasets: Datasets | None
    gen_options: dict = field(default_factory=dict)
    cards: dict = field(default_factory=dict)  # path -> card facts shown in the Model section

    def argv(self, a: Analysis, make=None) -> list[str]:
        """The command (after ``gan-probe``) that makes ``a`` on this model (``make``: the analysis's
        command builder, default ``a.args``): placeholders where a path or the data is missing
        (:meth:`missing` says which)."""
        from gan_probe.runs import command_line

        on_disc = a.name in D_ANALYSES
        model = (self.disc if on_disc else self.gen) or ("DISCRIMINATOR" if on_disc else "GENERATOR")
        ds = self.datasets or Datasets("DATASET", "")
        args = (make or a.args)(model, ds)
        if not on_disc and "--features" in args:  # a generator alone has no D to read features from
            i = args.index("--features") + 1
            args = [*args[:i], ",".join(f for f in args[i].split(",") if f != "disc") or "pixels", *args[i + 1:]]
        if a.name in SEARCHES_DATA and self.datasets is not None and "--dataset" not in args:
            args = [*args, "--dataset", self.datasets.train.split(":")[0]]
        options = {"trust_pickle": self.gen_options.get("trust_pickle")} if on_disc else self.gen_options
        return args + command_line("x", **options)[2:]

    def missing(self, a: Analysis) -> str:
        """Why ``a`` cannot be made from what the report was given ('' when it can)."""
        if a.name in D_ANALYSES and self.disc is None:
            return "needs the discriminator: give report --disc D.json (a card, TorchScript file or pickle)"
        if a.name not in D_ANALYSES and self.gen is None:
            return "needs the generator: give report --gen G.ts (a TorchScript file, card or pickle)"
        if a.name in NEEDS_DATA and self.datasets is None:
            return "needs the model's data: give report --dataset NAME (digits, cifar10, an image folder)"
        return ""


def loose_model(model: str | os.PathLike, *, gen=None, disc=None, dataset: str | None = None,
                class_index: int | None = None, psi: float = 1.0, trust_pickle: bool = False) -> LooseModel:
    """The :class:`LooseModel` of ``model`` (its card's ``kind`` says whether it is the generator or the
    discriminator) and the other model, if given. A StyleGAN pickle (no card) holds both: it is the
    generator (``G_ema``), and the discriminator (``D``) too unless another one is given."""
    from gan_probe.models.sources import is_foreign, model_kind

    paths = {"generator": gen, "discriminator": disc}
    kind = model_kind(model)
    if paths[kind] is not None and str(paths[kind]) != str(model):
        raise GanProbeError(f"{model} is a {kind} and {paths[kind]} was given as the {kind} too", param=kind[:3])
    paths[kind] = model
    if _holds_both(model) and paths["discriminator"] is None:
        paths["discriminator"] = model
    for k, p in paths.items():
        if p is not None and (not is_foreign(p) or (model_kind(p) != k and not _holds_both(p))):
            raise GanProbeError(f"{p} is not a {k} model file (a TorchScript file with its sidecar, a card or a "
                                f"pickle whose kind is {k})", param=k[:3])
    options = {"class": class_index, "psi": None if psi == 1.0 else psi, "trust_pickle": trust_pickle}
    cards = {str(p): card_facts(p) for p in paths.values() if p is not None}
    return LooseModel(Path(model).parent, None if paths["generator"] is None else str(paths["generator"]),
                      None if paths["discriminator"] is None else str(paths["discriminator"]),
                      run_datasets(dataset) if dataset else None, options, cards)


def _holds_both(path) -> bool:
    """A StyleGAN pickle without a card: its G_ema and its D."""
    p = Path(path)
    return p.suffix.lower() == ".pkl" and not p.with_name(p.name + ".json").is_file()


def card_facts(path) -> list[tuple[str, object]]:
    """The card keys a reader wants, as (key, value) rows (read from the file, the model is not run)."""
    from gan_probe.models.cards import read_card

    p = Path(path)
    card_path = p if p.suffix.lower() == ".json" else p.with_name(p.name + ".json")
    card = read_card(card_path) if card_path.is_file() else {}
    source = ("pickle" if p.suffix.lower() == ".pkl" or "pickle" in card else
              "TorchScript" if card_path != p or "torchscript" in card else f"factory {card.get('factory', '?')}")
    rows: list[tuple[str, object]] = [("file", str(p)), ("source", source)]
    for key in ("kind", "z_dim", "z_shape", "z_dist", "output_range", "image_size", "channels", "num_classes",
                "layers", "state_dict"):
        if key in card:
            rows.append((key, card[key]))
    return rows


def model_section(loose: LooseModel) -> str:
    """The section that stands where a RUN_DIR's training section would."""
    from html import escape

    from gan_probe.report import html

    parts = ['<section id="training"><h2>Model</h2>',
             '<p class="blurb">A model gan-probe did not train (docs/your-model.md): no training curves or samples '
             'over epochs. Its card, as given:</p>']
    for path, rows in loose.cards.items():
        parts.append(f"<h3>{escape(Path(path).name)}</h3>" + html.facts(rows))
    parts.append("</section>")
    return "".join(parts)
