"""The typer app every command module registers on, and the options they share."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="gan-probe",
    help="Train the DCGAN paper's reference model and probe GANs: FID/IS/KID, memorization, "
         "latent walks, discriminator features.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    """gan-probe: trustworthy numbers and the DCGAN paper's analysis toolbox."""


# ---- options shared by several commands (defined once) ----
CheckpointArg = Annotated[Path, typer.Argument(help="A checkpoint file or a RUN_DIR (its checkpoints/last.pt), or "
                                                    "any model: a TorchScript file with a sidecar FILE.json, a "
                                                    "JSON model card, a StyleGAN pickle (docs/your-model.md).",
                                               metavar="CHECKPOINT", show_default=False)]
ClassOpt = Annotated[int | None, typer.Option("--class", min=0, help="Conditional generator: the class of every "
                                                                      "sample (default: each sample's own, from its "
                                                                      "z).")]
PsiOpt = Annotated[float, typer.Option("--psi", help="StyleGAN truncation psi.")]
TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow loading a pickle (.pkl): it runs code "
                                                                     "stored in the file.")]


def model_spec(checkpoint: Path, class_index: int | None = None, psi: float = 1.0, trust_pickle: bool = False):
    """The model argument with how to run it (:class:`gan_probe.models.sources.ModelSpec`)."""
    from gan_probe.models.sources import ModelSpec

    return ModelSpec(checkpoint, class_index=class_index, psi=psi, trust_pickle=trust_pickle)


def source_spec(text: str, class_index: int | None = None, psi: float = 1.0, trust_pickle: bool = False):
    """A source argument that may name a generator (score, fid, memorization): the text as given, or a
    model spec when --class / --psi / --trust-pickle are set (a source that is no model then says so)."""
    if class_index is None and psi == 1.0 and not trust_pickle:
        return text
    return model_spec(Path(text), class_index, psi, trust_pickle)
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; every sample is tied to it.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]
DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Where datasets live (default: $GAN_PROBE_DATA_ROOT or ~/.cache/gan-probe/data)."),
]
DownloadOpt = Annotated[bool, typer.Option("--download", help="Download a missing dataset (off by default).")]


# ---- groups of options several commands share (declared once, with their defaults) ----
class OptionGroup:
    """Base of a frozen dataclass whose fields are options several commands take together: each
    field is a typer ``Annotated`` type with its default, written once here. A command with a
    parameter annotated with the group (``run: ModelRun``) and decorated by :func:`option_groups`
    shows the group's options where that parameter stands and receives them as one object."""


def option_groups(command):
    """Put on a command under ``@app.command(...)``: each parameter annotated with an
    :class:`OptionGroup` becomes that group's options on the command line (in the group's order,
    at the parameter's place), and the command receives the group built from their values."""
    hints = typing.get_type_hints(command, include_extras=True)
    groups = {name: t for name, t in hints.items() if isinstance(t, type) and issubclass(t, OptionGroup)}
    params = []
    for p in inspect.signature(command).parameters.values():
        if p.name not in groups:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation)))
            continue
        group_hints = typing.get_type_hints(groups[p.name], include_extras=True)
        params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                     annotation=group_hints[f.name]) for f in dataclasses.fields(groups[p.name])]
    names = [p.name for p in params]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TypeError(f"{command.__name__}: parameters {twice} are declared twice (an option group's field "
                        "and another parameter)")

    @functools.wraps(command)
    def run(**values):
        for name, group in groups.items():
            values[name] = group(**{f.name: values.pop(f.name) for f in dataclasses.fields(group)})
        return command(**values)

    run.__signature__ = inspect.Signature(params)  # what typer reads
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


@dataclasses.dataclass(frozen=True)
class ModelRun(OptionGroup):
    """How a command runs the generator it is given (walk, arithmetic, sample)."""

    batch_size: BatchSizeOpt = 256
    device: DeviceOpt = "auto"
    class_index: ClassOpt = None
    psi: PsiOpt = 1.0
    trust_pickle: TrustPickleOpt = False

    def spec(self, checkpoint: Path):
        """The checkpoint argument with --class / --psi / --trust-pickle (:func:`model_spec`)."""
        return model_spec(checkpoint, self.class_index, self.psi, self.trust_pickle)


def registry_help(**fills):
    """A command class (``@app.command(cls=registry_help(metrics=fn))``) whose named parameters
    take their attributes (``help``, ``default``) from ``fn()`` each time the command is used,
    not once when its module is imported: choices read from a registry (metrics, datasets) then
    list what was registered later too, and importing the CLI stays light."""
    from typer.core import TyperCommand

    class RegistryHelpCommand(TyperCommand):
        def get_params(self, ctx):
            params = super().get_params(ctx)
            for p in params:
                if p.name in fills:
                    for attr, value in fills[p.name]().items():
                        setattr(p, attr, value)
            return params

    return RegistryHelpCommand
