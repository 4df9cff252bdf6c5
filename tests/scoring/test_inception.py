"""The FID Inception network and its weights: features and unbiased logits against pytorch-fid,
the weights lookup order, the download, the feature-space registry, bad and reference files.

The Inception weights are a seeded stand-in (conftest's ``inception_weights``), handed to
both gan-probe and pytorch-fid, so their numbers can be compared offline. Image sets are
tiny: every Inception forward costs ~0.1 s on our 2 cores.
"""

from __future__ import annotations

import zipfile

import pytest
import torch

from gan_probe.errors import GanProbeError
from cli_runner import run_cli
from scoring_helpers import _assert_user_error, _pytorch_fid_model


@pytest.mark.slow
def test_64d_features_and_unbiased_logits_match_pytorch_fid(folders, inception_weights, monkeypatch):
    import pytorch_fid.inception as pfi

    from gan_probe.features.inception import InceptionExtractor, to_inception_input
    from gan_probe.metrics.sources import open_source

    batch = next(open_source(folders[0]).batches(3))[:3]
    x01 = batch.float() / 255
    model = _pytorch_fid_model(inception_weights, monkeypatch, dims=64)
    with torch.no_grad():
        theirs64 = torch.nn.functional.adaptive_avg_pool2d(model(x01)[0], 1).flatten(1)
        full = pfi.fid_inception_v3().eval()
        x = 2 * torch.nn.functional.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) - 1
        logits_with_bias = full(x)
    ours64 = InceptionExtractor(inception_weights, "cpu", 64)(to_inception_input(batch)).features
    torch.testing.assert_close(ours64, theirs64, rtol=1e-4, atol=1e-5)
    out = InceptionExtractor(inception_weights, "cpu", 2048)(to_inception_input(batch), logits=True)
    unbiased = (logits_with_bias - full.fc.bias).double()
    assert out.logits.dtype == torch.float64 and out.logits.shape == (3, 1008)
    torch.testing.assert_close(out.logits, unbiased, rtol=1e-4, atol=1e-4)


def test_weights_lookup_order(tmp_path, monkeypatch):
    from gan_probe.features.inception import WEIGHTS_FILENAME, find_inception_weights, hub_weights_path

    hub = hub_weights_path()
    assert hub.name == WEIGHTS_FILENAME and str(tmp_path) in str(hub)
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert find_inception_weights() == hub
    env = tmp_path / "env.pth"
    env.write_bytes(b"y")
    monkeypatch.setenv("GAN_PROBE_INCEPTION_WEIGHTS", str(env))
    assert find_inception_weights() == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"z")
    assert find_inception_weights(explicit) == explicit


class _FakeResponse:
    """What ``urlopen`` returns, serving ``payload`` (and raising ``fail_after`` once it is sent)."""

    def __init__(self, payload: bytes, fail_after: BaseException | None = None):
        import io

        self.body, self.fail_after = io.BytesIO(payload), fail_after
        self.length = len(payload)

    def info(self):
        from email.message import Message

        meta = Message()
        meta["Content-Length"] = str(self.length)
        return meta

    def read(self, n=-1):
        block = self.body.read(n)
        if not block and self.fail_after is not None:
            raise self.fail_after
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_sha256_and_writes_atomically(tmp_path, monkeypatch):
    import hashlib
    import socket
    import urllib.error

    from gan_probe.features import inception

    payload = b"not the real weights"
    assert not hashlib.sha256(payload).hexdigest().startswith(inception.WEIGHTS_SHA256_PREFIX)
    assert hasattr(torch.hub, "urlopen")  # torch hub's own download, fed offline
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload))
    dest = tmp_path / "hub" / inception.WEIGHTS_FILENAME
    with pytest.raises(GanProbeError, match="SHA-256"):
        inception.download_inception_weights(dest, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.tmp"))
    assert list(dest.parent.iterdir()) == []  # no .partial file either
    # a network error is one line, and leaves nothing behind; so does an interrupted transfer
    for failure in (urllib.error.URLError("no network"), KeyboardInterrupt()):
        monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload, failure))
        with pytest.raises((GanProbeError, KeyboardInterrupt)) as e:
            inception.download_inception_weights(dest, progress=False)
        if isinstance(failure, OSError):
            assert e.type is GanProbeError and "no network" in str(e.value) and "\n" not in str(e.value)
        assert list(dest.parent.iterdir()) == []
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload))
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", hashlib.sha256(payload).hexdigest()[:8])
    assert inception.download_inception_weights(dest, progress=False).read_bytes() == payload
    assert list(dest.parent.iterdir()) == [dest]
    assert socket.getdefaulttimeout() is None  # the download's timeout does not outlive it


@pytest.mark.slow
def test_inception_feature_space_from_registry(inception_weights):
    from gan_probe.features import get_feature_space

    space = get_feature_space("inception", device="cpu", weights=inception_weights)
    assert space.name == "inception" and space.dim == 2048
    f = space(torch.zeros(2, 1, 16, 16))
    assert f.shape == (2, 2048) and f.dtype == torch.float32
    torch.testing.assert_close(f[0], f[1])


def test_zip_of_wrong_kind_is_a_bad_weights_file(tmp_path, capsys, folders):
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    assert zipfile.is_zipfile(wrong)
    code, _, err = run_cli(["fid", folders[0], folders[1], "--inception-weights", wrong], capsys)
    _assert_user_error(code, err, "FID Inception weights")


def test_reference_weights_are_recognised_by_their_hash(inception_weights, monkeypatch):
    from gan_probe.features import inception as inc

    assert not inc.is_reference_weights(inception_weights)  # the stand-in file
    monkeypatch.setattr(inc, "WEIGHTS_SHA256_PREFIX", inc.weights_sha256(inception_weights)[:8])
    assert inc.is_reference_weights(inception_weights)

