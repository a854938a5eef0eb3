"""Logistic regression whose coefficients keep the signs the lending domain fixes.

A plain fit can give a feature the "wrong" sign when it is correlated with others (two views of
leverage, say): the holdout may not suffer, but a firm would be told that more revenue lowered
its chance, and raising that one figure would really lower its score. Here such coefficients
are held at zero instead: the L2-penalised log loss is minimised under bounds, the exact
optimum of the constrained problem rather than a plain fit with some columns dropped by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize  # type: ignore[import-untyped]
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression

Floats = npt.NDArray[np.float64]


class SignedLogisticRegression(LogisticRegression):  # type: ignore[misc]
    """Binary L2 logistic regression with ``coef_[j] ≥ 0`` where ``signs[j] == 1``, ``≤ 0``
    where it is ``-1``, free where it is 0 (an empty ``signs``: no constraint).

    It is a LogisticRegression (same attributes, same predict), so serving, its fast path and
    the exact linear explanations treat it as one. When the unconstrained fit already keeps
    every sign it is kept as is; otherwise the same objective, ``Σ loss + ‖w‖² / (2C)``
    (scikit-learn's lbfgs), is solved again under bounds from the unconstrained fit clipped
    to them. ``constrained_`` lists the features whose coefficient ended on its bound.
    """

    coef_: Floats
    intercept_: Floats

    def __init__(
        self,
        signs: Sequence[int] = (),
        *,
        C: float = 1.0,  # noqa: N803 (scikit-learn's name: get_params and clone read it)
        tol: float = 1e-4,
        max_iter: int = 100,
    ) -> None:
        super().__init__(C=C, tol=tol, max_iter=max_iter)
        self.signs = signs

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> SignedLogisticRegression:
        super().fit(x, y, sample_weight=sample_weight)
        signs = np.asarray(self.signs, dtype=np.int64)
        self.constrained_: list[int] = []
        if signs.size == 0:
            return self
        if signs.shape != (self.n_features_in_,) or not np.isin(signs, (-1, 0, 1)).all():
            raise ValueError(f"signs must be {self.n_features_in_} values of -1, 0 or 1")
        if len(self.classes_) != 2:
            raise ValueError("SignedLogisticRegression is binary only")
        coef = np.asarray(self.coef_, dtype=np.float64)[0]
        if not (coef * signs < 0).any():
            return self
        x = np.asarray(x, dtype=np.float64)
        target = np.where(np.asarray(y) == self.classes_[1], 1.0, -1.0)
        weight = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        bounds = [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs]
        start = np.append(np.where(coef * signs < 0, 0.0, coef), self.intercept_[0])
        solution = minimize(
            _objective,
            start,
            args=(x, target, weight, float(self.C)),
            jac=True,
            method="L-BFGS-B",
            bounds=[*bounds, (None, None)],
            options={"maxiter": self.max_iter, "gtol": self.tol},
        )
        w = solution.x[:-1]
        w[(w * signs) < 0] = 0.0  # L-BFGS-B keeps bounds; this guards a -0.0 or a rounding
        self.coef_ = w[None, :]
        self.intercept_ = np.array([solution.x[-1]])
        self.constrained_ = [int(j) for j in np.flatnonzero((signs != 0) & (w == 0.0))]
        return self


def _objective(
    theta: Floats, x: Floats, target: Floats, weight: Floats, c: float
) -> tuple[float, Floats]:
    """The mean weighted log loss plus ‖w‖² / (2C·Σweight) (the same minimiser as
    scikit-learn's sum form, on a scale where ``tol`` means the same whatever the row count),
    and its gradient; the intercept is not penalised."""
    w, b = theta[:-1], theta[-1]
    total = float(weight.sum())
    margin = target * (x @ w + b)
    loss = float(weight @ np.logaddexp(0.0, -margin)) / total + float(w @ w) / (2.0 * c * total)
    slope = -weight * target * expit(-margin) / total
    gradient = np.append(x.T @ slope + w / (c * total), slope.sum())
    return loss, gradient
