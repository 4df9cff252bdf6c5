"""The paper-style HTML report of a run (`gan-probe report RUN_DIR`)."""

from gan_probe.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
