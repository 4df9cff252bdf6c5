"""`gan-probe` command line: thin commands over the library.

User errors (:class:`gan_probe.errors.GanProbeError`, and OS errors such as a
path that cannot be written) are caught once, here: one red line on stderr,
exit code 1, no traceback (``gan-probe --debug ...`` shows it). Usage errors
(a bad option value, an unknown option, a missing argument) are one line too,
with click's exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from gan_probe.cli.app import app
from gan_probe.cli import train as _train  # noqa: F401  (registers train, sample, info, download)
from gan_probe.cli import filters as _filters, report as _report  # noqa: F401  (registers filters, report)
from gan_probe.cli import latent as _latent  # noqa: F401  (registers walk, arithmetic)
from gan_probe.cli import memorization as _memorization  # noqa: F401
from gan_probe.cli import score as _score  # noqa: F401  (registers fid, score)
from gan_probe.cli import stats as _stats  # noqa: F401  (registers stats)
from gan_probe.cli import classify as _classify  # noqa: F401  (registers classify)
from gan_probe.errors import GanProbeError

__all__ = ["app", "main"]


def _fail(message: str, code: int = 1) -> None:
    from rich.console import Console
    from rich.markup import escape

    line = " ".join(str(message).split())
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(line)}", highlight=False)
    sys.exit(code)


def _user_message(e: GanProbeError) -> str:
    """The error's own line, also when a DataLoader worker raised it (torch then packs the
    worker's whole traceback into the message)."""
    text = e.for_cli()
    if "Original Traceback" in text:
        marker = f"{type(e).__module__}.{type(e).__qualname__}: "
        last = [line for line in text.splitlines() if line.startswith(marker)]
        if last:
            return last[-1][len(marker):]
    return text


def _os_error_message(e: OSError) -> str:
    name = getattr(e, "filename", None)
    if name is None:
        return str(e.strerror or e)
    if isinstance(e, FileExistsError):
        return f"{name} exists and is not a folder; choose another path"
    if isinstance(e, NotADirectoryError):
        return f"{name}: part of this path is a file, not a folder"
    if isinstance(e, IsADirectoryError):
        return f"{name} is a folder; give a file path"
    return f"{e.strerror or e}: {name}"


def _click_exceptions():
    try:  # typer >= 0.20 vendors click
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer on real click
        from click import exceptions
    return exceptions


@contextlib.contextmanager
def _rank_output():
    """Under torchrun, ranks other than 0 print nothing (stdout and stderr go to /dev/null while a
    command runs; an error is still told, see :func:`main`); at the end, the process group any
    command joined is left."""
    from gan_probe.distributed import is_main_process, launched_world

    quiet = launched_world() > 1 and not is_main_process()
    with open(os.devnull, "w") if quiet else contextlib.nullcontext() as sink:
        with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext(), \
                contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext():
            try:
                yield
            finally:
                tdist = sys.modules.get("torch.distributed")
                if tdist is not None and tdist.is_available() and tdist.is_initialized():
                    tdist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    ex = _click_exceptions()
    try:
        with _rank_output():
            code = app(args=args, prog_name="gan-probe", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except ex.NoArgsIsHelpError:
        app(args=[*args, "--help"], prog_name="gan-probe")
    except ex.ClickException as e:  # bad option value, unknown option, missing argument: one line too
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "gan-probe"
        _fail(f"{e.format_message()} (see: {where} --help)", e.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except GanProbeError as e:
        if debug:
            raise
        from gan_probe.distributed import ErrorOnAnotherRank, is_main_process

        if isinstance(e, ErrorOnAnotherRank) and not is_main_process():
            sys.exit(1)  # every rank raised it; rank 0 tells it
        _fail(_user_message(e))
    except OSError as e:
        if debug:
            raise
        _fail(_os_error_message(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
