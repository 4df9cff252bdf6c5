"""Exact blocked k-NN (gan_probe.knn) against a float64 brute-force reference."""

import warnings

import numpy as np
import pytest
import torch

import gan_probe.knn as knn_module
from gan_probe.errors import GanProbeError
from gan_probe.knn import iter_distance_blocks, knn


@pytest.fixture(autouse=True, params=["float32", "bfloat16"])
def candidates(request, monkeypatch):
    """Every test runs with both candidate passes: the answer must not depend on it."""
    real = knn_module.knn
    monkeypatch.setitem(globals(), "knn", lambda *a, **kw: real(*a, **{"candidates": request.param, **kw}))
    return request.param


def brute_knn(q, p, k, exclude_self=False):
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    d = np.sqrt(((q[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def assert_same(got, ref):
    (gd, gi), (rd, ri) = got, ref
    assert gd.dtype == np.float64 and gi.dtype == np.int64
    np.testing.assert_array_equal(gi, ri)
    np.testing.assert_allclose(gd, rd, rtol=1e-12, atol=0)


@pytest.mark.parametrize("block_size", [1, 7, 64, None])
@pytest.mark.parametrize("k", [1, 5])
def test_random_float32_matches_brute_force(block_size, k):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(300, 24)).astype(np.float32)
    q = rng.normal(size=(53, 24)).astype(np.float32)
    assert_same(knn(q, p, k, block_size=block_size), brute_knn(q, p, k))


def test_exact_copies_are_at_distance_zero():
    rng = np.random.default_rng(1)
    # large norms: the matrix-product trick alone would report ~1e-2 noise for a copy here
    p = rng.normal(loc=300.0, scale=5.0, size=(400, 64))
    q = np.concatenate([p[[3, 17, 399]], rng.normal(loc=300.0, scale=5.0, size=(20, 64))])
    d, i = knn(q, p, 3, block_size=8)
    assert_same((d, i), brute_knn(q, p, 3))
    assert np.all(d[:3, 0] == 0.0)
    assert list(i[:3, 0]) == [3, 17, 399]


def test_near_copies_get_their_float64_distance():
    rng = np.random.default_rng(2)
    p = rng.normal(loc=100.0, size=(200, 32))
    q = p[:10] + 1e-7 * rng.normal(size=(10, 32))
    d, i = knn(q, p, 1)
    ref_d, ref_i = brute_knn(q, p, 1)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-9)
    assert np.all(d < 1e-5)


def test_ties_broken_by_smaller_index():
    rng = np.random.default_rng(3)
    # integer grid: many exactly equal distances, computed exactly in float64
    p = rng.integers(0, 3, size=(250, 4)).astype(np.float32)
    q = rng.integers(0, 3, size=(40, 4)).astype(np.float32)
    for bs in (1, 13, None):
        assert_same(knn(q, p, 6, block_size=bs), brute_knn(q, p, 6))


def test_many_duplicates_beyond_the_candidate_pool():
    # 40 identical points: the k-th neighbour ties with every point left out of the candidates
    p = np.concatenate([np.ones((40, 8)), np.zeros((5, 8))]).astype(np.float32)
    p = p[np.random.default_rng(4).permutation(len(p))]
    q = np.ones((3, 8), dtype=np.float32)
    d, i = knn(q, p, 5, block_size=2)
    assert_same((d, i), brute_knn(q, p, 5))
    assert np.all(d == 0.0)


def test_more_ties_than_the_largest_candidate_pool():
    # 1200 identical points: every pool (k+4, x8, x8) is cut inside the tie -> exact rows
    p = np.concatenate([np.full((1200, 4), 2.0), np.zeros((3, 4)), np.full((2, 4), 2.5)])
    p = p[np.random.default_rng(9).permutation(len(p))]
    q = np.array([[2.0, 2.0, 2.0, 2.0], [2.4, 2.5, 2.5, 2.5]])
    assert_same(knn(q, p, 5), brute_knn(q, p, 5))
    x = p[:300]
    assert_same(knn(x, x, 3, exclude_self=True, block_size=64), brute_knn(x, x, 3, exclude_self=True))


@pytest.mark.parametrize("block_size", [1, 9, None])
def test_exclude_self_with_duplicates(block_size):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 10)).astype(np.float32)
    x[50] = x[7]  # a duplicate pair: each is the other's neighbour at distance 0
    d, i = knn(x, x, 4, exclude_self=True, block_size=block_size)
    assert_same((d, i), brute_knn(x, x, 4, exclude_self=True))
    assert i[7, 0] == 50 and i[50, 0] == 7 and d[7, 0] == 0.0
    assert not np.any(i == np.arange(len(x))[:, None])


def test_exclude_self_all_points():
    x = np.random.default_rng(6).normal(size=(6, 3))
    assert_same(knn(x, x, 5, exclude_self=True), brute_knn(x, x, 5, exclude_self=True))


