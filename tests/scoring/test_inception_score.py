"""Inception Score: known values, the std's ddof, torch-fidelity's formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_probe.metrics.inception_score import logits_to_inception_score


def test_inception_score_uniform_is_one_and_k_classes_is_k():
    assert logits_to_inception_score(np.zeros((50, 1008)))[0] == pytest.approx(1.0)
    k = 7
    logits = np.zeros((70, 1008))
    logits[np.arange(70), np.arange(70) % k] = 1000.0  # one-hot in float64
    mean, std = logits_to_inception_score(logits)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_std_uses_ddof_0():
    logits = np.zeros((20, 10))
    logits[np.arange(10), np.arange(10) % 2] = 1000.0  # first half: 2 classes per split
    logits[10 + np.arange(10), 0] = 1000.0  # second half: 1 class
    mean, std = logits_to_inception_score(logits, splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(np.std([2.0, 1.0]))  # 0.5, not 0.707


def test_inception_score_equals_torch_fidelity_formula():
    """torch-fidelity's ``isc`` computation (softmax, then per split exp(mean KL(p(y|x) || p(y))),
    std without Bessel's correction), written out in torch float64, on unshuffled samples."""
    logits = np.random.default_rng(6).normal(scale=4.0, size=(230, 1008))
    p = torch.from_numpy(logits).softmax(dim=1)
    scores = []
    for chunk in p.chunk(10, dim=0):  # 23 each: the same splits as ours when 10 divides N
        py = chunk.mean(dim=0, keepdim=True)
        scores.append((chunk * (chunk.log() - py.log())).sum(dim=1).mean().exp())
    scores = torch.stack(scores)
    mean, std = logits_to_inception_score(logits)
    assert mean > 2.0
    assert mean == pytest.approx(scores.mean().item(), rel=1e-12)
    assert std == pytest.approx(scores.std(unbiased=False).item(), rel=1e-9)

