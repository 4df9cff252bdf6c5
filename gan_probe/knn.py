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
(ties across the cut, many near-duplicates) are redone with exact float64
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
EXTRA_CANDIDATES = 8
# rows of the float64 fallback / re-ranking handled at once
_EXACT_POINT_CHUNK = 4096


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


def _squared_norms(x32: torch.Tensor, src: torch.Tensor, device: torch.device) -> torch.Tensor:
    """||x||^2 in float64 (from the source values), returned as float32 on ``device``."""
    out = torch.empty(len(src), dtype=torch.float32, device=device)
    for s in range(0, len(src), _EXACT_POINT_CHUNK):
        chunk = src[s:s + _EXACT_POINT_CHUNK].to(device=device, dtype=torch.float64)
        out[s:s + len(chunk)] = (chunk * chunk).sum(1).to(torch.float32)
    return out


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
    pn = _squared_norms(p32, p, device)
    for start in range(0, len(q), bs):
        end = min(start + bs, len(q))
        qsrc = q[start:end]
        qb32 = _to_f32(qsrc, device)
        qn = _squared_norms(qb32, qsrc, device)
        yield start, end, _block_sq_distances(qb32, qn, p32, pn).sqrt_()


def _exact_sq(qrows64: torch.Tensor, prows64: torch.Tensor) -> torch.Tensor:
    """Row-wise ||q_i - p_i||^2 in float64 by direct differences."""
    diff = qrows64 - prows64
    return (diff * diff).sum(-1)


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
    n_cand = min(available, k + EXTRA_CANDIDATES)
    # one more than the candidates: the first point left out bounds every point left out
    take = min(len(p), n_cand + 1)

    p32 = _to_f32(p, device)
    pn = _squared_norms(p32, p, device)
    eps32 = float(np.finfo(np.float32).eps)
    # generous bound on the float32 rounding of ||x||^2 - 2x.y + ||y||^2, relative to ||x||^2 + ||y||^2
    rel_margin = 8.0 * eps32 * math.sqrt(q.shape[1]) + 16.0 * eps32
    pn_max = float(pn.max()) if len(pn) else 0.0

    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    p_src_device = p.device
    for start in range(0, len(q), bs):
        end = min(start + bs, len(q))
        qsrc = q[start:end]
        qb32 = _to_f32(qsrc, device)
        qn = _squared_norms(qb32, qsrc, device)
        d2 = _block_sq_distances(qb32, qn, p32, pn)
        rows = torch.arange(end - start, device=device)
        if exclude_self:
            d2[rows, rows + start] = math.inf
        approx, cand = torch.topk(d2, take, dim=1, largest=False, sorted=True)
        del d2
        # (with exclude_self the inf self entry may be this one: nothing real left out)
        boundary = approx[:, n_cand] if take > n_cand else None
        cand = cand[:, :n_cand]
        # exact float64 re-ranking of the candidates
        q64 = qsrc.to(device=device, dtype=torch.float64)
        exact = torch.empty(cand.shape, dtype=torch.float64, device=device)
        for j in range(n_cand):
            prow = p[cand[:, j].to(p_src_device)].to(device=device, dtype=torch.float64)
            exact[:, j] = _exact_sq(q64, prow)
        if exclude_self:
            exact[cand == (rows + start).unsqueeze(1)] = math.inf
        exact, cand = _sort_by_distance_then_index(exact, cand)
        exact, cand = exact[:, :k], cand[:, :k]
        if boundary is not None:
            margin = rel_margin * (qn.double() + pn_max) + 1e-30
            # every point left out has true d2 >= boundary - margin; need that > k-th exact d2 (+ margin)
            unsure = ~(exact[:, -1] + 2 * margin < boundary.double())
            for r in torch.nonzero(unsure).flatten().tolist():
                e, i = _exact_row(q64[r], p, k, start + r if exclude_self else None, device)
                exact[r], cand[r] = e, i.to(cand.device)
        out_d[start:end] = exact.sqrt().cpu().numpy()
        out_i[start:end] = cand.cpu().numpy()
    return out_d, out_i