def test_torch_inputs_and_k_equal_to_all_points():
    rng = np.random.default_rng(7)
    p = rng.normal(size=(9, 5))
    q = rng.normal(size=(4, 5))
    got = knn(torch.from_numpy(q), torch.from_numpy(p).float(), 9)
    ref = brute_knn(q, p.astype(np.float32), 9)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)


def test_iter_distance_blocks_covers_every_query():
    rng = np.random.default_rng(8)
    p = rng.normal(size=(77, 12)).astype(np.float32)
    q = rng.normal(size=(30, 12)).astype(np.float32)
    ref = np.sqrt(((q[:, None].astype(np.float64) - p[None]) ** 2).sum(-1))
    seen = np.zeros(len(q), dtype=bool)
    for start, end, block in iter_distance_blocks(q, p, block_size=7):
        assert block.shape == (end - start, len(p)) and end - start <= 7
        assert block.dtype == torch.float32
        np.testing.assert_allclose(block.numpy(), ref[start:end], rtol=1e-4, atol=1e-4)
        seen[start:end] = True
    assert seen.all()


def test_user_errors():
    x = np.zeros((5, 3))
    with pytest.raises(GanProbeError, match="only 5 points"):
        knn(x[:2], x, 6)
    with pytest.raises(GanProbeError, match="only 4 points"):
        knn(x, x, 5, exclude_self=True)
    with pytest.raises(GanProbeError, match="features"):
        knn(np.zeros((2, 4)), x, 1)
    with pytest.raises(GanProbeError, match="same length"):
        knn(x[:2], x, 1, exclude_self=True)
    with pytest.raises(GanProbeError, match="2-D"):
        knn(np.zeros(3), x, 1)
    with pytest.raises(GanProbeError, match="at least one point"):
        knn(x, np.zeros((0, 3)), 1)


def _brute_chunked(q, p, k):
    """float64 brute force in query chunks (for the larger stress sets)."""
    out = [brute_knn(q[s:s + 64], p, k) for s in range(0, len(q), 64)]
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


