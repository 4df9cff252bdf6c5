"""gan_probe.Scorer: the same dict as `score --json` for the same images, uint8 and float inputs alike,
2 gloo processes equal to one, and one-line errors. Stand-in Inception weights (conftest), dims 64, tiny sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent / "scoring"))
from cli_runner import run_cli  # noqa: E402
from scoring_helpers import _write_images  # noqa: E402

from gan_probe.errors import GanProbeError  # noqa: E402

N = 10
METRICS = "fid,is,kid,pr,dc"
META = {"metrics", "gen", "ref", "protocol", "warnings", "sample_size", "seed"}  # seed: the run contract's


def _samples(checkpoint, n=N, seed=0) -> torch.Tensor:
    """What `score CKPT --n n --seed seed` scores: G's seeded samples in [-1, 1]."""
    from gan_probe.checkpoint import load_generator
    from gan_probe.sampling import generate

    g, config = load_generator(checkpoint)
    return torch.cat(list(generate(g, config, n, seed, batch_size=4)))


def _options(weights, **kw):
    from gan_probe.metrics.score import ScoreOptions

    return ScoreOptions(**{**dict(weights=weights, device="cpu", num_workers=0, batch_size=4, dims=64,
                                  progress=False, cache=False), **kw})


def _scores(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in META and isinstance(v, (int, float))}


def _assert_close(a: dict, b: dict, rel=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=rel, abs=1e-9), k


@pytest.fixture(scope="module")
def ref_folder(tmp_path_factory):
    return _write_images(tmp_path_factory.mktemp("scorer_ref") / "real", 8, 0)


@pytest.mark.slow
def test_scorer_equals_score_json_and_uint8_equals_float(run_copy, ref_folder, inception_weights, capsys):
    from gan_probe import Scorer
    from gan_probe.sampling import quantize

    code, out, err = run_cli(["score", run_copy, "--ref", ref_folder, "--metrics", METRICS, "--n", N, "--json",
                              "--inception-weights", inception_weights, "--num-workers", 0, "--device", "cpu",
                              "--dims", 64, "--no-cache"], capsys)
    assert code == 0, err
    cli = json.loads(out)

    images = _samples(run_copy)
    scorer = Scorer(ref=ref_folder, metrics=METRICS, options=_options(inception_weights))
    for batch in images.split(3):  # batches unlike score's: the result must not depend on them
        scorer.update(batch)
    got = scorer.compute()
    assert got["metrics"] == cli["metrics"] and got["ref"] == cli["ref"] and got["protocol"] == cli["protocol"]
    assert got["gen"]["n"] == N and got["gen"]["kind"] == "tensors"
    assert [c["n"] for c in got["sample_size"]] == [c["n"] for c in cli["sample_size"]]
    assert len(got["warnings"]) == len(cli["warnings"])
    _assert_close(_scores(got), _scores(cli))
    assert {"fid", "is", "kid", "precision", "density"} <= _scores(got).keys()

    scorer.reset()  # the reference side stays; the generated side starts over
    for batch in quantize(images).split(4):  # the same images as uint8 0..255
        scorer.update(batch)
    assert _scores(scorer.compute()) == pytest.approx(_scores(got), rel=1e-6)

    # float images in (0, 1) with value_range=(0, 1) are the same images again
    unit = Scorer(ref=ref_folder, metrics="fid", options=_options(inception_weights), value_range=(0, 1))
    unit.update((images + 1) / 2)
    assert unit.compute()["fid"] == pytest.approx(got["fid"], rel=1e-6)


def _worker(rank, world, init_file, weights, ref, images_file, out_file):
    import torch.distributed as dist

    from gan_probe import Scorer
    from gan_probe.distributed import Dist, shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    images = torch.load(images_file)
    mine = images[list(shard(len(images), Dist(rank, world)))]
    scorer = Scorer(ref=ref, metrics=METRICS, options=_options(weights))
    for batch in mine.split(2):
        scorer.update(batch)
    result = scorer.compute()
    if rank == 1:  # every rank holds the whole result
        Path(out_file).write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tiny_checkpoint, ref_folder, inception_weights, tmp_path):
    from gan_probe import Scorer

    images = _samples(tiny_checkpoint, n=11)  # 5 + 6 rows
    torch.save(images, tmp_path / "images.pt")
    one = Scorer(ref=ref_folder, metrics=METRICS, options=_options(inception_weights))
    one.update(images)
    expected = one.compute()
    out = tmp_path / "out.json"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(inception_weights), str(ref_folder),
                            str(tmp_path / "images.pt"), str(out)), nprocs=2, join=True)
    got = json.loads(out.read_text())
    assert got["gen"]["n"] == 11
    _assert_close(_scores(got), _scores(expected))


def test_errors_name_the_parameter(tmp_path, inception_weights):
    from gan_probe import Scorer

    with pytest.raises(GanProbeError, match=r"^ref is required by fid") as e:
        Scorer(metrics="fid", options=_options(inception_weights))
    assert e.value.param == "ref"
    with pytest.raises(GanProbeError, match=r"^metrics has unknown metric\(s\) nope") as e:
        Scorer(ref=tmp_path, metrics="nope", options=_options(inception_weights))
    s = Scorer(metrics="is", options=_options(inception_weights))
    with pytest.raises(GanProbeError, match=r"^images must be an N x C x H x W tensor") as e:
        s.update(torch.zeros(3, 32, 32))
    assert e.value.param == "images"
    with pytest.raises(GanProbeError, match=r"^images must be uint8") as e:
        s.update(torch.zeros(2, 3, 8, 8, dtype=torch.int32))
    with pytest.raises(GanProbeError, match=r"^images: none given") as e:
        s.compute()
    with pytest.raises(GanProbeError, match=r"^value_range must be"):
        Scorer(metrics="is", options=_options(inception_weights), value_range=(1, 1))
    with pytest.raises(GanProbeError, match="Inception weights not found"):
        Scorer(metrics="is", options=_options(tmp_path / "missing.pth"))


def test_gan_probe_exports_scorer_lazily():
    import subprocess

    code = "import sys, gan_probe; assert 'torch' not in sys.modules; gan_probe.Scorer; assert 'torch' in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
