"""report: one self-contained HTML page of a run and its analyses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import ClassOpt, JsonOpt, PsiOpt, TrustPickleOpt, app


@app.command(epilog="""Examples:

  gan-probe report runs/digits                         # -> runs/digits/report.html

  gan-probe report runs/digits --run-missing           # first run the offline analyses not yet made

  gan-probe report runs/digits --out /tmp/digits.html --pdf

  gan-probe report mygan/G.ts --disc mygan/D.json --dataset digits --run-missing   # a model you trained

Sections: training samples over epochs (paper Figs. 2-3) and curves; score (FID/IS/KID); memorization;
walk (Fig. 4); arithmetic (Figs. 7-8); filters (Fig. 5); classify (Tables 1-2). Every image is embedded:
the file opens with no network.
""")
def report(
    run_dir: Annotated[Path, typer.Argument(help="The RUN_DIR `gan-probe train --out` wrote, or a model file "
                                            "gan-probe did not train (TorchScript + sidecar, card, pickle): its "
                                            "folder's analysis/ is reported (docs/your-model.md).",
                                            metavar="RUN_DIR|MODEL", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default: RUN_DIR/report.html).")]
    = None,
    run_missing: Annotated[bool, typer.Option("--run-missing", help="Run the missing offline analyses first "
                                                                    "(each as its own command; failures are "
                                                                    "listed, not fatal).")] = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print the page to a PDF beside it (needs a Chromium "
                                                    "or Chrome binary on PATH).")] = False,
    json_out: JsonOpt = False,
    gen: Annotated[Path | None, typer.Option("--gen", help="MODEL is a discriminator: the generator the "
                                             "G analyses (score, memorization, walk, arithmetic) use.")] = None,
    disc: Annotated[Path | None, typer.Option("--disc", help="MODEL is a generator: the discriminator filters "
                                              "and classify use (a card, TorchScript file or pickle; a StyleGAN "
                                              "pickle as MODEL is its own by default).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="MODEL's data (digits, cifar10, a folder): "
                                                "score's --ref, memorization's --train/--test, classify's "
                                                "--dataset.")] = None,
    class_index: ClassOpt = None,
    psi: PsiOpt = 1.0,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Write one self-contained HTML report of a run, laid out like the DCGAN paper's figures."""
    from gan_probe.report import write_report

    info = write_report(run_dir, out, run_missing, gen=gen, disc=disc, dataset=dataset, class_index=class_index,
                        psi=psi, trust_pickle=trust_pickle)
    if pdf:
        from gan_probe.report.pdf import html_to_pdf

        info["pdf"] = str(html_to_pdf(Path(info["out"])))
    if json_out:
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console

    console = Console()
    for name, state in info["sections"].items():
        err = (info["ran"].get(name) or {}).get("error")
        mark = "[green]done[/]" if state == "done" else "[yellow]not run[/]"
        console.print(f"  {name:<14} {mark}" + (f"  [dim]({err})[/]" if err else ""), highlight=False)
    console.print(f"report written to {info['out']} ({info['bytes'] / 1e6:.1f} MB)" +
                  (f" and {info['pdf']}" if pdf else ""), highlight=False)
