"""Reach's expected approval share: every eligible firm's mean up to SHARE_SAMPLE_FIRMS, above
it a uniform sample's mean within its stated 99.9% margin of the mean of ranking's per-firm
probabilities."""

from __future__ import annotations

import math
from datetime import date
from functools import cache

import numpy as np
import pytest

from services.matching import policy
from services.matching.firm_columns import FirmColumns
from services.matching.policy import Population, reach
from services.matching.ranking import rank_products_for_firm
from services.matching.tables import ProductTable
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions
from shared.schemas.product import ProductFeatures
from tests.matching.test_batch import as_features, scorer
from tests.matching.training_data import catalogue_products

AS_OF = date(2026, 11, 1)
EVERYTHING = RankOptions(limit=1_000, near_miss_limit=0)
SAMPLE = 150  # the bound the tests set: well below the firms eligible
SEEDS = range(100)


@cache
def firms() -> tuple[FirmFeatures, ...]:
    from services.registry.seed.population import generate_firms

    return tuple(as_features(f) for f in generate_firms(1_200, seed=8))


@cache
def everyone() -> FirmColumns:
    kept = FirmColumns.from_firms(firms(), [True] * len(firms()))
    kept.date_to(AS_OF)
    return kept


@cache
def widest() -> ProductFeatures:
    """The seed product that admits the most of these firms."""
    table = ProductTable.from_products(catalogue_products())
    admitted = [int(Population(everyone()).eligible(table, j).sum()) for j in range(table.n)]
    return catalogue_products()[int(np.argmax(admitted))]


@cache
def ranked_probabilities(model: str) -> tuple[float, ...]:
    """Ranking's approval probability of the widest product for each firm it admits, one
    firm at a time (rank_products_for_firm, as a portal's match answer gives it)."""
    one = ProductTable.from_products([widest()])
    out = []
    for firm in firms():
        answer = rank_products_for_firm(firm, one, scorer(model), EVERYTHING, as_of=AS_OF)
        out += [r.approval_probability for r in answer.ranked if r.approval_probability is not None]
    return tuple(out)


@pytest.mark.parametrize("model", ["logistic", "boosting"])
def test_a_sampled_share_holds_rankings_mean_within_its_margin(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probabilities = ranked_probabilities(model)
    exact = sum(probabilities) / len(probabilities)
    assert len(probabilities) >= 4 * SAMPLE  # the sample is a small part of the eligible
    monkeypatch.setattr(policy, "SHARE_SAMPLE_FIRMS", SAMPLE)
    # A margin no wider than the worst case of probabilities in [0, 1] (σ ≤ 0.5), and the
    # finite population's correction applied: a margin of 1 would hold everything.
    n, big_n = SAMPLE, len(probabilities)
    z = policy.SHARE_Z
    widest_margin = z * 0.5 / math.sqrt(n) * math.sqrt((big_n - n) / (big_n - 1)) + 2e-4
    estimates, held, held_95 = [], 0, 0
    for seed in SEEDS:
        monkeypatch.setattr(policy, "SHARE_SAMPLE_SEED", seed)
        result = reach(Population(everyone()), widest(), scorer(model))
        assert result.eligible == len(probabilities)
        assert result.expected_approval_share_scored == SAMPLE
        share, margin = result.expected_approval_share, result.expected_approval_share_margin
        assert share is not None
        assert margin is not None
        assert 0 < margin <= widest_margin
        held += abs(share - exact) <= margin
        held_95 += abs(share - exact) <= margin * 1.959964 / z  # the same error, at 95%
        estimates.append(share)
    # A 99.9% interval holds the mean all but once in 1,000 (fewer than 97 of 100: about one
    # chance in 10^7), and the 95% interval of the same standard error about 95 times in 100
    # (fewer than 88: ~0.1%), so the margin is neither loose nor tight. The seeds are fixed:
    # the test is deterministic.
    assert held >= 97, f"{held} of {len(SEEDS)} intervals hold the mean"
    assert held_95 >= 88, f"{held_95} of {len(SEEDS)} 95% intervals hold the mean"
    # Unbiased: the mean of 100 samples' shares is within a tenth of the margin or so.
    assert abs(float(np.mean(estimates)) - exact) <= widest_margin / 4
    assert len(set(estimates)) > 20  # each seed draws its own sample


def test_the_default_sample_holds_rankings_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    probabilities = ranked_probabilities("boosting")
    exact = sum(probabilities) / len(probabilities)
    monkeypatch.setattr(policy, "SHARE_SAMPLE_FIRMS", SAMPLE)
    result = reach(Population(everyone()), widest(), scorer("boosting"))
    again = reach(Population(everyone()), widest(), scorer("boosting"))
    assert result == again  # the same question, the same sample
    assert result.expected_approval_share is not None
    assert result.expected_approval_share_margin is not None
    assert abs(result.expected_approval_share - exact) <= result.expected_approval_share_margin


@pytest.mark.parametrize("model", ["logistic", "boosting"])
def test_up_to_the_bound_every_eligible_firm_is_scored(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probabilities = ranked_probabilities(model)
    count = len(probabilities)
    monkeypatch.setattr(policy, "SHARE_SAMPLE_FIRMS", count)  # exactly at the bound: all
    result = reach(Population(everyone()), widest(), scorer(model))
    assert result.expected_approval_share_scored == count
    assert result.expected_approval_share_margin == 0.0
    assert result.expected_approval_share == round(sum(probabilities) / count, 4)
    monkeypatch.setattr(policy, "SHARE_SAMPLE_FIRMS", count - 1)  # one short: a sample
    sampled = reach(Population(everyone()), widest(), scorer(model))
    assert sampled.expected_approval_share_scored == count - 1
    assert sampled.expected_approval_share_margin is not None
    assert sampled.expected_approval_share_margin > 0


def test_no_share_no_margin_under_the_prior_or_for_a_withheld_count() -> None:
    prior = reach(Population(everyone()), widest(), scorer("prior"))
    assert prior.eligible is not None
    assert prior.eligible > 0
    assert (
        prior.expected_approval_share,
        prior.expected_approval_share_margin,
        prior.expected_approval_share_scored,
    ) == (None, None, None)
    admitted = Population(everyone()).eligible(ProductTable.from_products([widest()]), 0)
    two = Population(everyone(), np.flatnonzero(admitted)[:2])
    few = reach(two, widest(), scorer("logistic"))
    assert few.eligible is None  # 2 firms: withheld, and no share of them either
    assert few.expected_approval_share is None
    assert few.expected_approval_share_scored is None
    three = reach(
        Population(everyone(), np.flatnonzero(admitted)[:3]), widest(), scorer("logistic")
    )
    assert three.eligible == 3
    assert three.expected_approval_share_scored == 3
