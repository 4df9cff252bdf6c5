"""Scores during training: ``gan-probe train --eval-every STEPS --eval-n N --eval-ref SOURCE``.

Every ``eval_every`` steps and at the last step, G (in eval mode, exact float32) decodes the same
``eval_n`` latents (samples ``0 .. eval_n - 1`` of the run's seed, as ``gan-probe sample`` /
``score RUN_DIR --n N --seed SEED`` draw them) and a :class:`gan_probe.Scorer` scores them
against ``eval_ref`` (its side computed once, through the statistics cache). So the last
evaluation of a run equals ``gan-probe score RUN_DIR --ref SOURCE --n N --seed SEED``.

Each evaluation adds one line to ``log.jsonl``, told apart from the training lines by
``"kind": "eval"`` (training lines have no ``kind``)::

    {"kind": "eval", "step": 500, "epoch": 5.9, "n": 1000, "ref": "digits:train", "features": "inception",
     "metrics": ["fid"], "scores": {"fid": 41.2}, "best": {"key": "fid", "value": 41.2, "step": 500,
     "improved": true, "higher_is_better": false}, "probe": {...}, "time_s": 12.3}

and ``checkpoints/best.pt`` (a full checkpoint, written atomically, with an ``eval`` entry) holds
the weights of the best evaluation by the first metric's headline value; whether lower or higher is
better comes from the metric registry (``higher_is_better``). ``checkpoints/best.json`` says which
evaluation it is; a resumed run keeps that best when the metric, reference, N, space and seed are
the same.

``probe`` (digits; on by default there when ``eval_every`` is set): the accuracy of a linear L2-SVM
on D's features (every conv layer max-pooled to 4x4, the paper's representation) with 10 labels per
class, C picked on the validation split, mean over 3 label draws, on ``digits:test``, next to the same
protocol on a randomly initialised D of the same architecture (BatchNorm statistics recomputed over
the pool, as ``classify``'s control; computed once): the paper's representation claim watched as it
forms. It reuses ``gan-probe classify``'s protocol code (:mod:`gan_probe.analysis.classify`).

Under ``torchrun`` every process samples its share of the N latents (G's BatchNorm buffers taken
from rank 0 first, as DDP does at every forward) and the Scorer gathers them, so every process takes
part and none waits on a collective the others skip; the probe runs on rank 0 while the others wait
at a barrier; rank 0 alone writes.

A stop signal (:mod:`gan_probe.preemption`) is checked between the evaluation's batches and before the
probe: the evaluation is then abandoned (nothing logged), the checkpoint records ``eval_pending``
(its step) and a resumed run evaluates that step before it trains on, so the log ends as an
uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_probe import checkpoint as ckpt
from gan_probe.distributed import Dist, barrier, shard
from gan_probe.errors import GanProbeError

EVAL_KIND = "eval"
EVAL_PENDING = "eval_pending"  # a checkpoint entry: the step whose evaluation a stop signal abandoned
BEST = "best.pt"
BEST_INFO = "best.json"
PROBE_DATASETS = ("digits",)  # where D's features are cheap enough to probe at every evaluation
# the Scorer's parameter -> the TrainConfig field a message should name
_PARAMS = {"ref": "eval_ref", "metrics": "eval_metrics", "features": "eval_features", "images": "eval_n"}


def probe_enabled(cfg) -> bool:
    """``eval_probe`` as given, else (None) on for the digits dataset when evaluations run."""
    from gan_probe.data import parse_dataset

    on_digits = parse_dataset(cfg.dataset).name in PROBE_DATASETS
    if cfg.eval_probe is None:
        return cfg.eval_every > 0 and on_digits
    if cfg.eval_probe and not on_digits:
        raise GanProbeError(f"eval_probe needs the digits dataset (D's linear probe runs on digits:test); "
                            f"the run trains on {cfg.dataset}", param="eval_probe")
    return bool(cfg.eval_probe)


def _renamed(e: GanProbeError, fallback: str) -> GanProbeError:
    """``e`` naming the training option: ``ref ...`` -> ``eval_ref ...``; a message about no parameter
    is prefixed with ``fallback``."""
    text = str(e)
    param = _PARAMS.get(e.param) if e.param else None
    if param and text.startswith(e.param):
        return GanProbeError(param + text[len(e.param):], param=param)
    if e.param and e.param.startswith("eval_"):
        return e
    if "weights" in text.lower():  # found as for `score`; train spells its flag --eval-weights
        return GanProbeError(text.replace("--inception-weights", "--eval-weights").replace("(--weights)",
                                                                                           "(--eval-weights)"))
    return GanProbeError(f"{fallback}: {text}", param=fallback)


def make_evaluator(cfg, model_cfg, d: Dist, run_dir: Path, resume: bool = False,
                   progress: bool = False) -> "Evaluator | None":
    """The evaluator of a run (None when ``eval_every`` is 0). Every option is checked here, before the
    run writes anything: the metrics are known in the space, the weights are found and the reference
    side is computed (once, through the statistics cache), so an unreadable reference fails now.
    ``progress``: show that reference pass's progress (minutes on a CPU; the evaluations themselves stay
    quiet, under the training bar)."""
    if cfg.eval_every == 0:
        given = [name for name in ("eval_ref", "eval_metrics") if getattr(cfg, name)]
        if cfg.eval_probe:
            given.append("eval_probe")
        if given:
            raise GanProbeError(f"{given[0]} needs eval_every > 0 (how many steps between evaluations)",
                                param=given[0])
        return None
    from gan_probe.metrics.score import ScoreOptions
    from gan_probe.metrics.scorer import Scorer

    probe_on = probe_enabled(cfg)
    weights = {"weights" if cfg.eval_features == "inception" else "encoder_weights": cfg.eval_weights or None}
    opts = ScoreOptions(device=str(d.device), n=cfg.eval_n, seed=cfg.seed, progress=progress,
                        num_workers=cfg.num_workers, features=cfg.eval_features, download=cfg.download,
                        data_root=cfg.data_root or None, data_download=cfg.download, **weights)
    try:
        scorer = Scorer(ref=cfg.eval_ref or None, metrics=cfg.eval_metrics or None, options=opts,
                        name=f"G (seed {cfg.seed}, n {cfg.eval_n})").prepare()  # the reference side now
    except GanProbeError as e:
        raise _renamed(e, "eval_ref") from e
    probe = None
    if probe_on and d.main:  # rank 0 alone probes
        probe = LinearProbe(model_cfg, cfg.seed, d.device, cfg.data_root or None)
    return Evaluator(cfg, model_cfg, d, run_dir, scorer, probe, resume)


class Evaluator:
    """Runs the evaluations of one training run, logs them and keeps ``best.pt``."""

    def __init__(self, cfg, model_cfg, d: Dist, run_dir: Path, scorer, probe: "LinearProbe | None", resume: bool):
        from gan_probe.metrics.registry import get_metric

        self.cfg, self.model_cfg, self.d, self.run_dir = cfg, model_cfg, d, Path(run_dir)
        self.scorer, self.probe = scorer, probe
        first = get_metric(scorer.metrics[0])
        self.key, self.higher = first.headline(), first.higher_is_better
        self.identity = {"key": self.key, "ref": cfg.eval_ref, "n": cfg.eval_n, "features": cfg.eval_features,
                         "seed": cfg.seed}
        self.best: dict[str, Any] | None = self._saved_best() if resume else None
        self._told = False

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.cfg.eval_every == 0 or step == total_steps

    def _saved_best(self) -> dict[str, Any] | None:
        """The best of the run being resumed, if it was judged the same way."""
        try:
            saved = json.loads((ckpt.checkpoint_dir(self.run_dir) / BEST_INFO).read_text())
        except (OSError, ValueError):
            return None
        same = isinstance(saved, dict) and all(saved.get(k) == v for k, v in self.identity.items())
        return saved if same and isinstance(saved.get("value"), (int, float)) else None

    @torch.no_grad()
    def sample_into_scorer(self, G: torch.nn.Module, stop=None) -> bool:
        """This process's share of the ``eval_n`` fixed latents through G (eval mode), into the Scorer.
        ``stop()`` (a stop request, the same on every process) is asked between batches; True means it
        was granted and the pass left unfinished (every process asks it equally often)."""
        from gan_probe.device import exact_float32
        from gan_probe.sampling import latents

        g = ckpt._unwrap(G)
        if self.d.world > 1:  # BatchNorm buffers as rank 0 has them (DDP broadcasts them at every forward too)
            for b in g.buffers():
                torch.distributed.broadcast(b, 0)
        was_training = g.training
        g.eval()
        self.scorer.reset()
        mine = shard(self.cfg.eval_n, self.d)
        device = next(g.parameters()).device
        batch = self.scorer.options.batch_size
        starts = range(mine.start, mine.stop, batch)
        # the most batches any process has: each asks stop() that often, so its collective matches up
        rounds = max(len(range(r.start, r.stop, batch)) for r in _all_shards(self.cfg.eval_n, self.d))
        try:
            for i in range(rounds):
                if i < len(starts):
                    start = starts[i]
                    z = latents(self.model_cfg, self.cfg.seed, start, min(batch, mine.stop - start)).to(device)
                    with exact_float32():
                        self.scorer.update(g(z).float())
                if stop is not None and i + 1 < rounds and stop():
                    return True
        finally:
            g.train(was_training)
        return False

    def evaluate(self, nets, step: int, out, *, epoch: float, train: dict, world: int, stop=None) -> dict | None:
        """One evaluation (every process calls it): the log line, and ``best.pt`` when it improved.
        ``stop``: a callable asked between the evaluation's batches and parts (the same answer on every
        process); once it is true the evaluation is abandoned, nothing is logged or written, and None is
        returned (a resumed run redoes it)."""
        t0 = time.perf_counter()
        stop = stop or (lambda: False)
        if self.sample_into_scorer(nets.G, stop) or stop():
            return None
        result = self.scorer.compute()
        scores = {k: v for k, v in result.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        record: dict[str, Any] = {"kind": EVAL_KIND, "step": step, "epoch": epoch, "n": self.cfg.eval_n,
                                  "ref": self.cfg.eval_ref or None, "features": self.cfg.eval_features,
                                  "metrics": result["metrics"], "scores": scores}
        value = scores.get(self.key)
        improved = value is not None and math.isfinite(value) and (
            self.best is None or (value > self.best["value"] if self.higher else value < self.best["value"]))
        if improved:
            self.best = {**self.identity, "value": float(value), "step": step, "higher_is_better": self.higher}
        record["best"] = {"key": self.key, "higher_is_better": self.higher, "improved": improved,
                          "value": self.best["value"] if self.best else None,
                          "step": self.best["step"] if self.best else None}
        if stop():  # before the probe (seconds of feature passes and SVM fits on rank 0)
            return None
        if self.probe is not None and self.d.main:
            record["probe"] = self.probe(nets.D)
        if not self._told:  # once per process: what the numbers were computed with
            record["protocol"] = result["protocol"]
            record["warnings"] = result["warnings"]
            self._told = True
        record["time_s"] = round(time.perf_counter() - t0, 3)
        barrier(self.d)
        if self.d.main:
            out.log(record)
            if improved:
                out.checkpoint(nets, model=self.model_cfg, train=train, step=step, epoch=int(epoch), world=world,
                               name=BEST, extra={"eval": self.best})
                from gan_probe.io import atomic_write_text

                atomic_write_text(ckpt.checkpoint_dir(self.run_dir) / BEST_INFO, json.dumps(self.best, indent=2))
        return record


def _all_shards(n: int, d: Dist) -> list[range]:
    from dataclasses import replace

    return [shard(n, replace(d, rank=r)) for r in range(d.world)]


def eval_summary(record: dict) -> str:
    """One line for the terminal after an evaluation (the full record goes to ``log.jsonl``):
    ``eval at step 100: fid 41.2 (best), kid 0.012, ...; D probe 0.83 vs random D 0.71; 14 s``."""
    from gan_probe.progress import clock

    best = record.get("best") or {}
    parts = []
    for key, value in record["scores"].items():
        if key.endswith(("_std", "_subset_size")):
            continue
        text = f"{key} {value:.4g}"
        if key == best.get("key"):
            text += " (best so far)" if best.get("improved") else f" (best {best.get('value'):.4g} at step " \
                                                                 f"{best.get('step')})"
        parts.append(text)
    line = f"eval at step {record['step']}: " + ", ".join(parts)
    probe = record.get("probe")
    if probe:
        line += f"; D probe {probe['disc']:.3f} vs random D {probe['random_disc']:.3f}"
    return line + f"; {clock(record.get('time_s', 0))}"


class LinearProbe:
    """The linear-probe accuracy of a D's features on digits (``classify``'s digits protocol with a
    small label budget), and that of a randomly initialised D, computed once."""

    def __init__(self, model_cfg, seed: int, device: torch.device, data_root=None, labels_per_class: int = 10,
                 repeats: int = 3, val_draws: int = 2):
        from gan_probe.analysis import classify as cl
        from gan_probe.analysis import classify_features as cf
        from gan_probe.data import load_dataset

        self.protocol = cl.PROTOCOLS["digits"]
        self.model_cfg, self.device = model_cfg, torch.device(device)
        size, channels = model_cfg.image_size, model_cfg.channels
        self.train_set = load_dataset(self.protocol.train, size, channels, data_root)
        self.test_set = load_dataset(self.protocol.test, size, channels, data_root)
        self.y_train, self.y_test = cf.dataset_labels(self.train_set), cf.dataset_labels(self.test_set)
        self.pool, self.validation = cl.stratified_split(np.arange(len(self.y_train)), self.y_train, cl.VAL_FRACTION)
        self.options = cl.ClassifyOptions(labels_per_class=labels_per_class, repeats=repeats, val_draws=val_draws,
                                          seed=seed, device=str(self.device), baselines=())
        self.random = self._accuracy(self._random_space(seed))

    def _random_space(self, seed: int):
        """``classify``'s ``random-disc`` control: the architecture seeded, BatchNorm statistics recomputed."""
        from gan_probe.analysis import classify_features as cf
        from gan_probe.features import get_feature_space

        space = get_feature_space("random-disc", config=self.model_cfg, seed=seed, device=self.device)
        cf.recompute_bn_statistics(space.module, space, self.train_set, batch_size=128, device=self.device)
        return space

    def _accuracy(self, space) -> dict[str, float]:
        from gan_probe.analysis import classify as cl
        from gan_probe.analysis import classify_features as cf

        sets = []
        for ds, y in ((self.train_set, self.y_train), (self.test_set, self.y_test)):
            x = np.empty((len(ds), space.dim), np.float32)
            cf.extract_into(space, ds, x, batch_size=256)
            sets.append(cf.FeatureSet(x, y))
        split = cl.Split(sets[0], self.pool, self.validation, sets[1], np.arange(len(sets[1])))
        r = cl.evaluate_protocol(split, self.protocol, self.options)
        return {"accuracy": r["accuracy"]["mean"], "std": r["accuracy"]["std"], "C": r["C"]}

    def __call__(self, D: torch.nn.Module) -> dict[str, Any]:
        """D's probe (D in eval mode: its running BatchNorm statistics, as ``classify --features disc``)
        next to the random D's."""
        from gan_probe.features import FeatureSpace, disc_features

        d = ckpt._unwrap(D)
        was_training = d.training
        d.eval()
        cfg = self.model_cfg
        space = FeatureSpace("disc", cfg.d_feature_dim, lambda x: disc_features(d, x.to(self.device)).float().cpu(),
                             cfg.image_size, cfg.channels)
        try:
            with torch.inference_mode():
                ours = self._accuracy(space)
        finally:
            d.train(was_training)
        return {"disc": ours["accuracy"], "disc_std": ours["std"], "disc_C": ours["C"],
                "random_disc": self.random["accuracy"], "random_disc_std": self.random["std"],
                "labels_per_class": self.options.labels_per_class, "repeats": self.options.repeats,
                "test": self.protocol.test}
