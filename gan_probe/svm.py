"""Linear L2-SVM: the classifier of the paper's representation experiments.

One-vs-rest, squared hinge loss, L2 penalty, with an intercept: for each class
k (labels y in {-1, +1}) it minimises, exactly as scikit-learn's ``LinearSVC``
defaults (liblinear, ``intercept_scaling=1``) do,

    f(w, b) = 0.5 * (||w||^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

i.e. the intercept is the weight of a constant feature 1 and is regularised
like every other weight (liblinear's convention, kept so both solvers solve the
same problem and give the same predictions).

Two solvers:

- ``sklearn``: ``LinearSVC(C=C, tol=tol)`` (the authors' classifier, the reference);
- ``torch``: a full-batch truncated Newton method on the primal, all classes at
  once (the generalised Hessian of the squared hinge is ``I + 2C X_A^T X_A`` over
  the active margins A; each Newton step is solved by conjugate gradients with
  one product by ``X`` and one by ``X^T`` per iteration, then a backtracking line
  search that needs no further products). It runs on the CPU or a GPU and
  streams the feature matrix in row chunks, so a float16 memory map of
  50,000 x 28,672 features never has to be copied whole into float32.

``auto`` picks ``torch`` (faster on the CPU, see ``benchmarks/svm_speed.py``, and
the only one that runs on a GPU or streams).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from gan_probe.device import exact_float32, float64_device
from gan_probe.errors import GanProbeError

SOLVERS = ("auto", "sklearn", "torch")
DEFAULT_CHUNK_BYTES = 512 << 20  # float32 working chunk of the feature matrix


def _shareable(a: np.ndarray) -> np.ndarray:
    """A contiguous array torch can share; a read-only memory map (the feature cache) is copied."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


