"""Walking in the latent space (paper Figs. 4 and 8) and how smooth the walk is.

Radford et al. (section 6.1): interpolations between random points of Z with
smooth transitions argue that G learned relevant representations; "sharp
transitions" would be a sign of memorization. This module gives

- the paths: :func:`lerp`, :func:`slerp` (direction on the great circle, norm
  interpolated linearly: suits normal z, whose samples sit near a sphere; lerp
  cuts through the low-norm middle) and :func:`interpolate`, which clamps to
  [-1, 1] for the paper's uniform z; :func:`random_walk_paths` (Fig. 4: a walk
  through a series of ``rows + 1`` seeded random points, sample ``k`` of a seed
  being :func:`gan_probe.sampling.latents` ``(config, seed, k, 1)``) and
  :func:`turn_paths` (Fig. 8: between two averaged exemplar sets, and the same
  "turn" vector added to other samples);
- :func:`path_smoothness`: the distance between consecutive frames in a feature
  space, normalised by the endpoint distance, its largest single jump, and the
  **sharp-transition rule** (:class:`SharpRule`): a path has a sharp transition
  when its largest step is at least ``min_jump`` (0.1) of the endpoint distance
  AND it does not shrink when looked at more closely: cutting that step's
  stretch of the path into ``refine`` (8) sub-steps, ``levels`` (2) times over
  (each time the largest sub-step), the final sub-step, 1/64 of the original
  step, still carries at least ``abrupt`` (half) of the original step's distance.
  A continuous change spreads out under the zoom (a smooth one to about 1/64);
  a jump between memorised images does not;
- :func:`perceptual_path_length`: an offline variant of Karras et al.'s PPL,
  E[ ||phi(G(z_t)) - phi(G(z_t+eps))||^2 / eps^2 ], eps = 1e-4, t ~ U(0, 1),
  values outside the 1st-99th percentile dropped, with phi a gan-probe feature
  space (pixels, disc, inception). Not LPIPS: **not comparable with published
  PPL numbers**.

Every function takes G as a module and puts it in eval mode (BatchNorm running
statistics: a frame never depends on the batch it was decoded in).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from gan_probe.device import exact_float32
from gan_probe.errors import GanProbeError
from gan_probe.models import DCGANConfig, sample_z
from gan_probe.sampling import derive_seed, latents

MODES = ("auto", "lerp", "slerp")
PPL_EPSILON = 1e-4
_PPL_STREAM = 0x70706C  # "ppl": keeps PPL's latents apart from the sheet's


# ---------------------------------------------------------------- paths in Z
def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) z0 + t z1; ``t`` of shape (..., 1) broadcasts against z (..., nz)."""
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: the direction moves along the great circle at a
    constant angular speed, the norm goes linearly from |z0| to |z1| (so equal
    norms stay equal all along). Falls back to lerp where the two directions are
    (anti)parallel and the great circle is undefined."""
    n0 = z0.norm(dim=-1, keepdim=True)
    n1 = z1.norm(dim=-1, keepdim=True)
    u0 = z0 / n0.clamp_min(1e-12)
    u1 = z1 / n1.clamp_min(1e-12)
    omega = torch.arccos((u0 * u1).sum(-1, keepdim=True).clamp(-1, 1))
    sin_omega = torch.sin(omega)
    ok = (sin_omega > 1e-4) & (n0 > 0) & (n1 > 0)
    safe = torch.where(ok, sin_omega, torch.ones_like(sin_omega))
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / safe
    spherical = ((1 - t) * n0 + t * n1) * direction
    return torch.where(ok, spherical, lerp(z0, z1, t))


def resolve_mode(mode: str, config: DCGANConfig) -> str:
    """``auto``: slerp for normal z, lerp for uniform z (the cube is convex, lerp stays in it)."""
    if mode not in MODES:
        raise GanProbeError(f"unknown interpolation mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "auto":
        return "slerp" if config.z_dist == "normal" else "lerp"
    return mode


def interpolate(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, mode: str, z_dist: str) -> torch.Tensor:
    """Points of the path at ``t`` (shape (..., 1)); clamped to [-1, 1] for uniform z,
    the support of the prior G was trained on."""
    t = t.to(z0.dtype)
    z = slerp(z0, z1, t) if mode == "slerp" else lerp(z0, z1, t)
    return z.clamp(-1, 1) if z_dist == "uniform" else z


@dataclass
class WalkPath:
    """One row of a walk: from ``start`` to ``end`` (each nz floats) by ``mode``."""

    label: str
    start: torch.Tensor
    end: torch.Tensor
    mode: str

    def at(self, t: torch.Tensor, z_dist: str) -> torch.Tensor:
        """z at path parameters ``t`` (1-d, 0 = start, 1 = end): len(t) x nz."""
        return interpolate(self.start, self.end, t.reshape(-1, 1), self.mode, z_dist)

    def to_dict(self) -> dict:
        return {"label": self.label, "mode": self.mode, "start": self.start.tolist(), "end": self.end.tolist()}

    @classmethod
    def from_dict(cls, d: dict, nz: int) -> "WalkPath":
        try:
            start = torch.tensor(d["start"], dtype=torch.float32)
            end = torch.tensor(d["end"], dtype=torch.float32)
            path = cls(str(d["label"]), start, end, str(d["mode"]))
        except (KeyError, TypeError, ValueError) as e:
            raise GanProbeError(f"a recorded path is malformed ({type(e).__name__}: {e})") from e
        if start.shape != (nz,) or end.shape != (nz,):
            raise GanProbeError(f"a recorded path's endpoints are not {nz}-d latents (this checkpoint's nz)")
        if path.mode not in ("lerp", "slerp"):
            raise GanProbeError(f"a recorded path has an unknown mode {path.mode!r}")
        return path


def frame_times(steps: int) -> torch.Tensor:
    if steps < 2:
        raise GanProbeError(f"a walk needs at least 2 steps (its two endpoints), got {steps}")
    return torch.linspace(0, 1, steps, dtype=torch.float64)


def random_walk_paths(config: DCGANConfig, seed: int, rows: int, mode: str) -> list[WalkPath]:
    """Fig. 4: row k goes from sample #k to sample #k+1 of ``seed``; read row by row,
    the grid is one walk through a series of ``rows + 1`` random points."""
    if rows < 1:
        raise GanProbeError(f"rows must be at least 1, got {rows}", param="rows")
    points = latents(config, seed, 0, rows + 1)
    return [WalkPath(f"#{k} -> #{k + 1}", points[k], points[k + 1], mode) for k in range(rows)]


def mean_latent(config: DCGANConfig, seed: int, indices: list[int]) -> torch.Tensor:
    """The average z of samples ``indices`` of ``seed`` (the paper averages 3 exemplars)."""
    if not indices:
        raise GanProbeError("an exemplar set is empty: give at least one sample index")
    return torch.stack([latents(config, seed, i, 1)[0] for i in indices]).mean(0)


def turn_paths(config: DCGANConfig, seed: int, from_indices: list[int], to_indices: list[int],
               rows: int, mode: str) -> list[WalkPath]:
    """Fig. 8: the first row walks from the averaged ``from`` exemplars to the averaged
    ``to`` exemplars; then ``rows`` rows add the same "turn" vector v = to - from to
    samples #0.. #rows-1 of ``seed``, walking z - v/2 -> z + v/2 (vector addition: lerp)."""
    a = mean_latent(config, seed, from_indices)
    b = mean_latent(config, seed, to_indices)
    v = b - a
    label_a = "mean(" + ",".join(map(str, from_indices)) + ")"
    label_b = "mean(" + ",".join(map(str, to_indices)) + ")"
    paths = [WalkPath(f"{label_a} -> {label_b}", a, b, mode)]
    bases = latents(config, seed, 0, rows) if rows > 0 else torch.empty(0, config.nz)
    for k, z in enumerate(bases):
        paths.append(WalkPath(f"#{k} - v/2 -> #{k} + v/2", z - v / 2, z + v / 2, "lerp"))
    return paths


