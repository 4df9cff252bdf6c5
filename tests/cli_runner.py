"""Run the gan-probe CLI in-process from a test (faster than a subprocess, same error boundary)."""

from gan_probe.cli import main


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``gan-probe ARGS`` (arguments may be paths or numbers)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    out = capsys.readouterr()
    return code, out.out, out.err
