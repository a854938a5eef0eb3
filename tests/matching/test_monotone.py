"""Monotone directions: raising one figure the domain signs never moves the approval the other way.

Each feature of train.MONOTONE is swept alone over its observed range on real training rows,
the others held fixed, through the served model (LearnedModel, fast path included) and
through each candidate fitted on the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from services.matching import train as train_module
from services.matching.features import COLUMN, FEATURE_NAMES
from services.matching.model import LearnedModel
from services.matching.predictors import LinearPredictor
from services.matching.signed import SignedLogisticRegression
from services.matching.train import (
    MONOTONE,
    TrainingSet,
    TrainResult,
    candidates,
    monotone_signs,
    train,
    training_set,
)
from tests.matching.training_data import export_rows

SWEPT_ROWS = 150
STEPS = 25
# Probabilities are compared as computed; a monotone model may tie, never step back by more
# than floating-point noise.
NOISE = 1e-12


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    return training_set(export_rows())


@pytest.fixture(scope="module")
def result() -> TrainResult:
    return train(export_rows(), seed=0)


@pytest.fixture(scope="module")
def fitted(data: TrainingSet) -> dict[str, Any]:
    return {name: est.fit(data.X, data.y) for name, est in candidates(0).items()}


def sweep_violations(predict: Any, data: TrainingSet) -> dict[str, float]:
    """The MONOTONE features whose sweeps step against their direction by more than NOISE,
    with the largest such step.

    Rows are a fixed sample of real training rows; each feature takes STEPS values from its
    observed minimum to maximum (both of a flag's values) while the row's others stay put.
    """
    rows = data.X[np.random.default_rng(0).choice(len(data), SWEPT_ROWS, replace=False)]
    worst: dict[str, float] = {}
    for name, direction in MONOTONE.items():
        column = data.X[:, COLUMN[name]]
        grid = np.unique(np.linspace(column.min(), column.max(), STEPS))
        assert len(grid) >= 2, f"{name} does not vary in the training rows"
        swept = np.repeat(rows, len(grid), axis=0)
        swept[:, COLUMN[name]] = np.tile(grid, len(rows))
        p = np.asarray(predict(swept), dtype=np.float64).reshape(len(rows), len(grid))
        step = float(-(direction * np.diff(p, axis=1)).min())
        if step > NOISE:
            worst[name] = step
    return worst


def test_monotone_names_real_features_and_the_domain_directions() -> None:
    assert set(MONOTONE) <= set(FEATURE_NAMES)
    # The directions the issue fixes: rating, years, revenue per yuan asked, collateral cover.
    for name in (
        "rating_rank",
        "log1p_years",
        "log_revenue_to_amount",
        "secured_x_log_collateral_to_amount",
    ):
        assert MONOTONE[name] == 1
    for name in ("amount_to_assets", "log_amount_to_assets", "amount_over_assets", "over_cap"):
        assert MONOTONE[name] == -1
    signs = monotone_signs()
    assert len(signs) == len(FEATURE_NAMES)
    assert signs[COLUMN["log1p_years"]] == 1
    assert signs[COLUMN["log_amount"]] == 0


def test_an_unknown_monotone_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_module, "MONOTONE", {**MONOTONE, "revenue_typo": 1})
    with pytest.raises(ValueError, match="revenue_typo"):
        monotone_signs()


def test_the_served_model_is_monotone_in_every_signed_feature(
    result: TrainResult, data: TrainingSet
) -> None:
    served = LearnedModel(result.estimator, result.meta)
    assert sweep_violations(served.predict, data) == {}


@pytest.mark.parametrize("name", ["logistic_regression", "hist_gradient_boosting"])
def test_each_candidate_is_monotone_in_every_signed_feature(
    name: str, fitted: dict[str, Any], data: TrainingSet
) -> None:
    model = fitted[name]
    assert sweep_violations(lambda x: model.predict_proba(x)[:, 1], data) == {}


def test_the_sweep_catches_a_model_that_is_not_monotone(data: TrainingSet) -> None:
    # The same rows under a plain logistic fit (no signs): the check is not vacuous.
    plain = candidates(0)["logistic_regression"]
    plain.set_params(logistic=LogisticRegression(C=1.0, max_iter=5_000)).fit(data.X, data.y)
    wrong = set(sweep_violations(lambda x: plain.predict_proba(x)[:, 1], data))
    coef = plain[-1].coef_[0]
    assert wrong == {n for n, d in MONOTONE.items() if d * coef[COLUMN[n]] < 0}
    assert wrong  # this history has correlated leverage terms that a plain fit signs wrongly


def test_the_signed_logistic_serves_on_the_linear_fast_path(fitted: dict[str, Any]) -> None:
    pipeline = fitted["logistic_regression"]
    assert isinstance(pipeline[-1], SignedLogisticRegression)
    means = np.zeros(len(FEATURE_NAMES))
    model = LearnedModel(pipeline, {"version": "t", "feature_means": means.tolist()})
    assert isinstance(model._fast, LinearPredictor)
