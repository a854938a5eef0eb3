"""The serving fast paths compute scikit-learn's numbers bit for bit, or are not used."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from services.matching import model as model_module
from services.matching import predictors
from services.matching.features import FEATURE_GROUPS
from services.matching.model import LearnedModel
from services.matching.predictors import (
    LinearPredictor,
    TreesPredictor,
    fast_predictor,
    probe_rows,
)
from services.matching.tables import Floats
from services.matching.train import TrainResult, candidates, train, training_set
from tests.matching.training_data import export_rows

KINDS = {"logistic_regression": LinearPredictor, "hist_gradient_boosting": TreesPredictor}
GROUP_COLUMNS = tuple(tuple(columns) for columns in FEATURE_GROUPS.values())


@pytest.fixture(scope="module")
def results() -> dict[str, TrainResult]:
    """Each candidate fit on the same older rows, as the trained result would carry it."""
    rows = export_rows()[:2_500]
    trained = train(rows, seed=0)
    everything = training_set(rows)
    older = ~np.isin(everything.application_id, trained.holdout.application_id)
    out = {}
    for name, estimator in candidates(0).items():
        estimator.fit(everything.X[older], everything.y[older])
        out[name] = dataclasses.replace(trained, estimator=estimator, chosen=name)
    return out


@pytest.fixture(params=list(KINDS))
def result(request: pytest.FixtureRequest, results: dict[str, TrainResult]) -> TrainResult:
    chosen: TrainResult = results[request.param]
    return chosen


def _means(result: TrainResult) -> Floats:
    return np.asarray(result.meta["feature_means"], dtype=np.float64)


def _rows(result: TrainResult) -> Floats:
    """Holdout pairs plus rows far from any training pair (every branch of every tree)."""
    return np.vstack([result.holdout.X, probe_rows(_means(result), seed=7)])


def test_fast_path_is_bit_for_bit_scikit_learn(result: TrainResult) -> None:
    fast = fast_predictor(result.estimator, _means(result))
    assert isinstance(fast, KINDS[result.chosen])
    x = _rows(result)
    # Per call: a matrix product's last bits may depend on how many rows it multiplies.
    for size in (1, 2, 20, 257, len(x)):  # one row, a ranking page, … all of them
        expected = result.estimator.predict_proba(x[:size])[:, 1]
        assert np.array_equal(fast.proba(x[:size]), expected)


def test_trees_send_missing_values_where_training_did(results: dict[str, TrainResult]) -> None:
    result = results["hist_gradient_boosting"]
    fast = fast_predictor(result.estimator, _means(result))
    assert isinstance(fast, TreesPredictor)
    x = _rows(result)[:300].copy()
    x[::3, np.arange(x.shape[1]) % 4 == 1] = np.nan
    assert np.array_equal(fast.proba(x), result.estimator.predict_proba(x)[:, 1])


def test_occlusion_walks_only_the_trees_that_split_on_the_group(
    results: dict[str, TrainResult],
) -> None:
    result = results["hist_gradient_boosting"]
    fast = fast_predictor(result.estimator, _means(result))
    assert isinstance(fast, TreesPredictor)
    x, means = result.holdout.X[:20], _means(result)
    blocks = [x]
    for columns in GROUP_COLUMNS:
        occluded = x.copy()
        occluded[:, list(columns)] = means[list(columns)]
        blocks.append(occluded)
    stacked = np.vstack(blocks)
    assert np.array_equal(fast.proba_occluded(stacked, len(x), GROUP_COLUMNS), fast.proba(stacked))
    rows, _trees = fast._occlusion_pairs(len(x), GROUP_COLUMNS)
    assert len(rows) < len(x) * len(fast.roots) * len(GROUP_COLUMNS)


def test_contributions_are_the_plain_paths_exactly(result: TrainResult) -> None:
    fast = LearnedModel(result.estimator, result.meta)
    plain = LearnedModel(result.estimator, result.meta, fast_path=False)
    assert fast._fast is not None
    assert plain._fast is None
    x = result.holdout.X
    assert np.array_equal(fast.predict(x), plain.predict(x))
    for size in (1, 20, 50, 20):  # the occlusion pairs of each size are reused
        assert np.array_equal(fast.contributions(x[:size]), plain.contributions(x[:size]))


def test_other_estimators_keep_scikit_learn(results: dict[str, TrainResult]) -> None:
    result = results["logistic_regression"]
    fit = (result.holdout.X, result.holdout.y)
    means = _means(result)
    assert fast_predictor(LogisticRegression(max_iter=2_000).fit(*fit), means) is None
    other_scaler = Pipeline([("scale", MinMaxScaler()), ("lr", LogisticRegression())]).fit(*fit)
    assert fast_predictor(other_scaler, means) is None
    model = LearnedModel(other_scaler, result.meta)
    assert model._fast is None
    assert np.array_equal(model.predict(fit[0]), other_scaler.predict_proba(fit[0])[:, 1])


def test_a_fast_path_that_disagrees_is_not_used(
    result: TrainResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = KINDS[result.chosen]
    honest = kind.proba

    def off_by_a_little(self: predictors.Predictor, x: Floats) -> Floats:
        out: Floats = honest(self, x) * (1 + 1e-15)
        return out

    monkeypatch.setattr(kind, "proba", off_by_a_little)
    assert fast_predictor(result.estimator, _means(result)) is None
    model = LearnedModel(result.estimator, result.meta)
    x = result.holdout.X
    assert np.array_equal(model.predict(x), result.estimator.predict_proba(x)[:, 1])


def test_big_calls_keep_scikit_learn(result: TrainResult, monkeypatch: pytest.MonkeyPatch) -> None:
    model = LearnedModel(result.estimator, result.meta)
    x = result.holdout.X[:40]

    def unused(self: predictors.Predictor, x: Floats) -> Floats:
        raise AssertionError("the fast path ran")

    monkeypatch.setattr(model_module, "FAST_PATH_MAX_ROWS", 39)
    monkeypatch.setattr(KINDS[result.chosen], "proba", unused)
    monkeypatch.setattr(TreesPredictor, "proba_occluded", unused)
    assert np.array_equal(model.predict(x), result.estimator.predict_proba(x)[:, 1])
    if result.chosen == "hist_gradient_boosting":  # linear contributions are one product
        plain = LearnedModel(result.estimator, result.meta, fast_path=False)
        assert np.array_equal(model.contributions(x[:3]), plain.contributions(x[:3]))
