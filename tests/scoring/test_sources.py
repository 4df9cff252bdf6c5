"""Image sources for scoring: folders (recursive, any case, modes, sizes), checkpoints, datasets.
"""

from __future__ import annotations

import torch
from PIL import Image


def test_folder_source_recursive_any_case_modes_and_mixed_sizes(tmp_path):
    from gan_probe.features.inception import to_inception_input
    from gan_probe.metrics.sources import open_source

    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    Image.new("L", (20, 20), 100).save(root / "gray.PNG")
    Image.new("RGBA", (16, 24), (10, 20, 30, 0)).save(root / "sub" / "alpha.png")
    Image.new("P", (32, 32), 3).save(root / "sub" / "palette.GIF")
    Image.new("RGB", (40, 40), (1, 2, 3)).save(root / "x.JPG")
    (root / "notes.txt").write_text("not an image")
    src = open_source(root)
    assert src.kind == "folder" and src.n == 4
    (batch,) = list(src.batches(8))
    assert isinstance(batch, list) and all(im.dtype == torch.uint8 and im.shape[0] == 3 for im in batch)
    gray = next(im for im in batch if im.shape[1:] == (20, 20))
    assert torch.all(gray == 100)
    x = to_inception_input(batch)
    assert x.shape == (4, 3, 299, 299) and x.min() >= -1 and x.max() <= 1


def test_checkpoint_source_equals_sampled_pngs(tiny_checkpoint, tmp_path):
    from gan_probe.metrics.sources import open_source
    from gan_probe.sampling import sample_to_folder

    src = open_source(tiny_checkpoint, n=12, seed=3)
    got = torch.cat(list(src.batches(5)))
    assert got.shape == (12, 3, 32, 32) and got.dtype == torch.uint8
    sample_to_folder(tiny_checkpoint, tmp_path / "s", 12, seed=3)
    pngs = torch.cat(list(open_source(tmp_path / "s").batches(12)))
    assert torch.equal(got, pngs)
    assert open_source(tiny_checkpoint, n=12, seed=4).fingerprint != src.fingerprint


def test_dataset_source_by_name():
    from gan_probe.metrics.sources import open_source

    src = open_source("digits:test")
    assert src.kind == "dataset" and src.n == 450
    first = next(src.batches(16))
    assert first.shape == (16, 3, 32, 32) and first.dtype == torch.uint8



def test_a_folder_named_like_a_file_type_is_read_as_a_folder(tmp_path):
    """A folder of PNGs named samples.npz (what `sample --out samples.npz` made before it wrote arrays) ended
    in "file not found: samples.npz"; a folder is read as a folder, whatever its name ends in."""
    from gan_probe.metrics.sources import open_source

    for name in ("samples.npz", "samples.npy", "imgs.zip", "imgs.tar.gz"):
        d = tmp_path / name
        d.mkdir()
        Image.new("RGB", (8, 8), (5, 6, 7)).save(d / "000000.png")
        src = open_source(d)
        assert src.kind == "folder" and src.n == 1, name