def test_bf16_pass_vouches_for_most_rows_and_agrees(monkeypatch):
    # the fast pass must do the work (not hand every row to float32), and give the exact answer
    if not knn_module.bf16_matmul_check("cpu"):
        pytest.skip("this CPU's bfloat16 product fails the self-check: knn takes the float32 route")
    rng = np.random.default_rng(10)
    p = np.abs(rng.normal(size=(2000, 128))).astype(np.float32)
    q = np.abs(rng.normal(size=(200, 128))).astype(np.float32)
    searched = []
    real_search = knn_module._Search.search
    monkeypatch.setattr(knn_module._Search, "search",
                        lambda self, qsrc, *a, **kw: searched.append(len(qsrc)) or real_search(self, qsrc, *a, **kw))
    got = knn_module.knn(q, p, 5, candidates="bfloat16")
    assert sum(searched) <= knn_module._BF16_PILOT_ROWS + 0.05 * len(q)
    assert_same(got, _brute_chunked(q, p, 5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bf16_pass_exact_on_hard_sets(dtype):
    """Sets made to break a loose error bound: a large common offset, radii over three
    decades, tight clusters of near-duplicates, and queries at bfloat16 rounding distance."""
    rng = np.random.default_rng(11)
    dim = 48
    offset = rng.normal(loc=500.0, scale=1.0, size=(1500, dim))
    radii = rng.normal(size=(1500, dim)) * np.exp(rng.uniform(0, 7, size=(1500, 1)))
    centres = rng.normal(scale=3.0, size=(40, dim))
    clusters = np.repeat(centres, 30, axis=0) + 1e-3 * rng.normal(size=(1200, dim))
    for p in (offset, radii, clusters):
        p = p.astype(dtype)
        q = np.concatenate([p[rng.choice(len(p), 60, replace=False)] * (1 + 2.0 ** -9),
                            p[rng.choice(len(p), 60, replace=False)] + 1e-4 * rng.normal(size=(60, dim)),
                            rng.permutation(p)[:60] * 0.5 + p.mean(0) * 0.5]).astype(dtype)
        assert_same(knn(q, p, 7, block_size=32), _brute_chunked(q, p, 7))
    x = clusters.astype(dtype)[:600]
    assert_same(knn(x, x, 3, exclude_self=True, block_size=50), brute_knn(x, x, 3, exclude_self=True))


def test_bf16_pass_is_cpu_only_and_candidates_checked():
    x = np.zeros((40, 3))
    with pytest.raises(GanProbeError, match="CPU only"):
        knn_module.knn(x, x, 1, candidates="bfloat16", device="meta")
    with pytest.raises(GanProbeError, match="candidates must be"):
        knn_module.knn(x, x, 1, candidates="int8")


@pytest.mark.parametrize("t", [None, 2.0 ** 12, -(2.0 ** 12)])
def test_bf16_lower_bound_holds_for_every_point_left_out(t):
    """The bound the bfloat16 pass certifies with, checked point by point, also when its
    offset t is placed badly (then bfloat16 rounds the products coarsely)."""
    rng = np.random.default_rng(12)
    p = torch.from_numpy(rng.normal(loc=3.0, size=(600, 32)).astype(np.float32))
    q = torch.from_numpy(rng.normal(loc=3.0, size=(80, 32)).astype(np.float32))
    d = torch.cdist(q.double(), p.double())
    pilot_kth = d.sort(dim=1).values[:8, 4].square()
    bf = knn_module._Bf16Candidates(p, pilot_kth, q[:8], inputs_rounded=False)
    if t is not None:
        bf.t = t
    for n_cand in (5, 40, 300):
        cand, lower = bf.candidates(q, None, n_cand)
        left_out = torch.ones_like(d, dtype=torch.bool).scatter_(1, cand, False)
        nearest_left_out = torch.where(left_out, d, torch.inf).min(dim=1).values
        assert torch.all(nearest_left_out >= lower)
        if t is None:  # with the offset placed by the pilot rows, the bound is not vacuous
            assert torch.all(lower > 0.5 * nearest_left_out)


# ---------------------------------------------------------------- the bfloat16 self-check

def _bf16_accumulating(block: int):
    """A bfloat16 product that sums ``block`` exact products in float32, then rounds the running
    sum to bfloat16 (block 1: a bfloat16 accumulator), as a kernel the bound does not cover might."""

    def matmul(a, b):
        out = torch.zeros((len(a), len(b)), dtype=torch.bfloat16)
        a32, b32 = a.float(), b.float()
        for s in range(0, a.shape[1], block):
            out = (out.float() + a32[:, s:s + block] @ b32[:, s:s + block].T).to(torch.bfloat16)
        return out

    return matmul


def _float32_rounded_once(a, b):
    return (a.float() @ b.float().T).to(torch.bfloat16)


def _float32_truncated_once(a, b):
    s = (a.float() @ b.float().T).contiguous()
    return (s.view(torch.int32) & ~0xFFFF).view(torch.float32).to(torch.bfloat16)


def test_bf16_check_tells_float32_sums_from_bfloat16_sums(monkeypatch):
    cpu = torch.device("cpu")
    for good in (_float32_rounded_once, _float32_truncated_once):
        monkeypatch.setattr(knn_module, "_bf16_matmul", good)
        assert knn_module._bf16_check_reason(cpu) is None
    for block in (1, 32, 512):
        monkeypatch.setattr(knn_module, "_bf16_matmul", _bf16_accumulating(block))
        assert "float32" in knn_module._bf16_check_reason(cpu)
    rounded_products = lambda a, b: (a.float()[:, None] * b.float()[None]).bfloat16().float().sum(-1).bfloat16()  # noqa: E731
    monkeypatch.setattr(knn_module, "_bf16_matmul", rounded_products)
    assert knn_module._bf16_check_reason(cpu) is not None


@pytest.mark.parametrize("block", [1, 32])
@pytest.mark.parametrize("mode", ["bfloat16", "auto"])
def test_bf16_check_failure_takes_the_float32_route_and_stays_exact(block, mode, monkeypatch):
    monkeypatch.setattr(knn_module, "_BF16_CHECKS", {})  # a fresh process
    monkeypatch.setattr(knn_module, "_bf16_matmul", _bf16_accumulating(block))
    monkeypatch.setattr(knn_module, "bf16_matmul_is_fast", lambda device: True)
    monkeypatch.setattr(knn_module, "_BF16_MIN_WORK", 0)
    used = []
    real = knn_module._Bf16Candidates.candidates
    monkeypatch.setattr(knn_module._Bf16Candidates, "candidates", lambda *a: used.append(1) or real(*a))
    rng = np.random.default_rng(13)
    p = rng.normal(size=(400, 24)).astype(np.float32)
    q = rng.normal(size=(50, 24)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="bfloat16 candidates disabled on cpu.*float32"):
        got = knn_module.knn(q, p, 5, candidates=mode)
    assert not used  # the bfloat16 pass never ran
    assert_same(got, brute_knn(q, p, 5))
    with warnings.catch_warnings():  # the check ran once: no second warning, same answer
        warnings.simplefilter("error")
        assert_same(knn_module.knn(q, p, 5, candidates=mode), brute_knn(q, p, 5))
    assert not used and list(knn_module._BF16_CHECKS) == [("cpu", None)]


def test_bf16_check_runs_once_per_device(monkeypatch):
    monkeypatch.setattr(knn_module, "_BF16_CHECKS", {})
    calls = []
    real = knn_module._bf16_check_reason
    monkeypatch.setattr(knn_module, "_bf16_check_reason", lambda device: calls.append(device) or real(device))
    first = knn_module.bf16_matmul_check("cpu")
    with pytest.warns(RuntimeWarning, match="on meta"):  # no bfloat16 numbers to read back there
        assert knn_module.bf16_matmul_check("meta") is False
    for _ in range(3):
        assert knn_module.bf16_matmul_check(torch.device("cpu")) is first
        assert knn_module.bf16_matmul_check("meta") is False
    assert [d.type for d in calls] == ["cpu", "meta"]
