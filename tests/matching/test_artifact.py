"""Signed artifacts round-trip and refuse anything else; loaded models predict and explain."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import numpy as np
import pytest
import sklearn

from services.matching import artifact
from services.matching.artifact import HEADER_SIZE, MAGIC, ArtifactError, dump, load, read_meta
from services.matching.features import COLUMN, FEATURE_GROUPS, FEATURE_NAMES
from services.matching.model import PRIOR_VERSION, LearnedModel, PriorModel
from services.matching.tables import Floats
from services.matching.train import TrainResult, candidates, train, training_set
from tests.matching.training_data import export_rows

KEY = b"k" * 32
GROUPS = list(FEATURE_GROUPS)


@pytest.fixture(scope="module")
def results() -> dict[str, TrainResult]:
    """The trained result, and the same result carrying each candidate, fit on the same rows."""
    trained = train(export_rows()[:2_500], seed=0)
    fit_rows = _fit_part(trained)
    out = {}
    for name, estimator in candidates(0).items():
        estimator.fit(*fit_rows)
        out[name] = dataclasses.replace(trained, estimator=estimator, chosen=name)
    return out


def _fit_part(result: TrainResult) -> tuple[np.ndarray, np.ndarray]:
    everything = training_set(export_rows()[:2_500])
    older = ~np.isin(everything.application_id, result.holdout.application_id)
    return everything.X[older], everything.y[older]


@pytest.fixture(params=["logistic_regression", "hist_gradient_boosting"])
def result(request: pytest.FixtureRequest, results: dict[str, TrainResult]) -> TrainResult:
    chosen: TrainResult = results[request.param]
    return chosen


@pytest.fixture
def blob(result: TrainResult) -> bytes:
    return dump(result, KEY)


def test_round_trip_predicts_identically(result: TrainResult, blob: bytes) -> None:
    model = load(blob, KEY)
    x = result.holdout.X
    expected = result.estimator.predict_proba(x)[:, 1]
    assert np.array_equal(model.predict(x), expected)
    # One row against the estimator on that one row: BLAS may sum a lone row in another order
    # than a block of rows, so a batch's first value can differ in its last bit.
    assert np.array_equal(model.predict(x[:1]), result.estimator.predict_proba(x[:1])[:, 1])
    assert model.version == result.version
    assert not model.is_prior
    assert model.meta["feature_names"] == list(FEATURE_NAMES)
    assert read_meta(blob, KEY)["data_sha256"] == result.meta["data_sha256"]


def test_fast_path_changes_nothing_but_speed(result: TrainResult) -> None:
    x = result.holdout.X
    fast = LearnedModel(result.estimator, result.meta)
    plain = LearnedModel(result.estimator, result.meta, fast_path=False)
    assert np.array_equal(fast.predict(x), plain.predict(x))
    assert np.array_equal(fast.contributions(x[:50]), plain.contributions(x[:50]))


@pytest.mark.parametrize("position", [0, len(MAGIC), len(MAGIC) + 5, HEADER_SIZE - 1, -1, 2_000])
def test_any_changed_byte_is_refused(blob: bytes, position: int) -> None:
    tampered = bytearray(blob)
    tampered[position] ^= 0x01
    with pytest.raises(ArtifactError):
        load(bytes(tampered), KEY)


def test_a_wrong_key_is_refused(blob: bytes) -> None:
    with pytest.raises(ArtifactError, match="signature does not verify"):
        load(blob, b"another key of the same length!!")
    with pytest.raises(ArtifactError, match="empty signing key"):
        load(blob, b"")


@pytest.mark.parametrize("keep", [10, HEADER_SIZE - 1, HEADER_SIZE + 3, -1])
def test_truncated_blobs_are_refused(blob: bytes, keep: int) -> None:
    with pytest.raises(ArtifactError, match=r"truncated|wrong magic"):
        load(blob[:keep], KEY)


def test_a_foreign_pickle_is_refused_unopened(result: TrainResult) -> None:
    with pytest.raises(ArtifactError, match="wrong magic"):
        load(pickle.dumps(result.estimator), KEY)
    # Our header on someone else's payload: the signature fails before anything is unpickled.
    evil = pickle.dumps(_Trap())
    forged = MAGIC + artifact._HEAD.pack(1, len(evil)) + b"\0" * 32 + evil
    with pytest.raises(ArtifactError, match="signature"):
        load(forged, KEY)
    assert _OPENED == []


_OPENED: list[str] = []


class _Trap:
    """Unpickling this runs code (here a harmless append; an attacker's would not be)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_OPENED.append, ("unpickled",))


def test_other_features_or_sklearn_are_refused(
    result: TrainResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(artifact, "FEATURE_NAMES", (*FEATURE_NAMES, "extra"))
        other_features = dump(result, KEY)
    with pytest.raises(ArtifactError, match="other features"):
        load(other_features, KEY)
    with monkeypatch.context() as patch:
        patch.setattr(sklearn, "__version__", "1.2.3")
        old_sklearn = dump(result, KEY)
    with pytest.raises(ArtifactError, match=r"scikit-learn 1\.2\.3"):
        load(old_sklearn, KEY)
    assert _OPENED == []


def test_contributions_have_one_column_per_group(result: TrainResult) -> None:
    model = LearnedModel(result.estimator, result.meta)
    x = result.holdout.X[:30]
    contributions = model.contributions(x)
    assert contributions.shape == (30, len(FEATURE_GROUPS))
    assert np.isfinite(contributions).all()
    # An average pair has nothing to explain.
    means = np.asarray(result.meta["feature_means"])[None, :]
    assert np.allclose(model.contributions(means), 0.0, atol=1e-9)


def test_more_revenue_per_yuan_asked_helps(result: TrainResult) -> None:
    model = LearnedModel(result.estimator, result.meta)
    x = result.holdout.X
    ratio = x[:, COLUMN["log_revenue_to_amount"]]
    revenue = model.contributions(x)[:, GROUPS.index("revenue_to_amount")]
    high, low = ratio >= np.quantile(ratio, 0.8), ratio <= np.quantile(ratio, 0.2)
    assert revenue[high].mean() > 0.1
    assert revenue[low].mean() < -0.1
    # Raising the ratio alone raises the probability.
    richer = x.copy()
    richer[:, COLUMN["log_revenue_to_amount"]] += 1.5
    assert (model.predict(richer) >= model.predict(x) - 1e-9).mean() > 0.95


def test_linear_contributions_add_up_to_the_logit(results: dict[str, TrainResult]) -> None:
    result = results["logistic_regression"]
    model = LearnedModel(result.estimator, result.meta)
    x = result.holdout.X[:100]
    means = np.asarray(result.meta["feature_means"])[None, :]

    def logit(p: Floats) -> Floats:
        out: Floats = np.log(p) - np.log1p(-p)
        return out

    expected = logit(model.predict(x)) - logit(model.predict(means))
    assert np.allclose(model.contributions(x).sum(axis=1), expected, atol=1e-6)


def test_predict_refuses_the_wrong_width(result: TrainResult) -> None:
    model = LearnedModel(result.estimator, result.meta)
    with pytest.raises(ValueError, match=f"rows × {len(FEATURE_NAMES)} features"):
        model.predict(np.zeros((2, 3)))


def test_the_prior_has_no_probability_and_no_model_reasons() -> None:
    prior = PriorModel()
    x = np.zeros((4, len(FEATURE_NAMES)))
    assert prior.version == PRIOR_VERSION == "prior-v1"
    assert prior.is_prior
    assert all(math.isnan(v) for v in prior.predict(x))
    assert prior.predict(x).shape == (4,)
    assert np.array_equal(prior.contributions(x), np.zeros((4, len(FEATURE_GROUPS))))
