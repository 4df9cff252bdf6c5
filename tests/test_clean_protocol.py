"""Resize protocols: clean-fid's ``clean`` mode reproduced, checked against clean-fid itself.

Both tools run pytorch-fid's network with the same stand-in weights (conftest's
``inception_weights``); clean-fid gets it as ``custom_feat_extractor``, wrapped as clean-fid wraps
its own ``pytorch_inception`` (divide by 255, the network's 2x - 1), so the pipelines share
everything but the code that resizes. clean-fid never downloads in that path (no
``build_feature_extractor``); the test also cuts the network off to prove it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_probe.errors import GanProbeError
from gan_probe.features.resize import (DEFAULT_PROTOCOL, PROTOCOLS, clean_resize, get_protocol,
                                       to_inception_input_clean)

# odd sizes (W, H), upsampled and one downsampled (antialiased by PIL) to 299 x 299
SIZES = {"real": [(40, 40), (64, 48), (33, 57), (320, 310), (40, 40), (50, 31)],
         "fake": [(64, 48), (40, 40), (47, 47), (301, 333), (29, 64), (64, 48)]}


def _write_odd_images(folder: Path, sizes, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate(sizes):
        small = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
        arr = np.asarray(img).astype(np.int16) + rng.integers(-20, 21, (h, w, 3))  # some high frequencies
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def odd_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean_protocol")
    return _write_odd_images(root / "real", SIZES["real"], 0), _write_odd_images(root / "fake", SIZES["fake"], 1)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import cleanfid.downloads_helper as dh

    monkeypatch.setattr(dh, "check_download_url", refuse)
    monkeypatch.setattr(dh, "check_download_inception", refuse)


def _pytorch_fid_net(weights: Path, monkeypatch, dims: int = 2048):
    import pytorch_fid.inception as pfi

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(weights, weights_only=True))
    # resize_input=False as clean-fid's own "pytorch_inception" wrapper: the input is already 299 x 299
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=False).eval()


def _gan_probe_features(folder: Path, weights: Path, protocol: str, dims: int) -> np.ndarray:
    from gan_probe.features.inception import InceptionExtractor
    from gan_probe.metrics.sources import open_source

    extractor = InceptionExtractor(weights, "cpu", dims)
    to_input = get_protocol(protocol).to_input
    return np.concatenate([extractor(to_input(b)).features.numpy() for b in open_source(folder).batches(4)])


def _clean_fid_extractor(net, seen: list):
    def extract(x):  # clean-fid hands 0..255 float batches of 299 x 299; pytorch-fid's net wants 0..1
        seen.append(x.clone())
        with torch.no_grad():
            return torch.nn.functional.adaptive_avg_pool2d(net(x / 255)[0], 1).flatten(1)

    return extract


def _fid(a: np.ndarray, b: np.ndarray) -> float:
    from gan_probe.metrics.fid import features_to_statistics, statistics_to_fid

    return statistics_to_fid(*features_to_statistics(a), *features_to_statistics(b))


def test_clean_fid_equals_clean_fid_compute_fid(odd_folders, inception_weights, monkeypatch, no_network):
    """FID end to end through clean-fid's compute_fid. 64-d features (pytorch-fid's first block, the
    same resize and the same network start): clean-fid's scipy sqrtm of a 2048 x 2048 product takes
    minutes on two busy cores; the 2048-d features are compared directly in the next test."""
    from cleanfid import fid as cfid

    seen = []
    extractor = _clean_fid_extractor(_pytorch_fid_net(inception_weights, monkeypatch, dims=64), seen)
    theirs = cfid.compute_fid(str(odd_folders[0]), str(odd_folders[1]), mode="clean",
                              custom_feat_extractor=extractor, num_workers=0, batch_size=4,
                              device=torch.device("cpu"), verbose=False)
    assert seen and all(x.shape[1:] == (3, 299, 299) for x in seen)
    # the network's input is bit for bit the same: clean-fid's 0..255 batch through pytorch-fid's /255, 2x-1
    from gan_probe.metrics.sources import open_source

    theirs_in = torch.cat([2 * (x / 255) - 1 for x in seen])
    ours_in = torch.cat([to_inception_input_clean(b) for f in odd_folders for b in open_source(f).batches(4)])
    torch.testing.assert_close(ours_in, theirs_in, rtol=0, atol=0)
    real, fake = (_gan_probe_features(f, inception_weights, "clean", 64) for f in odd_folders)
    ours = _fid(real, fake)
    assert theirs > 1e-3  # informative features, not a collapsed network
    assert ours == pytest.approx(theirs, rel=1e-4)

    # the protocol matters: pytorch-fid's resize of the same images gives another number
    other = _fid(*(_gan_probe_features(f, inception_weights, "pytorch-fid", 64) for f in odd_folders))
    assert abs(other - ours) > 1e-2 * ours


def test_clean_2048d_features_equal_clean_fids(odd_folders, inception_weights, monkeypatch, no_network):
    """pool3 features of every image under clean-fid's own folder pipeline (its file listing,
    decoding, ResizeDataset, DataLoader) equal gan-probe's ``clean`` protocol features."""
    from cleanfid import fid as cfid

    extractor = _clean_fid_extractor(_pytorch_fid_net(inception_weights, monkeypatch, dims=2048), [])
    folder = odd_folders[0]  # one folder (up- and downsampling) keeps this to 18 forward passes
    theirs = cfid.get_folder_features(str(folder), model=extractor, num_workers=0, batch_size=4,
                                      device=torch.device("cpu"), mode="clean", verbose=False)
    ours = _gan_probe_features(folder, inception_weights, "clean", 2048)
    assert theirs.shape == ours.shape == (len(SIZES[folder.name]), 2048)
    # float32 through ~100 layers, two conv implementations (gan-probe runs channels-last):
    # agreement to 1e-4 of the features' scale, per element
    scale = np.abs(theirs).max()
    err = np.abs(ours - theirs).max()
    assert err <= 1e-4 * scale, (err, scale)
    legacy = _gan_probe_features(folder, inception_weights, "pytorch-fid", 2048)
    assert np.abs(legacy - theirs).max() > 100 * err  # the resize, not rounding, is what tells protocols apart


