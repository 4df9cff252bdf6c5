"""Devices and precision (gan_probe/device.py), on the CPU: TF32 switched off for every measurement
and the flags put back, float64 off MPS, torchrun placement, bf16 autocast only where it is native,
--deterministic. GPU and MPS are faked by monkeypatching availability, never needed."""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import pytest
import torch

from gan_probe import device as dev
from gan_probe.device import exact_float32, tf32_state

NEW_API = dev._has_fp32_precision_api()
needs_new_api = pytest.mark.skipif(not NEW_API, reason="torch < 2.9: no fp32_precision API")


def flag_snapshot() -> dict:
    """Every getter of both TF32 APIs; "raises" where torch refuses to answer (a mix of the APIs)."""
    getters = {"legacy cudnn": lambda: torch.backends.cudnn.allow_tf32,
               "legacy matmul": lambda: torch.backends.cuda.matmul.allow_tf32,
               "matmul precision": torch.get_float32_matmul_precision}
    if NEW_API:
        get = torch._C._get_fp32_precision_getter
        getters.update({f"{b}.{o}": (lambda b=b, o=o: get(b, o)) for b in ("cuda", "mkldnn")
                        for o in ("all", "matmul", "conv", "rnn")})
        getters["generic"] = lambda: get("generic", "all")
    out = {}
    for name, fn in getters.items():
        try:
            out[name] = fn()
        except RuntimeError:
            out[name] = "raises"
    return out


def _reset_flags() -> None:
    """torch's defaults: cuDNN may use TF32, CUDA matmul not, every fp32_precision node unset."""
    torch._C._set_cudnn_allow_tf32(True)
    torch.set_float32_matmul_precision("highest")
    if NEW_API:
        for node in (("generic", "all"), ("cuda", "all"), ("mkldnn", "all"), ("cuda", "matmul"),
                     ("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn")):
            torch._C._set_fp32_precision_setter(*node, "none")


@pytest.fixture(autouse=True)
def default_flags():
    """Each test starts from, and leaves, torch's default precision flags."""
    _reset_flags()
    defaults = flag_snapshot()
    yield
    _reset_flags()
    assert flag_snapshot() == defaults


def allow_tf32_everywhere() -> None:
    """What a user's script may have done before calling gan-probe (both APIs)."""
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    if NEW_API:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"


# ---------------------------------------------------------------- items 1, 2: exact float32
def _pre_default():
    pass


def _pre_new_matmul_tf32():  # issue 17 item 2: the legacy getter raises after this
    torch.backends.cuda.matmul.fp32_precision = "tf32"


def _pre_legacy_high():
    torch.set_float32_matmul_precision("high")


def _pre_legacy_medium():
    torch.set_float32_matmul_precision("medium")


def _pre_conv_unset():  # conv "none" with rnn "tf32": the legacy cuDNN getter raises
    torch.backends.cudnn.conv.fp32_precision = "none"


def _pre_generic_tf32():
    torch.backends.fp32_precision = "tf32"


def _pre_legacy_cudnn_off():
    torch.backends.cudnn.allow_tf32 = False


def _pre_cudnn_tree():
    torch.backends.cudnn.fp32_precision = "tf32"
    torch.backends.cudnn.rnn.fp32_precision = "ieee"


def _pre_mkldnn_bf16():
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"


PRE_STATES = [_pre_default, _pre_legacy_high, _pre_legacy_medium, _pre_legacy_cudnn_off]
NEW_API_PRE_STATES = [_pre_new_matmul_tf32, _pre_conv_unset, _pre_generic_tf32, _pre_cudnn_tree, _pre_mkldnn_bf16]


@pytest.mark.parametrize("pre", PRE_STATES + ([] if not NEW_API else NEW_API_PRE_STATES),
                         ids=lambda f: f.__name__[5:])
def test_exact_float32_turns_tf32_off_and_restores_every_flag(pre):
    pre()
    before = flag_snapshot()
    with exact_float32():
        inside = flag_snapshot()
        assert tf32_state() == {"cudnn_conv": False, "cuda_matmul": False}
        # both APIs answer, and agree: no getter raises inside
        assert inside["legacy cudnn"] is False and inside["legacy matmul"] is False
        assert inside["matmul precision"] == "highest"
        if NEW_API:
            assert all(inside[f"{b}.{o}"] == "ieee" for b, o in dev._FP32_LEAVES)
        with exact_float32():  # nesting restores the outer context's state
            pass
        assert flag_snapshot() == inside
    assert flag_snapshot() == before


