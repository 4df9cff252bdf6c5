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

``iter_distance_blocks`` exposes the blocked float32 distances themselves, for
counts such as "is this sample inside any real point's k-NN ball"
(precision / recall / density / coverage).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from gan_probe.errors import GanProbeError

# elements of one float32 distance block when block_size is left to us (64 MiB)
DEFAULT_BLOCK_ELEMENTS = 1 << 24
# candidates taken beyond k before the float64 re-ranking
EXTRA_CANDIDATES = 4
# largest candidate pool tried (x8 each time) before a row is searched exactly against every point
MAX_CANDIDATES = 1024
# points handled at once by the float64 fallback
_EXACT_POINT_CHUNK = 4096
# float64 values gathered at once by the re-ranking (64 MiB)
_RERANK_ELEMENTS = 1 << 23


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
    """float32 squared distances of a query block to every point (clamped at 0)."""
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
    src = torch.empty((rows * c, dim), dtype=p.dtype, device=p.device)
    buf = torch.empty((rows * c, dim), dtype=torch.float64, device=device)
    for s in range(0, n, rows):
        idx = cand[s:s + rows]
        m = idx.numel()
        torch.index_select(p, 0, idx.reshape(-1).to(p.device), out=src[:m])
        prow = buf[:m].copy_(src[:m]).view(len(idx), c, dim)
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


def knn(queries, points, k: int, *, block_size: int | None = None, device: str | torch.device = "cpu",
        exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` of every query (Euclidean).

    ``queries``: Nq x dim, ``points``: Np x dim (numpy or torch, any float or int
    dtype; float64 inputs are re-ranked at full float64 precision).
    ``exclude_self``: queries are the points themselves; query i never returns
    point i (an exact duplicate elsewhere still counts, at distance 0).
    ``block_size``: query rows per block (memory ~ block_size x Np float32).

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
    device = torch.device(device)
    bs = block_size or auto_block_size(len(p))
    if bs < 1:
        raise GanProbeError(f"block size must be >= 1, got {bs}")
    p32 = _to_f32(p, device)
    pn = _squared_norms(p32)
    ctx = _Search(p, p32, pn, k, available, device, q.shape[1])
    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), bs):
        end = min(start + bs, len(q))
        self_idx = torch.arange(start, end, device=device) if exclude_self else None
        exact, cand = ctx.search(q[start:end], self_idx)
        out_d[start:end] = exact.sqrt().cpu().numpy()
        out_i[start:end] = cand.cpu().numpy()
    return out_d, out_i


class _Search:
    """One exact search's shared state: the points (source, float32, norms) and the error margin."""

    def __init__(self, p, p32, pn, k, available, device, dim):
        self.p, self.p32, self.pn, self.k, self.available, self.device = p, p32, pn, k, available, device
        eps32 = float(np.finfo(np.float32).eps)
        # generous bound on the float32 rounding of ||x||^2 - 2x.y + ||y||^2, relative to ||x||^2 + ||y||^2
        self.rel_margin = 8.0 * eps32 * math.sqrt(dim) + 16.0 * eps32
        self.pn_max = float(pn.max())

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
        q64 = qsrc.to(device=device, dtype=torch.float64)
        exact = _candidate_sq_distances(q64, self.p, cand, device)
        if self_idx is not None:
            exact[cand == self_idx.unsqueeze(1)] = math.inf
        exact, cand = _sort_by_distance_then_index(exact, cand)
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
