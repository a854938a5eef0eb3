"""SignedLogisticRegression: the constrained optimum, the same fit when no sign is broken."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from services.matching.signed import SignedLogisticRegression

C = 1.0


def collinear(n: int = 4_000) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """x1 drives y; x2 is x1 plus noise with a small opposite true effect, so a plain fit
    gives x2 a negative weight that the domain (say) forbids."""
    rng = np.random.default_rng(7)
    x1 = rng.standard_normal(n)
    x2 = x1 + 0.5 * rng.standard_normal(n)
    x3 = rng.standard_normal(n)
    logit = 1.5 * x1 - 0.6 * x2 + 0.8 * x3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return np.column_stack([x1, x2, x3]), y


def test_a_wrong_sign_is_held_at_zero_at_the_constrained_optimum() -> None:
    x, y = collinear()
    plain = LogisticRegression(C=C, max_iter=1_000).fit(x, y)
    assert plain.coef_[0, 1] < -0.3  # the plain fit breaks the sign we are about to impose
    signed = SignedLogisticRegression([1, 1, 0], C=C, tol=1e-8, max_iter=1_000).fit(x, y)
    assert signed.coef_[0, 1] == 0.0
    assert signed.constrained_ == [1]
    # With x2 at its bound, the optimum over the rest is the plain fit without x2.
    without = LogisticRegression(C=C, tol=1e-8, max_iter=1_000).fit(x[:, [0, 2]], y)
    assert signed.coef_[0, [0, 2]] == pytest.approx(without.coef_[0], abs=1e-4)
    assert signed.intercept_[0] == pytest.approx(without.intercept_[0], abs=1e-4)
    # And it still predicts as a LogisticRegression does from its coefficients.
    expected = 1.0 / (1.0 + np.exp(-(x @ signed.coef_[0] + signed.intercept_[0])))
    assert signed.predict_proba(x)[:, 1] == pytest.approx(expected)


def test_signs_already_kept_leave_the_plain_fit_unchanged() -> None:
    x, y = collinear()
    plain = LogisticRegression(C=C, max_iter=1_000).fit(x, y)
    signed = SignedLogisticRegression([1, -1, 1], C=C, max_iter=1_000).fit(x, y)
    assert np.array_equal(signed.coef_, plain.coef_)
    assert np.array_equal(signed.intercept_, plain.intercept_)
    assert signed.constrained_ == []


def test_no_signs_is_a_plain_logistic_regression() -> None:
    x, y = collinear()
    plain = LogisticRegression(C=C, max_iter=1_000).fit(x, y)
    assert np.array_equal(
        SignedLogisticRegression(C=C, max_iter=1_000).fit(x, y).coef_, plain.coef_
    )


def test_clone_keeps_the_signs() -> None:
    estimator = SignedLogisticRegression([1, 0, -1], C=0.5, max_iter=50)
    copy = clone(estimator)
    assert copy.get_params()["signs"] == [1, 0, -1]
    assert copy.get_params()["C"] == 0.5


@pytest.mark.parametrize("signs", [[1, 0], [1, 0, 2]])
def test_bad_signs_are_refused(signs: list[int]) -> None:
    x, y = collinear(200)
    with pytest.raises(ValueError, match="signs must be 3 values of -1, 0 or 1"):
        SignedLogisticRegression(signs).fit(x, y)