# ---------------------------------------------------------------- decoding
def _device_of(g: torch.nn.Module) -> torch.device:
    p = next(iter(g.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.inference_mode()
def decode(g: torch.nn.Module, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z) in eval mode, in batches, in exact float32 (no TF32: PPL divides by eps^2):
    N x C x H x W float CPU images."""
    g.eval()
    device = _device_of(g)
    with exact_float32():
        outs = [g(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(outs)


def walk_frames(g: torch.nn.Module, paths: list[WalkPath], steps: int, z_dist: str,
                batch_size: int = 256) -> torch.Tensor:
    """rows x steps x C x H x W: frame j of row r is G(path_r(j / (steps - 1)))."""
    t = frame_times(steps)
    z = torch.cat([p.at(t, z_dist) for p in paths])
    images = decode(g, z, batch_size)
    return images.reshape(len(paths), steps, *images.shape[1:])


# ---------------------------------------------------------------- smoothness
FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # [-1, 1] images -> N x dim (a FeatureSpace)


@dataclass(frozen=True)
class SharpRule:
    """When a path's largest step counts as a "sharp transition" (see the module doc)."""

    min_jump: float = 0.1  # the step, as a fraction of the endpoint distance, must be at least this
    refine: int = 8  # sub-steps each zoom level cuts the step into
    levels: int = 2  # zoom levels (8 x 8 = 64 times finer)
    abrupt: float = 0.5  # the finest sub-step must keep this fraction of the step's distance

    def to_dict(self) -> dict:
        return asdict(self)


def step_distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between consecutive rows (frames) of a T x dim matrix."""
    features = features.double()
    return (features[1:] - features[:-1]).norm(dim=1)


def _zoom_ratio(g: torch.nn.Module, space: FeatureFn, path: WalkPath, lo: float, hi: float, step: float,
                z_dist: str, rule: SharpRule, batch_size: int) -> float:
    """The distance of the largest sub-step after ``rule.levels`` zooms into [lo, hi],
    as a fraction of ``step`` (the distance across [lo, hi])."""
    finest = step
    for _ in range(rule.levels):
        t = torch.linspace(lo, hi, rule.refine + 1, dtype=torch.float64)
        d = step_distances(space(decode(g, path.at(t, z_dist), batch_size)))
        k = int(torch.argmax(d))
        lo, hi, finest = float(t[k]), float(t[k + 1]), float(d[k])
    return finest / step if step > 0 else 0.0


def path_smoothness(g: torch.nn.Module, space: FeatureFn, path: WalkPath, frames: torch.Tensor, z_dist: str,
                    rule: SharpRule = SharpRule(), batch_size: int = 256) -> dict:
    """How smoothly one path's ``frames`` (T x C x H x W, t evenly spaced) change in ``space``.

    ``steps``: consecutive-frame distances / endpoint distance (a straight, even walk
    in feature space gives 1/(T-1) each); ``max_jump``: the largest of them (None when
    the endpoints coincide); ``length_ratio``: their sum (1 = a straight line);
    ``zoom_ratio``/``sharp``: the rule of :class:`SharpRule`.
    """
    features = space(frames).double()
    d = step_distances(features)
    ends = float((features[-1] - features[0]).norm())
    k = int(torch.argmax(d))
    largest = float(d[k])
    if ends > 0:
        steps = (d / ends).tolist()
        max_jump: float | None = largest / ends
    else:
        steps, max_jump = None, (None if largest > 0 else 0.0)
    big_enough = largest > 0 and (max_jump is None or max_jump >= rule.min_jump)
    t = frame_times(len(frames))
    zoom = (_zoom_ratio(g, space, path, float(t[k]), float(t[k + 1]), largest, z_dist, rule, batch_size)
            if big_enough else None)
    return {
        "label": path.label,
        "endpoint_distance": ends,
        "steps": steps,
        "max_jump": max_jump,
        "max_jump_step": k,
        "length_ratio": float(d.sum()) / ends if ends > 0 else None,
        "zoom_ratio": zoom,
        "sharp": bool(zoom is not None and zoom >= rule.abrupt),
    }


def walk_smoothness(g: torch.nn.Module, spaces: dict[str, FeatureFn], paths: list[WalkPath], frames: torch.Tensor,
                    z_dist: str, rule: SharpRule = SharpRule(), batch_size: int = 256, progress: bool = False) -> dict:
    """:func:`path_smoothness` of every path in every feature space, with a per-space tally."""
    from gan_probe.progress import progress_bar

    out = {}
    for name, space in spaces.items():
        with progress_bar(len(paths), f"walk smoothness ({name}), paths", progress) as advance:
            per_path = []
            for p, f in zip(paths, frames):
                per_path.append(path_smoothness(g, space, p, f, z_dist, rule, batch_size))
                advance(1)
        jumps = [r["max_jump"] for r in per_path if r["max_jump"] is not None]
        out[name] = {
            "paths": per_path,
            "sharp_paths": [i for i, r in enumerate(per_path) if r["sharp"]],
            "largest_jump": max(jumps) if jumps else None,
            "mean_max_jump": float(np.mean(jumps)) if jumps else None,
        }
    return out


# ---------------------------------------------------------------- offline PPL
def ppl_latents(config: DCGANConfig, seed: int, n: int, mode: str,
                eps: float = PPL_EPSILON) -> tuple[torch.Tensor, torch.Tensor]:
    """The n pairs (z_t, z_t+eps): z0, z1 from the prior, t ~ U(0, 1), all from ``seed``."""
    g = torch.Generator().manual_seed(derive_seed(seed, _PPL_STREAM))
    z0 = sample_z(config, n, g).double()
    z1 = sample_z(config, n, g).double()
    t = torch.rand(n, 1, generator=g, dtype=torch.float64)
    za = interpolate(z0, z1, t, mode, config.z_dist)
    zb = interpolate(z0, z1, t + eps, mode, config.z_dist)
    return za.float(), zb.float()


def trimmed_mean(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> float:
    """Mean of the values between the ``low`` and ``high`` percentiles (inclusive)."""
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return float(values[(values >= lo) & (values <= hi)].mean())


def perceptual_path_length(g: torch.nn.Module, config: DCGANConfig, spaces: dict[str, FeatureFn], seed: int,
                           n: int = 1000, mode: str = "lerp", eps: float = PPL_EPSILON,
                           batch_size: int = 256, progress: bool = False) -> dict:
    """Offline PPL per feature space (see the module doc): one number each, NOT comparable
    with LPIPS-based PPL."""
    from gan_probe.progress import progress_bar

    if n < 2:
        raise GanProbeError(f"the path-length estimate needs at least 2 samples, got {n}")
    za, zb = ppl_latents(config, seed, n, mode, eps)
    dists: dict[str, list[np.ndarray]] = {name: [] for name in spaces}
    with progress_bar(n, f"path length ({', '.join(spaces)}), pairs", progress) as advance:
        for i in range(0, n, batch_size):
            xa = decode(g, za[i:i + batch_size], batch_size)
            xb = decode(g, zb[i:i + batch_size], batch_size)
            for name, space in spaces.items():
                diff = space(xa).double() - space(xb).double()
                dists[name].append((diff.pow(2).sum(1) / eps**2).numpy())
            advance(len(xa))
    return {name: {"value": trimmed_mean(np.concatenate(d)), "n": n, "epsilon": eps, "mode": mode,
                   "distance": f"squared L2 in {name} features",
                   "note": "offline variant: not LPIPS, not comparable with published PPL"}
            for name, d in dists.items()}


def load_feature_spaces(names: str, checkpoint, device) -> tuple[dict, dict]:
    """``auto`` = pixels, disc, and inception when its weights load; else a comma list
    whose every space must load. Returns (spaces, {name: why skipped})."""
    from gan_probe.features import get_feature_space

    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise GanProbeError("features is empty: give auto or a comma list such as pixels,disc", param="features")
    optional = set()
    spaces, skipped = {}, {}
    if wanted == ["auto"]:
        wanted, optional = ["pixels", "disc", "inception"], {"inception"}
        from gan_probe.models.sources import is_foreign

        if is_foreign(checkpoint):  # a user's G (TorchScript, card, pickle) comes without its D
            wanted.remove("disc")
            skipped["disc"] = f"{checkpoint} is a generator alone, with no discriminator to read features from"
    for name in dict.fromkeys(wanted):
        try:
            spaces[name] = get_feature_space(name, checkpoint=checkpoint, device=device)
        except (GanProbeError, ImportError, OSError) as e:
            why = ("not part of this installation" if isinstance(e, ImportError)
                   else " ".join(str(e).split()) or type(e).__name__)
            if name not in optional:
                raise GanProbeError(f"feature space {name!r} is not available: {why}") from e
            skipped[name] = why
    return spaces, skipped