@needs_new_api
def test_the_mixed_api_state_that_broke_inception_no_longer_raises():
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    with pytest.raises(RuntimeError, match="mix"):
        torch.backends.cuda.matmul.allow_tf32  # what the old _exact_float32 read
    with exact_float32():
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"


def test_exact_float32_restores_after_an_error():
    allow_tf32_everywhere()
    before = flag_snapshot()
    with pytest.raises(ValueError):
        with exact_float32():
            raise ValueError("boom")
    assert flag_snapshot() == before


def test_legacy_flags_path(monkeypatch):
    """torch < 2.9 has only allow_tf32 / set_float32_matmul_precision (emulated by hiding the new API)."""
    monkeypatch.setattr(dev, "_has_fp32_precision_api", lambda: False)
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("medium")
    with exact_float32():
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
        assert tf32_state() == {"cudnn_conv": False, "cuda_matmul": False}
    assert torch.backends.cudnn.allow_tf32 is True
    assert torch.get_float32_matmul_precision() == "medium"


class Spy:
    """Records the TF32 flags each time a watched module's forward runs."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []

    def watch(self, name: str, module: torch.nn.Module) -> None:
        """Hook every convolution of ``module`` (D's feature passes call ``D.features``, not forward)."""
        for m in module.modules():
            if isinstance(m, torch.nn.modules.conv._ConvNd):
                m.register_forward_pre_hook(lambda m, args: self.seen.append((name, {**tf32_state(), **self.raw()})))

    @staticmethod
    def raw() -> dict:
        out = {"legacy_cudnn": torch.backends.cudnn.allow_tf32,
               "matmul_precision": torch.get_float32_matmul_precision()}
        if NEW_API:
            out["conv_fp32"] = torch.backends.cudnn.conv.fp32_precision
            out["matmul_fp32"] = torch.backends.cuda.matmul.fp32_precision
        return out

    def assert_exact(self, *names: str) -> None:
        assert {n for n, _ in self.seen} >= set(names), self.seen
        for name, flags in self.seen:
            assert flags["cudnn_conv"] is False and flags["cuda_matmul"] is False, (name, flags)
            assert flags["legacy_cudnn"] is False and flags["matmul_precision"] == "highest", (name, flags)
            if NEW_API:
                assert flags["conv_fp32"] == "ieee" and flags["matmul_fp32"] == "ieee", (name, flags)


def test_ppl_walks_and_feature_passes_run_in_exact_float32(tiny_checkpoint):
    from gan_probe.analysis.latent import WalkPath, perceptual_path_length, walk_frames
    from gan_probe.checkpoint import load_generator
    from gan_probe.features import get_feature_space

    g, config = load_generator(tiny_checkpoint)
    disc = get_feature_space("disc", checkpoint=tiny_checkpoint)
    rand = get_feature_space("random-disc", checkpoint=tiny_checkpoint, seed=1)
    spy = Spy()
    spy.watch("G", g)
    spy.watch("disc", disc.module)
    spy.watch("random-disc", rand.module)
    allow_tf32_everywhere()
    before = flag_snapshot()
    perceptual_path_length(g, config, {"disc": disc, "random-disc": rand}, seed=0, n=4, batch_size=2)
    z = torch.zeros(2, config.nz)
    walk_frames(g, [WalkPath("row", z[0], z[1], "lerp")], 3, config.z_dist)
    spy.assert_exact("G", "disc", "random-disc")
    assert flag_snapshot() == before  # the caller's TF32 choice is back afterwards


def test_sampling_bn_recompute_and_filters_run_in_exact_float32(tiny_checkpoint):
    from gan_probe.analysis.classify_features import recompute_bn_statistics
    from gan_probe.analysis.filters import analyse_discriminator
    from gan_probe.checkpoint import load_discriminator, load_generator
    from gan_probe.data import TensorImageDataset
    from gan_probe.features import get_feature_space
    from gan_probe.sampling import generate

    g, config = load_generator(tiny_checkpoint)
    d, _ = load_discriminator(tiny_checkpoint)
    rand = get_feature_space("random-disc", checkpoint=tiny_checkpoint)
    spy = Spy()
    spy.watch("G", g)
    spy.watch("D", d)
    spy.watch("random-disc", rand.module)
    allow_tf32_everywhere()
    before = flag_snapshot()
    batches = list(generate(g, config, 4, seed=0, batch_size=2))
    images = torch.cat(batches)
    assert flag_snapshot() == before  # not left on between the generator's batches
    recompute_bn_statistics(rand.module, rand, TensorImageDataset(images, torch.zeros(4, dtype=torch.long)),
                            batch_size=2)
    analyse_discriminator(d, images, layer=0, features=[0, 1], top_k=2, batch_size=2, device="cpu")
    spy.assert_exact("G", "D", "random-disc")
    assert flag_snapshot() == before


def test_inception_extractor_runs_exact_and_keeps_float64_on_the_cpu(inception_weights):
    from gan_probe.features.inception import InceptionExtractor, to_inception_input

    ex = InceptionExtractor(inception_weights, "cpu")
    assert ex.fc_weight.device.type == "cpu" and ex.fc_weight.dtype == torch.float64
    spy = Spy()
    spy.watch("inception", ex.net.Mixed_7c)
    if NEW_API:
        torch.backends.cuda.matmul.fp32_precision = "tf32"  # item 2's state
    out = ex(to_inception_input(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), logits=True)
    spy.assert_exact("inception")
    assert out.logits.dtype == torch.float64 and out.logits.shape == (1, 1008)
    expected = out.features.double() @ ex.net.fc.weight.detach().double().T
    assert torch.allclose(out.logits, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- item 6: kNN and SVM products
def test_knn_products_are_float32_even_after_set_float32_matmul_precision_high(monkeypatch):
    from gan_probe.knn import knn

    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    expected = knn(q, p, 3, candidates="float32")
    seen = []
    real_addmm = torch.addmm

    def spy(*args, **kw):
        seen.append(torch.get_float32_matmul_precision())
        return real_addmm(*args, **kw)

    torch.set_float32_matmul_precision("high")
    monkeypatch.setattr(torch, "addmm", spy)
    d, i = knn(q, p, 3, candidates="float32")
    assert seen and set(seen) == {"highest"}
    assert torch.get_float32_matmul_precision() == "high"  # the caller's setting is back
    np.testing.assert_array_equal(i, expected[1])
    np.testing.assert_array_equal(d, expected[0])


def test_svm_solver_runs_in_exact_float32(monkeypatch):
    from gan_probe import svm

    seen = []
    real = svm._fit_torch

    def spy(*args, **kw):
        seen.append((torch.get_float32_matmul_precision(), tf32_state()))
        return real(*args, **kw)

    monkeypatch.setattr(svm, "_fit_torch", spy)
    torch.set_float32_matmul_precision("high")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    model = svm.fit_linear_svm(x, y, C=1.0, solver="torch")
    assert seen == [("highest", {"cudnn_conv": False, "cuda_matmul": False})]
    assert svm.accuracy(model, x, y) > 0.9
    assert torch.get_float32_matmul_precision() == "high"


# ---------------------------------------------------------------- item 3: no float64 on MPS
def test_float64_work_leaves_a_device_without_float64():
    assert dev.supports_float64("cpu") and dev.supports_float64(torch.device("cuda", 1))
    assert not dev.supports_float64("mps")
    assert dev.float64_device("mps") == torch.device("cpu")
    assert dev.float64_device("cuda:1") == torch.device("cuda", 1)


def test_knn_and_svm_asked_for_mps_do_their_float64_work_on_the_cpu(monkeypatch):
    """A fake MPS device: were any float64 tensor put on it, torch (without MPS here) would raise."""
    from gan_probe import svm
    from gan_probe.knn import knn

    rng = np.random.default_rng(1)
    q, p = rng.normal(size=(10, 4)), rng.normal(size=(30, 4))
    d_mps, i_mps = knn(q, p, 2, device="mps")
    d_cpu, i_cpu = knn(q, p, 2, device="cpu")
    np.testing.assert_array_equal(i_mps, i_cpu)
    np.testing.assert_array_equal(d_mps, d_cpu)
    devices = []
    real = svm._fit_torch
    monkeypatch.setattr(svm, "_fit_torch", lambda x, y, classes, C, device, *a: devices.append(device)
                        or real(x, y, classes, C, device, *a))
    x = rng.normal(size=(30, 3)).astype(np.float32)
    svm.fit_linear_svm(x, (x[:, 0] > 0).astype(int), C=1.0, solver="torch", device="mps")
    assert devices == [torch.device("cpu")]


# ---------------------------------------------------------------- item 5: torchrun placement
@pytest.fixture
def fake_cuda(monkeypatch):
    """Four visible CUDA GPUs, and a process group whose creation is recorded, not performed."""
    calls = {"set_device": [], "init": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls["set_device"].append(torch.device(d)))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend, **kw: calls["init"].append(backend))
    return calls


@pytest.mark.parametrize("name", ["auto", "cuda", "cuda:0", "cuda:3"])
def test_each_torchrun_process_takes_its_local_rank_gpu_with_nccl(fake_cuda, monkeypatch, name):
    from gan_probe.distributed import init_distributed as _init_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    d = _init_distributed(name)
    assert (d.rank, d.world, d.local_rank, d.device) == (1, 2, 1, torch.device("cuda", 1))
    assert fake_cuda["set_device"] == [torch.device("cuda", 1)]
    assert fake_cuda["init"] == ["nccl"]


def test_a_cpu_torchrun_uses_gloo_and_too_few_gpus_is_one_line(fake_cuda, monkeypatch):
    from gan_probe.errors import GanProbeError
    from gan_probe.distributed import init_distributed as _init_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    d = _init_distributed("cpu")
    assert d.device == torch.device("cpu") and fake_cuda == {"set_device": [], "init": ["gloo"]}
    monkeypatch.setenv("LOCAL_RANK", "5")
    with pytest.raises(GanProbeError, match="LOCAL_RANK 5 needs cuda:5, but torch sees 4") as e:
        _init_distributed("cuda")
    assert e.value.param == "device"


def test_one_process_takes_the_device_asked_for(fake_cuda, monkeypatch):
    from gan_probe.distributed import init_distributed as _init_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert _init_distributed("cuda:2").device == torch.device("cuda", 2)
    assert fake_cuda == {"set_device": [], "init": []}


# ---------------------------------------------------------------- item 8: bf16 autocast
@pytest.mark.parametrize("capability,native", [((6, 1), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_autocast_only_where_bf16_is_native(monkeypatch, capability, native):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert dev.bf16_autocast_ok(torch.device("cuda", 0)) is native
    with pytest.warns(UserWarning) if native and not torch.cuda.is_available() else contextlib.nullcontext():
        ctx = dev.training_autocast(torch.device("cuda", 0), enabled=True)
    assert isinstance(ctx, torch.autocast) is native
    if native:
        assert ctx.fast_dtype == torch.bfloat16
    assert isinstance(dev.training_autocast(torch.device("cuda", 0), enabled=False), contextlib.nullcontext)


def test_no_autocast_on_cpu_or_mps():
    assert not dev.bf16_autocast_ok("cpu") and not dev.bf16_autocast_ok("mps")
    assert isinstance(dev.training_autocast("cpu"), contextlib.nullcontext)


# ---------------------------------------------------------------- item 7: --deterministic
def test_deterministic_training_sets_the_flags_while_it_runs_and_restores_them(tmp_path, monkeypatch):
    from gan_probe import train as tr

    seen = []
    real = tr.train_step

    def spy(*args, **kw):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                     torch.backends.cudnn.benchmark))
        return real(*args, **kw)

    monkeypatch.setattr(tr, "train_step", spy)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    cfg = tr.TrainConfig(dataset="digits", batch_size=16, ngf=4, ndf=4, nz=8, device="cpu", max_steps=2,
                         out=str(tmp_path / "det"), deterministic=True)
    tr.train(cfg, progress=False)
    assert seen == [(True, True, False)] * 2
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark) == before
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == dev.CUBLAS_WORKSPACE
    conf = json.loads((tmp_path / "det" / "config.json").read_text())
    assert conf["train"]["deterministic"] is True and conf["autocast"] is None and conf["device"] == "cpu"


def test_cuda_training_without_deterministic_turns_the_autotuner_on_and_back_off():
    torch.backends.cudnn.benchmark = False
    with dev.training_determinism(torch.device("cuda", 0), deterministic=False):
        assert torch.backends.cudnn.benchmark is True
        assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark is False
    with dev.training_determinism("cpu", deterministic=False):
        assert torch.backends.cudnn.benchmark is False


def test_train_cli_deterministic_flag(capsys, tmp_path):
    from cli_runner import run_cli

    code, _, err = run_cli(["train", "--dataset", "digits", "--batch-size", 16, "--ngf", 4, "--ndf", 4, "--nz", 8,
                            "--max-steps", 1, "--device", "cpu", "--deterministic", "--out", tmp_path / "r", "-q"],
                           capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["deterministic"] is True
    assert not torch.are_deterministic_algorithms_enabled()
