"""Exact k-nearest-neighbour search in blocks (Euclidean), CPU or GPU.

Candidates come from a blocked float32 matrix product
(``||x||^2 - 2 x.y + ||y||^2``, one block of query rows against every point at a
time, so memory is bounded by ``block_size x N_points``, never
``N_queries x N_points``); the candidates are then re-ranked with direct float64
differences, so a copy (distance ~0) gets its exact distance, not the
cancellation noise of the matrix-product trick.

The result is exact: after re-ranking, a query row is accepted only if its
k-th exact distance is clearly below the float32 estimate of the first
candidate left out (with an error margin for float32 rounding); rows that fail
(ties across the cut, many near-duplicates) are searched again with a
candidate pool 8x larger (up to 1024), and past that with exact float64
distances to every point. Ties are broken by the smaller point index, as a
stable sort of the float64 distances would.

On a CPU with bfloat16 matrix units (AMX or AVX512-BF16), ``candidates="auto"``
takes the candidates of a large search from a bfloat16 matrix product instead,
several times faster than float32 there. Its rounding is far coarser, so the
same exactness check runs with a rigorous bound on that rounding (see
:class:`_Bf16Candidates`); rows it cannot vouch for are tried once more with a
pool 4x larger, then searched by the float32 route above. The answer is the
same either way; only the time changes.

That bound assumes the matrix product sums exact bfloat16 products in float32
and rounds once to bfloat16, as oneDNN's kernels do; no API promises it. So
the first bfloat16 search of a process on a device runs :func:`bf16_matmul_check`
(a product whose answer under that assumption is known exactly, ~1 ms); if it
fails, the float32 route is used instead and a ``RuntimeWarning`` says why.

``iter_distance_blocks`` exposes the blocked float32 distances themselves, for
counts such as "is this sample inside any real point's k-NN ball"
(precision / recall / density / coverage).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterator

import numpy as np
import torch

from gan_probe.device import exact_float32, float64_device
from gan_probe.errors import GanProbeError

# elements of one float32 distance block when block_size is left to us (64 MiB)
DEFAULT_BLOCK_ELEMENTS = 1 << 24
# candidates taken beyond k before the float64 re-ranking
EXTRA_CANDIDATES = 4
# largest candidate pool tried (x8 each time) before a row is searched exactly against every point
MAX_CANDIDATES = 1024
# points handled at once by the float64 fallback
_EXACT_POINT_CHUNK = 4096
# float64 values gathered at once by the re-ranking (16 MiB: small enough to stay off fresh pages)
_RERANK_ELEMENTS = 1 << 21
# candidates taken beyond k by the bfloat16 pass (its error bound is wider than float32's)
BF16_EXTRA_CANDIDATES = 16
# "auto" takes the bfloat16 pass from this many multiply-adds (queries x points x dim) on
_BF16_MIN_WORK = 1 << 32
# queries searched by the float32 route first to place the bfloat16 pass's offset
_BF16_PILOT_ROWS = 32
CANDIDATE_PRECISIONS = ("auto", "float32", "bfloat16")
# the bfloat16 self-check: rows, columns, inner length (about a feature dimension + 4) of its product
_BF16_CHECK_SHAPE = (32, 32, 2048)
# its verdict per device within the process: None (passed) or the reason it failed
_BF16_CHECKS: dict[tuple[str, int | None], str | None] = {}


def _as_2d_tensor(x, what: str) -> torch.Tensor:
    """numpy / torch / nested list -> 2-D torch tensor (no copy for numpy or torch)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    if t.ndim != 2:
        raise GanProbeError(f"{what} must be a 2-D array (N x dim), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise GanProbeError(f"{what} must hold numbers, got dtype {t.dtype}")
    return t


def _prepare(queries, points) -> tuple[torch.Tensor, torch.Tensor]:
    q = _as_2d_tensor(queries, "queries")
    p = _as_2d_tensor(points, "points")
    if q.shape[1] != p.shape[1]:
        raise GanProbeError(f"queries have {q.shape[1]} features but points have {p.shape[1]}")
    if len(p) == 0:
        raise GanProbeError("nearest-neighbour search needs at least one point")
    return q, p


def auto_block_size(n_points: int, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> int:
    """Query rows per block so one float32 block holds about ``block_elements`` values."""
    return max(1, block_elements // max(1, n_points))


def _to_f32(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.to(device=device, dtype=torch.float32).contiguous()


def _squared_norms(x32: torch.Tensor) -> torch.Tensor:
    """||x||^2 of the float32 values the matrix product uses (float32, their device)."""
    return torch.linalg.vector_norm(x32, dim=1).square_()


def _block_sq_distances(qb32: torch.Tensor, qn: torch.Tensor, p32: torch.Tensor, pn: torch.Tensor) -> torch.Tensor:
    """float32 squared distances of a query block to every point (clamped at 0); the product is
    IEEE float32 whatever precision the caller allowed (TF32 would void the error margin)."""
    with exact_float32():
        d2 = torch.addmm(pn.unsqueeze(0), qb32, p32.T, beta=1.0, alpha=-2.0)
    d2.add_(qn.unsqueeze(1))
    return d2.clamp_(min=0.0)


def iter_distance_blocks(queries, points, block_size: int | None = None,
                         device: str | torch.device = "cpu") -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, end, D)``: D = float32 Euclidean distances of queries
    ``start:end`` to every point, ``(end - start) x N_points``, on ``device``.

    Distances come from the matrix-product identity (relative error ~1e-6 of the
    norms; use :func:`knn` where distances near 0 must be exact). ``block_size``:
    query rows per block (default: about 16M distances per block).
    """
    q, p = _prepare(queries, points)
    device = torch.device(device)
    bs = block_size or auto_block_size(len(p))
    if bs < 1:
        raise GanProbeError(f"block size must be >= 1, got {bs}")
    p32 = _to_f32(p, device)
    pn = _squared_norms(p32)
    for start in range(0, len(q), bs):
        end = min(start + bs, len(q))
        qsrc = q[start:end]
        qb32 = _to_f32(qsrc, device)
        qn = _squared_norms(qb32)
        yield start, end, _block_sq_distances(qb32, qn, p32, pn).sqrt_()


def _exact_sq(qrows64: torch.Tensor, prows64: torch.Tensor) -> torch.Tensor:
    """Row-wise ||q_i - p_i||^2 in float64 by direct differences."""
    diff = qrows64 - prows64
    return (diff * diff).sum(-1)


def _candidate_sq_distances(q64: torch.Tensor, p: torch.Tensor, cand: torch.Tensor,
                            device: torch.device) -> torch.Tensor:
    """float64 ||q_i - p_cand[i, j]||^2 by direct differences (fused in ``cdist``), in row
    chunks of bounded size gathered into reused buffers."""
    n, c = cand.shape
    dim = q64.shape[1]
    rows = max(1, min(n, _RERANK_ELEMENTS // max(1, c * dim)))
    out = torch.empty((n, c), dtype=torch.float64, device=device)
    direct = p.dtype == torch.float64 and p.device == device  # gather straight into the float64 buffer
    src = None if direct else torch.empty((rows * c, dim), dtype=p.dtype, device=p.device)
    buf = torch.empty((rows * c, dim), dtype=torch.float64, device=device)
    for s in range(0, n, rows):
        idx = cand[s:s + rows]
        m = idx.numel()
        if direct:
            torch.index_select(p, 0, idx.reshape(-1), out=buf[:m])
        else:
            torch.index_select(p, 0, idx.reshape(-1).to(p.device), out=src[:m])
            buf[:m].copy_(src[:m])
        prow = buf[:m].view(len(idx), c, dim)
        d = torch.cdist(q64[s:s + rows].unsqueeze(1), prow, compute_mode="donot_use_mm_for_euclid_dist")
        out[s:s + rows] = d[:, 0].square_()
    return out


def _sort_by_distance_then_index(d2: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.argsort(idx, dim=1)
    d2, idx = d2.gather(1, order), idx.gather(1, order)
    order = torch.argsort(d2, dim=1, stable=True)
    return d2.gather(1, order), idx.gather(1, order)


def _exact_row(q64: torch.Tensor, p: torch.Tensor, k: int, self_index: int | None,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest of one query by float64 distances to every point (the fallback)."""
    parts = []
    for s in range(0, len(p), _EXACT_POINT_CHUNK):
        chunk = p[s:s + _EXACT_POINT_CHUNK].to(device=device, dtype=torch.float64)
        parts.append(_exact_sq(q64.unsqueeze(0), chunk))
    d2 = torch.cat(parts)
    if self_index is not None:
        d2[self_index] = math.inf
    order = torch.argsort(d2, stable=True)[:k]
    return d2[order], order


def bf16_matmul_is_fast(device: torch.device) -> bool:
    """True on a CPU with AMX or AVX512-BF16 units, where a bfloat16 matrix product runs several
    times faster than a float32 one (elsewhere bfloat16 is emulated, and slower)."""
    if device.type != "cpu":
        return False
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # a private probe that changed: treat as absent
            pass
    return False


def _bf16_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` in bfloat16: the candidate pass's product (one place, so a test can swap the kernel)."""
    return a @ b.T


def _bf16_check_reason(device: torch.device) -> str | None:
    """Run the self-check once: None if the product matches, else why not."""
    m, n, dim = _BF16_CHECK_SHAPE
    # integers up to 89 in magnitude: bfloat16-exact inputs, products below 2^13, and every
    # partial sum (any order, any blocking) an integer below 2048 * 89^2 < 2^24, so exact in float32;
    # the sums reach ~1e5, where bfloat16's spacing is 512: a bfloat16 partial sum is off by hundreds
    lim = int(math.isqrt((1 << 24) // dim)) - 1
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-lim, lim + 1, (m, dim), generator=gen).to(torch.bfloat16)
    b = torch.randint(-lim, lim + 1, (n, dim), generator=gen).to(torch.bfloat16)
    exact = (a.double() @ b.double().T).float()  # exact: integers below 2^24
    # one final rounding to bfloat16: to nearest even (oneDNN), or toward zero (the bound allows both)
    nearest = exact.to(torch.bfloat16)
    toward_zero = (exact.view(torch.int32) & ~0xFFFF).view(torch.float32).to(torch.bfloat16)
    try:
        got = _bf16_matmul(a.to(device), b.to(device)).cpu()
    except Exception as e:  # no bfloat16 product on this device at all
        return f"the bfloat16 matrix product failed ({type(e).__name__}: {e})"
    if got.dtype != torch.bfloat16 or got.shape != exact.shape:
        return f"the bfloat16 matrix product returned {got.dtype} {tuple(got.shape)}"
    if torch.equal(got, nearest) or torch.equal(got, toward_zero):
        return None
    wrong = int((got != nearest).sum())
    err = float((got.float() - exact).abs().max())
    return (f"it does not sum in float32 with one final rounding: {wrong} of {m * n} entries of a "
            f"{m}x{dim} @ {dim}x{n} integer product differ (largest error {err:g})")


def bf16_matmul_check(device: str | torch.device = "cpu") -> bool:
    """Whether ``device``'s bfloat16 matrix product sums exact products in float32 and rounds
    once, as the bfloat16 candidate pass's error bound assumes. Run once per process and device
    (~1 ms); a failure is reported once, as a ``RuntimeWarning`` with the reason.

    The check multiplies integer matrices (32 x 2048 by 2048 x 32, entries up to 89): every
    partial sum is exact in float32 whatever the order or blocking, so the expected answer is
    the exact sum rounded once; a kernel that accumulates in bfloat16, rounds partial sums (of
    blocks of the inner dimension) to bfloat16, or rounds the products, misses it."""
    device = torch.device(device)
    key = (device.type, device.index)
    if key not in _BF16_CHECKS:
        reason = _bf16_check_reason(device)
        _BF16_CHECKS[key] = reason
        if reason is not None:
            warnings.warn(f"k-NN: bfloat16 candidates disabled on {device}, {reason}; using the float32 "
                          f"route (same answer, slower)", RuntimeWarning, stacklevel=3)
    return _BF16_CHECKS[key] is None


def knn(queries, points, k: int, *, block_size: int | None = None, device: str | torch.device = "cpu",
        exclude_self: bool = False, candidates: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` of every query (Euclidean).

    ``queries``: Nq x dim, ``points``: Np x dim (numpy or torch, any float or int
    dtype; float64 inputs are re-ranked at full float64 precision).
    ``exclude_self``: queries are the points themselves; query i never returns
    point i (an exact duplicate elsewhere still counts, at distance 0).
    ``block_size``: query rows per block (memory ~ block_size x Np float32).
    ``candidates``: precision of the matrix product that picks the candidates
    (``"float32"``, ``"bfloat16"``, or ``"auto"``: bfloat16 on a CPU with
    bfloat16 units for a large search). It changes the speed, never the answer: where
    :func:`bf16_matmul_check` fails, ``"bfloat16"`` and ``"auto"`` take the float32 route.

    Returns ``(distances, indices)``: float64 Nq x k sorted ascending (ties by
    smaller index), int64 Nq x k.
    """
    q, p = _prepare(queries, points)
    if exclude_self and (len(q) != len(p)):
        raise GanProbeError("exclude_self needs the queries to be the points themselves (same length)")
    available = len(p) - (1 if exclude_self else 0)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise GanProbeError(f"k must be a positive integer, got {k!r}")
    if k > available:
        raise GanProbeError(f"k = {k} nearest neighbours asked for, but there are only {available} points to search")
    device = float64_device(device)  # it re-ranks in float64: on MPS (no float64) the search runs on the CPU
    bs = block_size or auto_block_size(len(p))
    if bs < 1:
        raise GanProbeError(f"block size must be >= 1, got {bs}")
    if candidates not in CANDIDATE_PRECISIONS:
        raise GanProbeError(f"candidates must be one of {', '.join(CANDIDATE_PRECISIONS)}, got {candidates!r}")
    if candidates == "bfloat16" and device.type != "cpu":
        # its error bound assumes float32 sums, which GPU libraries may shorten to bfloat16
        raise GanProbeError("the bfloat16 candidate pass runs on the CPU only; use candidates='float32' or 'auto'")
    n_cand = k + BF16_EXTRA_CANDIDATES
    if candidates == "auto":
        use_bf16 = (bf16_matmul_is_fast(device) and n_cand < available
                    and len(q) * len(p) * q.shape[1] >= _BF16_MIN_WORK)
    else:
        use_bf16 = candidates == "bfloat16" and n_cand < available
    use_bf16 = use_bf16 and bf16_matmul_check(device)  # else the float32 route: same answer
    p32 = _to_f32(p, device)
    pn = _squared_norms(p32)
    ctx = _Search(p, p32, pn, k, available, device, q.shape[1])
    if use_bf16:
        pilot = torch.linspace(0, len(q) - 1, min(len(q), _BF16_PILOT_ROWS)).round().long().unique()
        pilot_d2, _ = ctx.search(q[pilot], pilot.to(device) if exclude_self else None)
        ctx.bf16 = _Bf16Candidates(p32, pilot_d2[:, -1], _to_f32(q[pilot], device),
                                   inputs_rounded=(p.dtype, q.dtype) != (torch.float32, torch.float32))
    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)

    def store(rows: torch.Tensor, exact: torch.Tensor, cand: torch.Tensor) -> None:
        r = rows.cpu().numpy()
        out_d[r], out_i[r] = exact.sqrt().cpu().numpy(), cand.cpu().numpy()

    rows = torch.arange(len(q))
    if ctx.bf16 is not None:
        # bfloat16 passes over every row, then over the rows left unsure with a pool 4x larger
        while len(rows) and n_cand < available and n_cand <= MAX_CANDIDATES // 2:
            unsure = []
            for s in range(0, len(rows), bs):
                r = rows[s:s + bs]
                exact, cand, left = ctx.search_bf16(q[r.to(q.device)], r.to(device) if exclude_self else None, n_cand)
                store(r, exact, cand)
                unsure.append(r[left.cpu()])
            rows, n_cand = torch.cat(unsure), n_cand * 4
    for s in range(0, len(rows), bs):  # the float32 route: every row, or those the bfloat16 passes left
        r = rows[s:s + bs]
        store(r, *ctx.search(q[r.to(q.device)], r.to(device) if exclude_self else None))
    return out_d, out_i


class _Search:
    """One exact search's shared state: the points (source, float32, norms) and the error margin."""

    def __init__(self, p, p32, pn, k, available, device, dim):
        self.p, self.p32, self.pn, self.k, self.available, self.device = p, p32, pn, k, available, device
        eps32 = float(np.finfo(np.float32).eps)
        # generous bound on the float32 rounding of ||x||^2 - 2x.y + ||y||^2, relative to ||x||^2 + ||y||^2
        self.rel_margin = 8.0 * eps32 * math.sqrt(dim) + 16.0 * eps32
        self.pn_max = float(pn.max())
        self.bf16: _Bf16Candidates | None = None

    def rerank(self, qsrc: torch.Tensor, cand: torch.Tensor, self_idx: torch.Tensor | None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """float64 query rows, and the candidates' exact squared distances and indices sorted
        (distance, then index)."""
        q64 = qsrc.to(device=self.device, dtype=torch.float64)
        exact = _candidate_sq_distances(q64, self.p, cand, self.device)
        if self_idx is not None:
            exact[cand == self_idx.unsqueeze(1)] = math.inf
        exact, cand = _sort_by_distance_then_index(exact, cand)
        return q64, exact, cand

    def search_bf16(self, qsrc: torch.Tensor, self_idx: torch.Tensor | None,
                    n_cand: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(exact squared distances, indices, rows not vouched for): candidates from the bfloat16
        pass, re-ranked exactly; a row is vouched for when its k-th exact distance is below the
        pass's lower bound on every point it left out."""
        cand, lower = self.bf16.candidates(_to_f32(qsrc, self.device), self_idx, n_cand)
        _, exact, cand = self.rerank(qsrc, cand, self_idx)
        exact, cand = exact[:, :self.k].contiguous(), cand[:, :self.k].contiguous()
        unsure = torch.nonzero(~(exact[:, -1].sqrt() * (1 + 1e-12) < lower)).flatten()
        return exact, cand, unsure

    def search(self, qsrc: torch.Tensor, self_idx: torch.Tensor | None,
               n_cand: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(exact squared distances, indices), k per query row; rows whose candidate pool may have
        missed a neighbour are searched again with a pool 8x larger, then exactly against every point."""
        k, device = self.k, self.device
        n_cand = min(self.available, n_cand or k + EXTRA_CANDIDATES)
        take = min(len(self.p), n_cand + 1)  # one more: the first point left out bounds all left out
        qb32 = _to_f32(qsrc, device)
        qn = _squared_norms(qb32)
        d2 = _block_sq_distances(qb32, qn, self.p32, self.pn)
        rows = torch.arange(len(qsrc), device=device)
        if self_idx is not None:
            d2[rows, self_idx] = math.inf
        approx, cand = torch.topk(d2, take, dim=1, largest=False, sorted=True)
        del d2
        # (with exclude_self the inf self entry may be this one: nothing real left out)
        boundary = approx[:, n_cand] if take > n_cand else None
        cand = cand[:, :n_cand]
        # exact float64 re-ranking of the candidates, by direct differences
        q64, exact, cand = self.rerank(qsrc, cand, self_idx)
        exact, cand = exact[:, :k].contiguous(), cand[:, :k].contiguous()
        if boundary is None:
            return exact, cand
        margin = self.rel_margin * (qn.double() + self.pn_max) + 1e-30
        # every point left out has true d2 >= boundary - margin: it must be > k-th exact d2 + margin
        unsure = torch.nonzero(~(exact[:, -1] + 2 * margin < boundary.double())).flatten()
        if len(unsure) == 0:
            return exact, cand
        sub_self = self_idx[unsure] if self_idx is not None else None
        if n_cand * 8 <= MAX_CANDIDATES:
            e, i = self.search(qsrc[unsure.to(qsrc.device)], sub_self, n_cand * 8)
            exact[unsure], cand[unsure] = e, i
            return exact, cand
        for j, r in enumerate(unsure.tolist()):
            e, i = _exact_row(q64[r], self.p, k, int(sub_self[j]) if sub_self is not None else None, device)
            exact[r], cand[r] = e, i.to(cand.device)
        return exact, cand


class _Bf16Candidates:
    """Candidate neighbours from one bfloat16 matrix product per query block, with a lower
    bound on the distance of every point it leaves out.

    Points and queries are centred on the points' float32 mean (distances do not change);
    ``h`` is the bfloat16 rounding of a centred vector ``c`` (round to nearest even, so
    ``||c - h|| <= u ||c||``, ``u = 2^-9``). Each point row is ``[-h_p, a1, a2, a3, 1]`` with
    ``a1 + a2 + a3 = ||c_p||^2 / 2`` in three bfloat16 pieces, each query row
    ``[h_q, 1, 1, 1, -t]``, so the product is ``o = ||c_p||^2/2 - h_q.h_p - t`` and
    ``d^2 = ||c_q||^2 + 2 (o + t) + 2 (h_q.h_p - c_q.c_p)``. ``t`` (a bfloat16 number) is
    placed so that ``o`` is near 0 around the k-th neighbour, where bfloat16 rounds it
    finely. The error terms, bounded for every point left out (assuming exact bfloat16
    products summed in float32 and one rounding of the sum to bfloat16, as oneDNN's
    AMX / AVX512-BF16 kernels do):

    - bfloat16 inputs: ``|h_q.h_p - c_q.c_p| <= (2 + u) u ||c_q|| max||c_p||``;
    - float32 summation of K terms: ``gamma_K * sum|terms|``;
    - float32 norms: ``3 gamma_dim`` of each squared norm; pieces: their float64 remainder;
    - bfloat16 output: ``|o~ - o| <= c |o~|``, ``c = 2^-7 / (1 - 2^-7)`` (rounding or
      truncation); ``x - c|x|`` increases with x, so every left-out point (``o~ >= B``,
      the largest candidate value) has ``o >= B - c|B|``;
    - float32 casting and centring of the inputs: a few float32 units of each vector's norm.
    """

    U_BF16 = 2.0 ** -9

    def __init__(self, p32: torch.Tensor, pilot_kth_d2: torch.Tensor, pilot_q32: torch.Tensor,
                 inputs_rounded: bool, chunk: int = 8192):
        n, dim = p32.shape
        self.dim, self.inputs_rounded = dim, inputs_rounded
        self.u32 = float(np.finfo(np.float32).eps) / 2
        self.gamma_dim = dim * self.u32 / (1 - dim * self.u32)
        self.gamma_k = (dim + 4) * self.u32 / (1 - (dim + 4) * self.u32)
        self.mean = p32.mean(0)
        self.aug = torch.empty((n, dim + 4), dtype=torch.bfloat16, device=p32.device)
        c_max = piece_err = x_max = 0.0
        buf = torch.empty((min(n, chunk), dim), dtype=torch.float32, device=p32.device)
        for s in range(0, n, chunk):
            x = p32[s:s + chunk]
            rows = self.aug[s:s + chunk]
            neg_c = torch.sub(self.mean, x, out=buf[:len(x)])
            rows[:, :dim].copy_(neg_c)  # -h_p: the bfloat16 rounding of -c_p
            c_norm = torch.linalg.vector_norm(neg_c, dim=1)
            c_max = max(c_max, float(c_norm.max()))
            if inputs_rounded:
                x_max = max(x_max, float(torch.linalg.vector_norm(x, dim=1).max()))
            rest = c_norm.double().square() / 2
            for j in range(3):
                piece = rest.to(torch.bfloat16)
                rows[:, dim + j] = piece
                rest = rest - piece.double()
            piece_err = max(piece_err, float(rest.abs().max()))
            rows[:, dim + 3] = 1.0
        grow = 1.0 + 3 * self.gamma_dim
        self.c_max, self.x_max = c_max * grow, x_max * grow
        self.half_max = self.c_max ** 2 / 2
        self.piece_err = piece_err
        # t: the median over the pilot rows of o + t at their k-th neighbour
        pilot_qn = torch.linalg.vector_norm(pilot_q32 - self.mean, dim=1).double().square()
        t = float(torch.median((pilot_kth_d2.to(pilot_qn.device) - pilot_qn) / 2))
        self.t = float(torch.tensor(t if math.isfinite(t) else 0.0).to(torch.bfloat16))

    def candidates(self, q32: torch.Tensor, self_idx: torch.Tensor | None,
                   n_cand: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_cand candidate indices per row, lower bound on the distance of every point left out)."""
        dim, u = self.dim, self.U_BF16
        qa = torch.empty((len(q32), dim + 4), dtype=torch.bfloat16, device=q32.device)
        c = q32 - self.mean
        qa[:, :dim].copy_(c)
        qa[:, dim:dim + 3] = 1.0
        qa[:, dim + 3] = -self.t
        c_norm = torch.linalg.vector_norm(c, dim=1).double()
        del c
        o = _bf16_matmul(qa, self.aug)  # bfloat16, block x N_points
        if self_idx is not None:
            o[torch.arange(len(q32), device=o.device), self_idx] = math.inf
        vals, cand = torch.topk(o, n_cand, dim=1, largest=False, sorted=False)
        del o
        b = vals.max(dim=1).values.double()
        qn = c_norm.square()
        c_out = 2.0 ** -7 / (1 - 2.0 ** -7)
        e_in = (2 + u) * u * c_norm * self.c_max
        e_acc = self.gamma_k * ((1 + u) ** 2 * c_norm * self.c_max + 1.01 * self.half_max + abs(self.t))
        e_norms = 3 * self.gamma_dim * (qn / 2 + self.half_max) + self.piece_err
        lower_d2 = qn + 2 * (b - c_out * b.abs() + self.t) - 2 * (e_in + e_acc + e_norms)
        # an overflowed product (inf / nan) vouches for nothing: those rows take the float32 route
        lower = torch.where(torch.isfinite(lower_d2), lower_d2.clamp(min=0), 0.0).sqrt()
        # the inputs' float32 rounding and the centring move each vector by a few float32 units of its norm
        slack = c_norm + self.c_max
        if self.inputs_rounded:
            slack = slack + torch.linalg.vector_norm(q32, dim=1).double() + self.x_max
        return cand, lower - 4 * self.u32 * slack - 1e-30
