"""Optional PDF of the report: headless Chromium's print-to-PDF (no Python dependency)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from gan_probe.errors import GanProbeError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def headless_args(browser: str, profile: str) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]


def html_to_pdf(html_path: Path, pdf_path: Path | None = None, timeout: float = 120.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` (default: beside it, .pdf)."""
    browser = find_browser()
    if browser is None:
        raise GanProbeError(f"pdf needs Chromium or Chrome on PATH (Debian: apt-get install chromium); "
                            f"the HTML report is written: {html_path}", param="pdf")
    pdf_path = pdf_path or html_path.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="gan-probe-chromium-") as profile:
        cmd = headless_args(browser, profile) + ["--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
                                                 html_path.resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GanProbeError(f"pdf: {browser} did not finish in {timeout:.0f} s; the HTML report is written: "
                                f"{html_path}", param="pdf") from None
    if proc.returncode != 0 or not pdf_path.is_file():
        raise GanProbeError(f"pdf: {browser} failed (exit {proc.returncode}); the HTML report is written: "
                            f"{html_path}", param="pdf")
    return pdf_path
