"""The statistics / features cache: a hit equals recomputation, a killed or truncated write is a miss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


class _CountingExtractor:
    """Stands in for Inception in cache tests: mean colour features, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, logits=False):
        from gan_probe.features.inception import InceptionOutput

        self.calls += 1
        f = torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)
        return InceptionOutput(f, torch.zeros(len(x), 1008, dtype=torch.float64) if logits else None)


def test_cache_hit_equals_recomputation_and_survives_a_killed_write(folders, tmp_path, monkeypatch):
    from gan_probe.metrics import extract
    from gan_probe.metrics.extract import ExtractOptions, source_to_features
    from gan_probe.metrics.sources import open_source

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"stand-in")
    opts = ExtractOptions(weights=weights, dims=2048, num_workers=0, batch_size=4, progress=False)
    ex = _CountingExtractor()
    src = open_source(folders[0])
    first = source_to_features(src, opts, lambda: ex, need_features=True)
    calls = ex.calls
    again = source_to_features(open_source(folders[0]), opts, lambda: ex, need_features=True)
    assert ex.calls == calls and again.from_cache and not first.from_cache
    np.testing.assert_array_equal(again.sigma, first.sigma)
    np.testing.assert_array_equal(again.features, first.features)
    # a killed write leaves no entry (and no temp file); the next run recomputes
    key = extract.statistics_cache_key(src, opts)
    for p in Path(tmp_path / "cache").rglob(f"{key}.npz"):
        p.unlink()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        source_to_features(open_source(folders[0]), opts, lambda: ex)
    monkeypatch.undo()
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and key in p.name]
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    # a truncated entry is a miss, not a wrong answer
    redo = source_to_features(open_source(folders[0]), opts, lambda: ex)
    entry = next((tmp_path / "cache" / extract.STATS_KIND).glob(f"{key}.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    calls = ex.calls
    redo2 = source_to_features(open_source(folders[0]), opts, lambda: ex)
    assert ex.calls > calls and not redo2.from_cache
    np.testing.assert_allclose(redo2.sigma, first.sigma, rtol=1e-12)
    np.testing.assert_allclose(redo.mu, first.mu, rtol=1e-12)
    # other dims or another weights file: another key
    assert extract.statistics_cache_key(src, ExtractOptions(weights=weights, dims=768)) != key

