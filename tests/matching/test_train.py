"""Training on a synthetic history: it learns, splits by time, refuses bad data, repeats itself."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import numpy as np
import orjson
import pytest

from services.matching.features import FEATURE_NAMES
from services.matching.train import (
    TrainingRefused,
    TrainingSet,
    TrainResult,
    evaluate,
    parse_export,
    train,
    training_set,
)
from tests.matching.training_data import export_lines, export_rows

METRICS = {"auc", "brier", "brier_base", "log_loss", "log_loss_base", "ndcg_at_5", "ndcg_firms"}


@pytest.fixture(scope="module")
def result() -> TrainResult:
    # The full path: NDJSON lines as the registry streams them, then training.
    return train(parse_export(export_lines()), seed=0)


def test_the_chosen_model_learns_the_hidden_approval_model(result: TrainResult) -> None:
    metrics = result.metrics
    rate = result.holdout.y.mean()
    assert metrics["auc"] > 0.75
    assert metrics["brier"] < rate * (1 - rate) == pytest.approx(metrics["brier_base"])
    assert metrics["log_loss"] < metrics["log_loss_base"]
    assert 0.0 < metrics["ndcg_at_5"] <= 1.0
    assert metrics["ndcg_firms"] >= 50  # enough firms with ≥2 holdout applications to mean much
    assert set(result.candidates) == {"logistic_regression", "hist_gradient_boosting"}
    for scores in result.candidates.values():
        assert set(scores) >= METRICS
        assert scores["auc"] > 0.75
    # Chosen by holdout log loss, and the reported metrics are that candidate's.
    best = min(result.candidates, key=lambda name: result.candidates[name]["log_loss"])
    assert result.chosen == best == result.meta["chosen"]
    assert result.metrics == result.candidates[best]


def test_reported_metrics_are_those_of_the_selected_fit(result: TrainResult) -> None:
    again = evaluate(result.selected.predict_proba, result.holdout)
    for name in METRICS:
        assert again[name] == pytest.approx(result.metrics[name])
    assert result.meta["holdout_metrics"] == result.metrics


def test_the_served_model_is_the_chosen_one_refitted_on_every_row(result: TrainResult) -> None:
    everything = training_set(export_rows())
    refit = result.meta["refit"]
    assert refit["rows"] == len(everything) > result.meta["rows"]["train"]
    assert refit["data_sha256"] == everything.data_hash == result.meta["data_sha256"]
    # Same family and settings as the selected fit, but it learned from the holdout too.
    assert type(result.estimator) is type(result.selected)
    assert repr(result.estimator) == repr(result.selected)  # the parameters, printed
    served = result.estimator.predict_proba(result.holdout.X)[:, 1]
    selected = result.selected.predict_proba(result.holdout.X)[:, 1]
    assert not np.allclose(served, selected)
    # The holdout's labels now inform the served model: it fits them better than the
    # selected fit, which never saw them.
    refitted = evaluate(result.estimator.predict_proba, result.holdout)
    assert refitted["log_loss"] < result.metrics["log_loss"]
    window = result.meta["training_window"]
    assert window["last_decided_at"] == result.meta["holdout_window"]["last_decided_at"]


def test_holdout_is_the_newest_fifth_and_strictly_later(result: TrainResult) -> None:
    everything = training_set(export_rows())
    in_holdout = np.isin(everything.application_id, result.holdout.application_id)
    assert in_holdout.sum() == len(result.holdout) == round(0.2 * len(everything))
    assert everything.decided_at[~in_holdout].max() < result.holdout.decided_at.min()
    meta = result.meta
    assert meta["rows"] == {
        "train": int((~in_holdout).sum()),
        "holdout": len(result.holdout),
        "total": len(everything),
    }
    assert meta["selection_window"]["last_decided_at"] < meta["holdout_window"]["first_decided_at"]


def test_meta_describes_the_run(result: TrainResult) -> None:
    meta = result.meta
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert len(meta["feature_means"]) == len(FEATURE_NAMES)
    assert set(meta["versions"]) == {"sklearn", "numpy", "python"}
    assert re.fullmatch(r"m-\d{8}T\d{9}-[0-9a-f]{8}", result.version)
    assert result.version.endswith(meta["data_sha256"][:8])
    assert meta["positive_rate"]["holdout"] == pytest.approx(result.holdout.y.mean())
    orjson.dumps(meta)  # stored as JSON beside the artifact


def test_data_hash_ignores_input_order_but_not_content() -> None:
    rows = export_rows()[:300]
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert training_set(rows).data_hash == training_set(shuffled).data_hash
    changed = [dict(r) for r in rows]
    changed[5]["requested_amount_yuan"] += 10_000
    assert training_set(changed).data_hash != training_set(rows).data_hash


def test_training_is_deterministic_for_a_seed() -> None:
    rows = export_rows()[:1_500]
    first, second = (train(rows, seed=3, version="v-test") for _ in range(2))
    assert first.chosen == second.chosen
    for name in first.candidates:
        for metric in METRICS:
            a, b = first.candidates[name][metric], second.candidates[name][metric]
            assert a == b or (math.isnan(a) and math.isnan(b))
    x = first.holdout.X
    assert np.array_equal(first.estimator.predict_proba(x), second.estimator.predict_proba(x))
    assert first.meta["data_sha256"] == second.meta["data_sha256"]


def test_too_few_rows_are_refused() -> None:
    with pytest.raises(TrainingRefused, match=r"150 decided applications; need at least 200"):
        train(export_rows()[:150])


def test_a_single_class_is_refused() -> None:
    approved_only = [r for r in export_rows() if r["approved"]][:400]
    with pytest.raises(TrainingRefused, match=r"\d+ approved and 0 rejected"):
        train(approved_only)


def test_malformed_lines_are_named_by_number() -> None:
    lines = export_lines()[:20]
    lines[2] = b'{"application_id": 3, '  # cut off mid-object
    lines[6] = b"[1, 2, 3]\n"
    lines[9] = b"\n"  # blank lines are allowed
    with pytest.raises(TrainingRefused) as info:
        parse_export(lines)
    message = str(info.value)
    assert message.startswith("2 malformed lines: line 3: not JSON")
    assert "line 7: a JSON list, not an object" in message
    assert "line 10" not in message


def test_only_ten_bad_lines_are_listed() -> None:
    with pytest.raises(TrainingRefused) as info:
        parse_export([b"nope"] * 14)
    message = str(info.value)
    assert "14 malformed lines" in message
    assert "line 10:" in message
    assert "line 11:" not in message
    assert message.endswith("and 4 more")


def test_invalid_rows_say_which_and_why() -> None:
    rows: list[dict[str, Any]] = [dict(r) for r in export_rows()[:5]]
    rows[1]["firm"] = {**rows[1]["firm"], "town_code": "123456789"}
    rows[3]["requested_amount_yuan"] = -5
    rows[4]["approved"] = "yes"
    with pytest.raises(TrainingRefused) as info:
        training_set(rows)
    message = str(info.value)
    assert message.startswith("3 malformed rows: row 2: firm.town_code:")
    assert "row 4: requested_amount_yuan: Input should be greater than 0" in message
    assert "row 5: approved: Input should be a valid boolean" in message


def test_bad_holdout_share_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="holdout_share"):
        train(export_rows(), holdout_share=1.0)


def test_ndcg_averages_over_firms_with_an_order_to_get_right() -> None:
    # Firm 1 ranked right, firm 2 wrong; firm 3 has one row, firm 4 no approval: both skipped.
    y = np.array([1, 0, 0, 1, 1, 0, 0], dtype=np.int64)
    p = np.array([0.9, 0.1, 0.9, 0.1, 0.5, 0.4, 0.6])
    firm = np.array([1, 1, 2, 2, 3, 4, 4], dtype=np.int64)
    n = len(y)
    holdout = TrainingSet(
        X=np.zeros((n, len(FEATURE_NAMES))),
        y=y,
        firm_key=firm,
        decided_at=np.arange(n).astype("datetime64[s]").astype("datetime64[us]"),
        application_id=np.arange(n, dtype=np.int64),
        product_id=np.ones(n, dtype=np.int64),
        amount=np.ones(n),
        term=np.ones(n),
        row_digest=np.zeros((n, 32), dtype=np.uint8),
    )
    metrics = evaluate(lambda x: p, holdout)
    assert metrics["ndcg_firms"] == 2
    assert metrics["ndcg_at_5"] == pytest.approx((1.0 + 1.0 / math.log2(3)) / 2)
    assert metrics["n"] == n
    assert metrics["positive_rate"] == pytest.approx(3 / 7)
