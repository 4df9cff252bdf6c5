"""Every sample container as a source: ADM .npz image arrays, .npy, .zip and .tar read in place
(unsafe members ignored, nothing written anywhere), and decompression bombs refused with one line.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cli_runner import run_cli
from scoring_helpers import _assert_user_error


def _images(n=5, size=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(width=15000, height=15000) -> bytes:
    """A PNG whose header claims width x height pixels, in a few dozen bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _all(src, batch_size=2, num_workers=0):
    return torch.cat(list(src.batches(batch_size, num_workers)))


def _expected(arr):
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def test_adm_npz_and_npy_arrays_read_batch_by_batch(tmp_path):
    from gan_probe.metrics.sources import open_source

    arr = _images(5)
    np.savez(tmp_path / "samples.npz", arr_0=arr, arr_1=np.arange(5))  # ADM: images, then labels
    np.savez_compressed(tmp_path / "packed.npz", arr_0=arr)
    np.save(tmp_path / "samples.npy", arr)
    for name in ("samples.npz", "packed.npz", "samples.npy"):
        src = open_source(tmp_path / name)
        assert src.kind == "array" and src.n == 5 and src.has_images
        got = _all(src)
        assert got.dtype == torch.uint8 and torch.equal(got, _expected(arr)), name
    gray = arr[..., 0]
    np.save(tmp_path / "gray.npy", gray)
    got = _all(open_source(tmp_path / "gray.npy"))
    assert got.shape == (5, 3, 12, 12) and torch.equal(got[:, 1], torch.from_numpy(gray))


def test_statistics_npz_told_apart_by_keys_and_bad_arrays_are_one_line(tmp_path):
    from gan_probe.errors import GanProbeError
    from gan_probe.metrics.sources import open_source

    np.savez(tmp_path / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))
    np.savez(tmp_path / "adm_ref.npz", arr_0=_images(3), mu=np.zeros(4), sigma=np.eye(4), mu_s=np.zeros(2),
             sigma_s=np.eye(2))
    assert open_source(tmp_path / "ref.npz").kind == "npz"
    assert open_source(tmp_path / "adm_ref.npz").kind == "npz"  # ADM reference batch: its mu / sigma
    np.save(tmp_path / "float.npy", _images(2).astype(np.float32) / 255)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    np.save(tmp_path / "flat.npy", np.zeros((4, 5, 6, 7), np.uint8))
    for name, word in (("float.npy", "uint8"), ("other.npz", "arr_0"), ("flat.npy", "N x H x W x 3")):
        with pytest.raises(GanProbeError, match=word):
            open_source(tmp_path / name)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "flat.npy").read_bytes()[:50])
    with pytest.raises(GanProbeError, match="cut.npy"):
        open_source(tmp_path / "cut.npy")


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_archives_read_in_place_unsafe_members_ignored(tmp_path, kind, monkeypatch):
    from gan_probe.metrics.sources import open_source

    arr = _images(4, seed=1)
    good = {f"imgs/{i}.png": _png_bytes(arr[i]) for i in range(3)}
    good["imgs/sub/3.PNG"] = _png_bytes(arr[3])
    evil = {"../evil.png": _png_bytes(arr[0]), "/tmp/abs_evil.png": _png_bytes(arr[0]),
            "imgs/../../evil2.png": _png_bytes(arr[0])}
    path = tmp_path / "work" / f"samples.{kind}"
    path.parent.mkdir()
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in {**good, **evil, "notes.txt": b"x"}.items():
                zf.writestr(zipfile.ZipInfo(name), data)
    else:
        with tarfile.open(path, "w:gz" if kind.endswith("gz") else "w") as tf:
            for name, data in {**good, **evil}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("imgs/link.png")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(link)
    before = sorted(p for p in tmp_path.rglob("*"))
    monkeypatch.chdir(path.parent)
    src = open_source(path)
    assert src.kind == "archive" and src.n == 4
    assert src.members == sorted(good)
    assert any("ignored" in note and "evil" in note for note in src.notes)
    for workers in (0, 1):
        got = _all(src, batch_size=3, num_workers=workers)
        assert torch.equal(got, _expected(arr))
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing extracted, nothing written outside
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "evil2.png").exists()


def test_decompression_bomb_refused_in_every_source(tmp_path):
    from gan_probe.errors import GanProbeError
    from gan_probe.metrics.sources import open_source
    from gan_probe.data import open_image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(_images(1)[0]).save(folder / "ok.png")
    (folder / "bomb.png").write_bytes(_bomb_png())
    with pytest.raises(GanProbeError, match="bomb.png.*decompression bomb.*225,000,000"):
        _all(open_source(folder))
    src = open_source(folder, skip_bad=True)
    assert _all(src).shape[0] == 1 and "decompression bomb" in src.skipped[0]
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("bomb.png", _bomb_png())
    with pytest.raises(GanProbeError, match="a.zip:bomb.png.*decompression bomb"):
        _all(open_source(tmp_path / "a.zip"))
    with pytest.raises(GanProbeError, match="bomb.png.*decompression bomb"):
        open_image(folder / "bomb.png")  # the datasets' image-folder loader
    # between PIL's limit and twice it PIL only warns: refused too, without the warning
    (folder / "bomb.png").write_bytes(_bomb_png(10000, 10000))
    with pytest.raises(GanProbeError, match="10000 x 10000"):
        _all(open_source(folder))


def test_cli_fid_bomb_one_line_and_containers_equal_folder(tmp_path, inception_weights, capsys):
    arr = _images(4, size=16, seed=2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, a in enumerate(arr):
        Image.fromarray(a).save(folder / f"{i}.png")
    np.savez(tmp_path / "samples.npz", arr_0=arr)
    with zipfile.ZipFile(tmp_path / "samples.zip", "w") as zf:
        for i, a in enumerate(arr):
            zf.writestr(f"{i}.png", _png_bytes(a))
    w = ["--inception-weights", inception_weights, "--dims", 64, "--num-workers", 0, "--json", "--no-cache"]
    import json

    ref = _images(4, size=16, seed=3)
    np.save(tmp_path / "ref.npy", ref)
    fids = []
    for gen in (folder, tmp_path / "samples.npz", tmp_path / "samples.zip"):
        code, out, err = run_cli(["fid", gen, tmp_path / "ref.npy"] + w, capsys)
        assert code == 0, err
        fids.append(json.loads(out)["fid"])
    assert fids[0] > 0 and fids[1] == fids[0] and fids[2] == fids[0]
    (folder / "huge.png").write_bytes(_bomb_png())
    code, out, err = run_cli(["fid", folder, tmp_path / "ref.npy"] + w, capsys)
    _assert_user_error(code, err, "huge.png", "decompression bomb")
