"""The torch L2-SVM's warm starts: same optimum as a cold fit, same C chosen by the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from gan_probe.analysis import classify as C
from gan_probe.analysis import classify_features as cf
from gan_probe.errors import GanProbeError
from gan_probe.svm import fit_linear_svm, primal_objective

GRID = (1e-3, 1e-2, 1e-1, 1.0)


def _blobs(n, dim, classes=4, seed=0, noise=0.15):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, dim)) * 0.6
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0, 1, (n, dim))
    flip = rng.random(n) < noise
    return x.astype(np.float32), np.where(flip, rng.integers(0, classes, n), y)


def _same_optimum(warm, cold, x, y, C_):
    f_w, f_c = primal_objective(warm, x, y, C_), primal_objective(cold, x, y, C_)
    np.testing.assert_allclose(f_w, f_c, rtol=1e-4)  # the tolerance the stopping rule gives (tol 1e-6)
    # and both are as good as liblinear's optimum
    ref = fit_linear_svm(x, y, C_, solver="sklearn", tol=1e-6, max_iter=20000)
    assert (f_w <= primal_objective(ref, x, y, C_) * (1 + 1e-5)).all()


@pytest.mark.parametrize("n, dim", [(60, 300), (400, 40)])  # the span solver, the primal solver
def test_warm_start_along_the_c_grid_reaches_the_cold_optimum(n, dim):
    x, y = _blobs(n, dim)
    warm, steps_warm, steps_cold = None, 0, 0
    for C_ in GRID:
        cold = fit_linear_svm(x, y, C_, solver="torch", tol=1e-6)
        warm = fit_linear_svm(x, y, C_, solver="torch", tol=1e-6, warm_start=warm)
        _same_optimum(warm, cold, x, y, C_)
        steps_warm += warm.iterations
        steps_cold += cold.iterations
        assert np.mean(warm.predict(x) == cold.predict(x)) >= 0.99
    assert steps_warm < steps_cold


@pytest.mark.parametrize("n, dim", [(60, 300), (400, 40)])
def test_warm_start_from_another_draw_reaches_the_cold_optimum(n, dim):
    x1, y1 = _blobs(n, dim, seed=1)
    x2, y2 = _blobs(n, dim, seed=2)
    for C_ in (1e-2, 1.0):
        first = fit_linear_svm(x1, y1, C_, solver="torch", tol=1e-6)
        warm = fit_linear_svm(x2, y2, C_, solver="torch", tol=1e-6, warm_start=first)
        cold = fit_linear_svm(x2, y2, C_, solver="torch", tol=1e-6)
        _same_optimum(warm, cold, x2, y2, C_)


def test_warm_start_from_other_classes_is_a_one_line_error():
    x, y = _blobs(80, 10)
    three = fit_linear_svm(x[y < 3], y[y < 3], 0.1, solver="torch")
    with pytest.raises(GanProbeError, match="other classes") as e:
        fit_linear_svm(x, y, 0.1, solver="torch", warm_start=three)
    assert e.value.param == "warm_start"


@pytest.mark.parametrize("per_class, n, dim", [(10, 400, 200), (0, 300, 30)])  # few labels / all labels
def test_protocol_with_warm_starts_picks_the_same_c_and_accuracies_as_cold_fits(monkeypatch, per_class, n, dim):
    x, labels = _blobs(n, dim, seed=3, noise=0.3)
    xt, yt = _blobs(120, dim, seed=4, noise=0.3)
    split = C.Split(cf.FeatureSet(x, labels), *C.stratified_split(np.arange(n), labels, 0.2),
                    cf.FeatureSet(xt, yt), np.arange(120))
    opts = C.ClassifyOptions(labels_per_class=per_class, repeats=3, val_draws=3, c_grid=GRID, seed=0)
    warm = C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts)
    real_fit, calls = C.fit_linear_svm, []

    def cold_fit(xs, ys, c, warm_start=None, **kw):
        calls.append(warm_start is not None)
        return real_fit(xs, ys, c, **kw)

    monkeypatch.setattr(C, "fit_linear_svm", cold_fit)
    cold = C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts)
    assert sum(calls) == len(calls) - 1  # every fit but the first was offered a warm start
    assert warm["C"] == cold["C"]
    for v_w, v_c in zip(warm["validation"], cold["validation"]):
        assert v_w["C"] == v_c["C"] and abs(v_w["accuracy_mean"] - v_c["accuracy_mean"]) <= 0.01
    np.testing.assert_allclose(warm["accuracy"]["values"], cold["accuracy"]["values"], atol=0.01)