def test_clean_resize_is_clean_fids_resizer():
    from cleanfid.resize import build_resizer

    theirs = build_resizer("clean")
    rng = np.random.default_rng(0)
    for h, w in [(40, 40), (48, 64), (57, 33), (310, 320), (299, 299), (1, 7)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = theirs(img)
        ours = clean_resize(img)
        assert ours.dtype == np.float32 and ours.shape == (299, 299, 3)
        np.testing.assert_array_equal(ours, ref)
        # the tensor form (3 x H x W, as gan-probe's sources give) is the same resize
        np.testing.assert_array_equal(clean_resize(torch.from_numpy(img).permute(2, 0, 1)), ref)
    assert ours.min() >= 0 and ours.max() <= 255


def test_clean_input_batches_lists_and_range():
    rng = np.random.default_rng(1)
    batch = torch.from_numpy(rng.integers(0, 256, (2, 3, 20, 30), dtype=np.uint8))
    x = to_inception_input_clean(batch)
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    mixed = [batch[0], torch.from_numpy(rng.integers(0, 256, (3, 50, 41), dtype=np.uint8))]
    y = to_inception_input_clean(mixed)
    assert y.shape == (2, 3, 299, 299)
    torch.testing.assert_close(y[0], x[0], rtol=0, atol=0)
    expected = 2 * (torch.from_numpy(clean_resize(mixed[1])).permute(2, 0, 1) / 255) - 1
    torch.testing.assert_close(y[1], expected, rtol=0, atol=0)


def test_protocol_table_and_errors():
    assert DEFAULT_PROTOCOL == "pytorch-fid" and set(PROTOCOLS) == {"pytorch-fid", "clean"}
    for name, p in PROTOCOLS.items():
        assert p.name == name and p.description and p.peer and callable(p.to_input)
    assert "bicubic" in PROTOCOLS["clean"].description and "bilinear" in PROTOCOLS["pytorch-fid"].description
    with pytest.raises(GanProbeError, match="^protocol must be one of pytorch-fid, clean") as e:
        get_protocol("tf")
    assert e.value.param == "protocol"
    with pytest.raises(GanProbeError, match="uint8"):
        to_inception_input_clean(torch.zeros(1, 3, 8, 8))