@dataclass
class LinearModel:
    """Weights ``coef`` (K x D) and ``intercept`` (K) of a one-vs-rest linear classifier,
    on features standardised by ``(x - shift) / scale`` when those are set."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None
    iterations: int = 0
    # the torch solver's state, for a warm start of the next fit (``fit_linear_svm(warm_start=...)``)
    warm: "_WarmState | None" = field(default=None, repr=False, compare=False)

    def decision_function(self, x: np.ndarray, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> np.ndarray:
        out = np.empty((len(x), len(self.classes)), dtype=np.float64)
        w = self.coef.T.astype(np.float64)
        for start, stop in row_chunks(len(x), x.shape[1], chunk_bytes // 2):
            xc = np.asarray(x[start:stop], dtype=np.float64)
            if self.shift is not None:
                xc = (xc - self.shift) / self.scale
            out[start:stop] = xc @ w + self.intercept
        return out

    def predict(self, x: np.ndarray, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> np.ndarray:
        scores = self.decision_function(x, chunk_bytes)
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            return self.classes[(scores[:, 0] > 0).astype(int)]
        return self.classes[scores.argmax(1)]


def row_chunks(n: int, dim: int, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges whose float32 copy stays within ``chunk_bytes``."""
    rows = max(1, int(chunk_bytes // max(1, 4 * dim)))
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def standardization(x: np.ndarray, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (float64, streamed); a constant feature gets scale 1."""
    n, dim = x.shape
    s = np.zeros(dim)
    ss = np.zeros(dim)
    for start, stop in row_chunks(n, dim, chunk_bytes):
        xc = np.asarray(x[start:stop], dtype=np.float64)
        s += xc.sum(0)
        ss += (xc * xc).sum(0)
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean**2, 0.0))
    std[std < 1e-12] = 1.0
    return mean, std


def fit_linear_svm(x: np.ndarray, y: np.ndarray, C: float, *, solver: str = "auto",
                   device: str | torch.device = "cpu", tol: float = 1e-4, max_iter: int = 1000,
                   shift: np.ndarray | None = None, scale: np.ndarray | None = None,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES, warm_start: LinearModel | None = None) -> LinearModel:
    """Train a one-vs-rest L2-SVM on rows ``x`` (N x D, any float dtype, may be a memmap) and
    integer labels ``y``. ``shift``/``scale`` standardise the features on the fly.

    ``warm_start``: a model fitted before (torch solver) on the same classes and features, e.g. at
    the previous C of a grid (small to large) or on another label draw. The fit starts from its
    weights and stops by the same rule as a cold fit (relative to the gradient at zero), so it
    reaches the same optimum to the solver's tolerance, in fewer steps. Given the very same
    ``x`` object and labels (a C grid on one draw), it also reuses the rows' Gram matrix. The
    sklearn solver ignores it."""
    solver = resolve_solver(solver)
    if not C > 0:
        raise GanProbeError(f"C must be > 0, got {C}", param="C")
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise GanProbeError("an SVM needs labels of at least two classes")
    if len(x) != len(y):
        raise GanProbeError(f"{len(x)} feature rows but {len(y)} labels")
    if solver == "sklearn":
        return _fit_sklearn(x, y, classes, C, tol, max_iter, shift, scale)
    # IEEE float32 products (no TF32); the span solver's float64 Gram matrix needs a float64 device (not MPS)
    with exact_float32():
        return _fit_torch(x, y, classes, C, float64_device(device), tol, max_iter, shift, scale, chunk_bytes,
                          warm_start)


def _fit_sklearn(x, y, classes, C, tol, max_iter, shift, scale) -> LinearModel:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    xs = np.asarray(x, dtype=np.float64)
    if shift is not None:
        xs = (xs - shift) / scale
    clf = LinearSVC(C=C, tol=tol, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(xs, y)
    return LinearModel(clf.coef_.copy(), clf.intercept_.copy(), classes, shift, scale,
                       int(np.max(clf.n_iter_)))


class _Rows:
    """The design matrix [x, 1] (optionally standardised), multiplied chunk by chunk on ``device``.

    A streamed chunk is converted into one reused float32 buffer (a fresh allocation per chunk
    costs more than the conversion); products by ``X^T`` are taken as ``(u^T X)^T``, which MKL
    runs several times faster than ``X^T u`` for the few-column ``u`` of a one-vs-rest fit."""

    def __init__(self, x, shift, scale, device, chunk_bytes, resident: bool | None = None):
        self.x, self.device = x, device
        self.n, self.dim = x.shape
        self.ranges = list(row_chunks(self.n, self.dim, chunk_bytes))
        self.shift = None if shift is None else torch.as_tensor(shift, dtype=torch.float32, device=device)
        self.scale = None if scale is None else torch.as_tensor(scale, dtype=torch.float32, device=device)
        if resident is None:  # on a GPU, upload the stored (e.g. float16) matrix once if it fits easily
            resident = device.type == "cuda" and x.nbytes < 0.4 * torch.cuda.mem_get_info(device)[0]
        self.stored = torch.as_tensor(_shareable(x)).to(device) if resident else None
        self._buffers: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        # keep it all on the device in float32 when one chunk holds everything (the usual case)
        self.whole = self._load(0, self.n, slot=-1) if len(self.ranges) == 1 else None

    def _buffer(self, slot: int, rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if slot not in self._buffers:
            size = max(b - a for a, b in self.ranges)
            stage = None  # a stored-dtype staging buffer: memory map -> stage (a copy) -> float32 buffer
            if self.stored is None and self.device.type == "cpu" and np.dtype(self.x.dtype) != np.float32:
                stage = torch.empty(size, self.dim, dtype=torch.from_numpy(np.empty(0, self.x.dtype)).dtype)
            self._buffers[slot] = torch.empty(size, self.dim, dtype=torch.float32, device=self.device), stage
        buf, stage = self._buffers[slot]
        return buf[:rows], None if stage is None else stage[:rows]

    def _load(self, start: int, stop: int, slot: int = 0) -> torch.Tensor:
        if slot < 0:  # a tensor of its own (kept)
            xc = (self.stored[start:stop].float() if self.stored is not None else
                  torch.as_tensor(_shareable(self.x[start:stop])).to(self.device, torch.float32))
        else:
            xc, stage = self._buffer(slot, stop - start)
            if self.stored is not None:
                xc.copy_(self.stored[start:stop])
            elif stage is not None:
                np.copyto(stage.numpy(), self.x[start:stop])
                xc.copy_(stage)
            else:
                xc.copy_(torch.as_tensor(_shareable(self.x[start:stop])))
        if self.shift is not None:
            xc.sub_(self.shift).div_(self.scale)
        return xc

    def chunks(self, slot: int = 0) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(start, stop, float32 rows); a streamed chunk lives in buffer ``slot`` until the next one."""
        if self.whole is not None:
            yield 0, self.n, self.whole
            return
        for start, stop in self.ranges:
            yield start, stop, self._load(start, stop, slot)

    def matmul(self, v: torch.Tensor) -> torch.Tensor:
        """[x, 1] @ v for v of shape (D + 1) x K."""
        out = torch.empty(self.n, v.shape[1], dtype=v.dtype, device=v.device)
        for start, stop, xc in self.chunks():
            torch.addmm(v[-1], xc, v[:-1], out=out[start:stop])
        return out

    def rmatmul(self, u: torch.Tensor) -> torch.Tensor:
        """[x, 1]^T @ u for u of shape N x K."""
        out_t = torch.zeros(u.shape[1], self.dim + 1, dtype=u.dtype, device=u.device)
        for start, stop, xc in self.chunks():
            out_t[:, :-1].addmm_(u[start:stop].T, xc)
        out_t[:, -1] = u.sum(0)
        return out_t.T

    def hessian_product(self, p: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """[x, 1]^T diag(weights) [x, 1] p column by column (weights N x K), one pass over the rows."""
        out_t = torch.zeros(p.shape[1], self.dim + 1, dtype=p.dtype, device=p.device)
        for start, stop, xc in self.chunks():
            z = torch.addmm(p[-1], xc, p[:-1]).mul_(weights[start:stop])
            out_t[:, :-1].addmm_(z.T, xc)
            out_t[:, -1] += z.sum(0)
        return out_t.T


KERNEL_MAX_ROWS = 2048  # at most this many rows (and fewer than features): Newton in the span of the rows


def one_vs_rest_targets(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """N x K targets in {-1, +1}, column k for "is class k"; two classes give one column
    (+1 = ``classes[1]``), one classifier, as liblinear."""
    y = np.asarray(y)
    if len(classes) == 2:
        return np.where(y == classes[1], 1.0, -1.0)[:, None]
    return np.where(y[:, None] == classes[None, :], 1.0, -1.0)


@dataclass
class _WarmState:
    """What a later fit on the same rows can reuse: the rows (by identity) and labels, the span
    solver's Gram matrix, coefficients beta and scores K beta, and ||[X, 1]^T t|| per class."""

    x: object
    y: np.ndarray
    shift: object
    scale: object
    t_norm: torch.Tensor  # ||[X, 1]^T t|| per column: ||grad f(0)|| = 2C t_norm
    gram: torch.Tensor | None = None
    beta: torch.Tensor | None = None
    out: torch.Tensor | None = None
    rows: "_Rows | None" = None  # the span solver's float32 rows, for w = [X, 1]^T beta

    def same_rows(self, x, y, shift, scale) -> bool:
        return (self.x is x and self.shift is shift and self.scale is scale and len(self.y) == len(y)
                and bool(np.array_equal(self.y, y)))


def _fit_torch(x, y, classes, C, device, tol, max_iter, shift, scale, chunk_bytes, warm_start=None) -> LinearModel:
    warm = None
    if warm_start is not None:
        if not np.array_equal(warm_start.classes, classes) or warm_start.coef.shape[1] != x.shape[1]:
            raise GanProbeError("warm_start was fitted on other classes or another feature dimension",
                                param="warm_start")
        warm = warm_start.warm if warm_start.warm is not None and warm_start.warm.same_rows(x, y, shift, scale) \
            else None
    if warm is not None and warm.gram is not None:
        return _fit_torch_span(None, x, y, classes, C, device, tol, max_iter, shift, scale, warm)
    rows = _Rows(x, shift, scale, device, chunk_bytes)
    if rows.n <= min(rows.dim, KERNEL_MAX_ROWS):
        return _fit_torch_span(rows, x, y, classes, C, device, tol, max_iter, shift, scale, None)
    return _fit_torch_primal(rows, x, y, classes, C, device, tol, max_iter, shift, scale, warm_start, warm)


GRAM_BLOCK_ROWS = 512


def _gram(rows: "_Rows", device) -> torch.Tensor:
    """K = [X, 1] [X, 1]^T (float64), each block pair once (K is symmetric)."""
    n = rows.n
    gram = torch.empty(n, n, dtype=torch.float64, device=device)
    if rows.whole is not None:
        blocks = [(a, min(n, a + GRAM_BLOCK_ROWS), rows.whole[a:a + GRAM_BLOCK_ROWS])
                  for a in range(0, n, GRAM_BLOCK_ROWS)]
        pairs = ((b1, b2) for i, b1 in enumerate(blocks) for b2 in blocks[i:])
    else:
        def streamed():
            for i, (start, stop, xc) in enumerate(rows.chunks(0)):
                for s2, e2 in rows.ranges[i:]:
                    yield (start, stop, xc), (s2, e2, rows._load(s2, e2, slot=1) if s2 != start else xc)
        pairs = streamed()
    for (a1, e1, x1), (a2, e2, x2) in pairs:
        block = (x1 @ x2.T).double()
        gram[a1:e1, a2:e2] = block
        if a2 != a1:
            gram[a2:e2, a1:e1] = block.T
    gram += 1.0  # the constant feature of the intercept
    return gram


def _fit_torch_span(rows: "_Rows | None", x, y, classes, C, device, tol, max_iter, shift, scale,
                    warm: _WarmState | None) -> LinearModel:
    """Few rows, many features (the usual few-labels case): the optimum lies in the span of the
    rows [x_i, 1], so write w = X^T beta and take exact Newton steps on beta with the n x n Gram
    matrix K = X X^T (float64): each step solves (I + 2C K_AA) on the active margins A only.
    The scores are ``out = K beta``; a Newton step needs two products by K."""
    t = torch.as_tensor(one_vs_rest_targets(y, classes), dtype=torch.float64, device=device)
    if warm is not None:  # the same rows at another C: reuse K and start from the last beta
        gram, rows = warm.gram, warm.rows
        beta, out, t_norm = warm.beta.clone(), warm.out.clone(), warm.t_norm
    else:
        gram = _gram(rows, device)
        beta = torch.zeros_like(t)
        out = torch.zeros_like(t)
        t_norm = torch.sqrt(torch.clamp((t * (gram @ t)).sum(0), min=0))
    n = len(t)
    slack = torch.clamp(1 - t * out, min=0)
    f = 0.5 * (beta * out).sum(0) + C * (slack * slack).sum(0)
    g = beta - 2 * C * t * slack  # gradient in w-space is X^T g; its norm^2 is g^T K g
    gnorm = torch.sqrt(torch.clamp((g * (out - 2 * C * (gram @ (t * slack)))).sum(0), min=0))
    npos = (t > 0).sum(0).double()
    eps = tol * torch.minimum(npos, n - npos).clamp(min=1) / n * (2 * C * t_norm)  # ||grad f(0)|| = 2C t_norm
    it = 0
    for it in range(1, max_iter + 1):
        todo = gnorm > eps
        if not bool(todo.any()):
            it -= 1
            break
        delta = torch.zeros_like(beta)
        active = slack > 0
        # classes with the same active margins share one Cholesky factor of I + 2C K_AA (SPD);
        # with strong regularisation every margin is active and all classes share it
        groups: dict[bytes, list[int]] = {}
        for j in torch.nonzero(todo).flatten().tolist():
            groups.setdefault(active[:, j].cpu().numpy().tobytes(), []).append(j)
        for js in groups.values():
            a = active[:, js[0]]
            dj = -g[:, js]  # inactive rows: delta_i = -g_i
            if bool(a.any()):
                ia = torch.nonzero(a).flatten()
                ii = torch.nonzero(~a).flatten()
                k_a = gram if len(ia) == n else gram[ia]
                rhs = dj[ia]
                if len(ii):
                    rhs = rhs - 2 * C * (k_a[:, ii] @ dj[ii])
                m = (k_a if len(ia) == n else k_a[:, ia]) * (2 * C)
                m.diagonal().add_(1.0)
                dj[ia] = torch.cholesky_solve(rhs, torch.linalg.cholesky(m))
            delta[:, js] = dj
        z = gram @ delta
        # w-space inner products through K: <w, w> = beta^T K beta = <beta, out>, <w, d>, <d, d>,
        # and the slope <grad_w, d_w> = g^T K delta
        step = armijo_step(f, (g * z).sum(0), (beta * out).sum(0), (delta * out).sum(0), (delta * z).sum(0),
                           out, z, t, C)
        f_old = f
        beta = beta + step * delta
        out = out + step * z
        slack = torch.clamp(1 - t * out, min=0)
        f = 0.5 * (beta * out).sum(0) + C * (slack * slack).sum(0)
        g = beta - 2 * C * t * slack
        gnorm = torch.sqrt(torch.clamp((g * (out - 2 * C * (gram @ (t * slack)))).sum(0), min=0))
        if bool((f_old - f <= 1e-14 * f.abs()).all()):
            break  # no progress left at float64 precision
    w = rows.rmatmul(beta.float()).double()  # (D + 1) x K
    state = _WarmState(x, np.asarray(y).copy(), shift, scale, t_norm, gram, beta, out, rows)
    return LinearModel(w[:-1].T.cpu().numpy(), w[-1].cpu().numpy(), classes, shift, scale, it, state)


def _fit_torch_primal(rows: "_Rows", x, y, classes, C, device, tol, max_iter, shift, scale,
                      warm_start: LinearModel | None, warm: _WarmState | None) -> LinearModel:
    t = torch.as_tensor(one_vs_rest_targets(y, classes), dtype=torch.float32, device=device)
    k = t.shape[1]
    # liblinear's primal stopping rule: ||grad|| <= tol * min(#pos, #neg) / N * ||grad at 0||,
    # and ||grad f(0)|| = 2C ||[X, 1]^T t|| (kept in the state for more fits on the same rows)
    t_norm = warm.t_norm if warm is not None else None
    if warm_start is not None:
        w = torch.as_tensor(np.c_[warm_start.coef, warm_start.intercept].T, dtype=torch.float32,
                            device=device).contiguous()
        out = rows.matmul(w)  # N x K scores
    else:
        w = torch.zeros(rows.dim + 1, k, dtype=torch.float32, device=device)
        out = torch.zeros(rows.n, k, dtype=torch.float32, device=device)

    def objective_parts(w, out):
        slack = torch.clamp(1 - t * out, min=0)
        return 0.5 * (w * w).sum(0) + C * (slack * slack).sum(0), slack

    f, slack = objective_parts(w, out)
    grad = w - 2 * C * rows.rmatmul(t * slack)
    if t_norm is None:
        t_norm = grad.norm(dim=0) / (2 * C) if warm_start is None else rows.rmatmul(t).norm(dim=0)
    npos = (t > 0).sum(0).float()
    eps = tol * torch.minimum(npos, len(y) - npos).clamp(min=1) / len(y) * (2 * C * t_norm)
    it = 0
    for it in range(1, max_iter + 1):
        gnorm = grad.norm(dim=0)
        todo = gnorm > eps
        if not bool(todo.any()):
            it -= 1
            break
        active = (slack > 0).float()
        d = _newton_direction(rows, grad, active, C, todo, cg_tol=0.1)
        z = rows.matmul(d)
        f_old = f
        w, out, f, slack = _line_search(w, out, f, grad, d, z, t, C)
        grad = w - 2 * C * rows.rmatmul(t * slack)
        if bool((f_old - f <= 1e-7 * f.abs()).all()):
            break  # no progress left at float32 precision
    coef = w[:-1].T.double().cpu().numpy()
    intercept = w[-1].double().cpu().numpy()
    state = _WarmState(x, np.asarray(y).copy(), shift, scale, t_norm)
    return LinearModel(coef, intercept, classes, shift, scale, it, state)


def _newton_direction(rows: _Rows, grad, active, C, todo, cg_tol: float, max_cg: int = 250):
    """Solve (I + 2C X^T diag(active) X) d = -grad by CG, every class column at once."""
    d = torch.zeros_like(grad)
    r = -grad * todo
    p = r.clone()
    rr = (r * r).sum(0)
    stop = (cg_tol * grad.norm(dim=0)) ** 2
    for _ in range(max_cg):
        live = rr > stop
        if not bool(live.any()):
            break
        hp = p + 2 * C * rows.hessian_product(p, active)
        php = (p * hp).sum(0)
        alpha = torch.where(live & (php > 0), rr / php.clamp(min=1e-30), torch.zeros_like(rr))
        d += alpha * p
        r -= alpha * hp
        rr_new = (r * r).sum(0)
        beta = torch.where(live, rr_new / rr.clamp(min=1e-30), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    return d


def armijo_step(f, slope, ww, wd, dd, out, z, t, C, shrink: float = 0.5, sigma: float = 0.01,
                max_halvings: int = 30) -> torch.Tensor:
    """Backtracking (Armijo) step length along a direction d, per class column, for the L2-SVM
    objective ``0.5 ||w||^2 + C sum_i max(0, 1 - t_i s_i)^2``. The caller gives the objective's
    quadratic part as inner products (``ww`` = <w, w>, ``wd`` = <w, d>, ``dd`` = <d, d>), the
    slope <grad, d>, the current scores ``out`` and ``z`` = [X, 1] d, so f along d needs no new
    product by X. Each column's step starts at 1 and is multiplied by ``shrink`` until
    ``f(w + step d) <= f + sigma * step * slope`` (at most ``max_halvings`` times)."""
    step = torch.ones_like(slope)
    for _ in range(max_halvings):
        slack = torch.clamp(1 - t * (out + step * z), min=0)
        f_new = 0.5 * (ww + 2 * step * wd + step * step * dd) + C * (slack * slack).sum(0)
        ok = f_new <= f + sigma * step * slope
        if bool(ok.all()):
            break
        step = torch.where(ok, step, step * shrink)
    return step


def _line_search(w, out, f, grad, d, z, t, C):
    """The primal solver's step: :func:`armijo_step`, then w, scores, f and slack at the new point."""
    step = armijo_step(f, (grad * d).sum(0), (w * w).sum(0), (w * d).sum(0), (d * d).sum(0), out, z, t, C)
    w = w + step * d
    out = out + step * z
    slack = torch.clamp(1 - t * out, min=0)
    f_new = 0.5 * (w * w).sum(0) + C * (slack * slack).sum(0)
    return w, out, f_new, slack


def primal_objective(model: LinearModel, x: np.ndarray, y: np.ndarray, C: float) -> np.ndarray:
    """The L2-SVM objective of each one-vs-rest problem at ``model``'s weights (float64)."""
    scores = model.decision_function(x)
    t = one_vs_rest_targets(y, model.classes)
    slack = np.maximum(0.0, 1 - t * scores)
    return 0.5 * ((model.coef**2).sum(1) + model.intercept**2) + C * (slack**2).sum(0)


def accuracy(model: LinearModel, x: np.ndarray, y: np.ndarray, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> float:
    return float(np.mean(model.predict(x, chunk_bytes) == np.asarray(y)))


def resolve_solver(solver: str) -> str:
    """The solver ``solver`` names (``auto`` -> ``torch``); the one check of the name."""
    if solver not in SOLVERS:
        raise GanProbeError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}", param="solver")
    return "torch" if solver == "auto" else solver


__all__ = ["LinearModel", "SOLVERS", "accuracy", "armijo_step", "fit_linear_svm", "one_vs_rest_targets",
           "primal_objective", "resolve_solver", "row_chunks", "standardization"]
