"""benchmarks/gpu.sh's driver: one JSON with every item, failures recorded, not fatal (tiny CPU dry run)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_writes_one_json_and_fails_soft(tmp_path, monkeypatch):
    bench = _bench()

    def broken(cfg, device):
        raise RuntimeError("out of memory (injected)")

    monkeypatch.setattr(bench, "item_svm", broken)
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))  # main() sets it; restored after the test
    out = tmp_path / "gpu.json"
    assert bench.main(["--dry-run", "--only", "knn,svm,dinov2", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["dry_run"] and r["device"] == "cpu" and r["failed"] == ["svm"]
    assert "out of memory (injected)" in r["items"]["svm"]["error"]
    knn = r["items"]["knn"]
    assert knn["cpu"]["seconds"] > 0 and knn["queries"] == 40
    assert "skipped" in r["items"]["dinov2"]
    assert (ROOT / "benchmarks" / "gpu.sh").stat().st_mode & 0o111  # executable
