"""`gan-probe` command line: thin commands over the library.

User errors (:class:`gan_probe.errors.GanProbeError`, and OS errors such as a
path that cannot be written) are caught once, here: one red line on stderr,
exit code 1, no traceback (``gan-probe --debug ...`` shows it).
"""

from __future__ import annotations

import sys

from gan_probe.cli.app import app
from gan_probe.cli import train as _train  # noqa: F401  (registers train, sample, info, download)
from gan_probe.cli import classify as _classify  # noqa: F401  (registers classify)
from gan_probe.errors import GanProbeError

__all__ = ["app", "main"]


def _fail(message: str, code: int = 1) -> None:
    from rich.console import Console
    from rich.markup import escape

    line = " ".join(str(message).split())
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(line)}", highlight=False)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="gan-probe")
    except GanProbeError as e:
        if debug:
            raise
        _fail(str(e))
    except OSError as e:
        if debug:
            raise
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        _fail(f"{e.strerror or e}{where}")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
