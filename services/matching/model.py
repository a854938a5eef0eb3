"""Serving-side scorers: a loaded learned model, or the cold-start prior before one exists."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from services.matching.features import FEATURE_GROUPS, FEATURE_NAMES
from services.matching.predictors import (
    LinearPredictor,
    Predictor,
    TreesPredictor,
    fast_predictor,
)
from services.matching.tables import Floats

PRIOR_VERSION = "prior-v1"
# Tree models run one OpenMP parallel region per tree. Measured on the 2-vCPU box (100 trees):
# with 8 OpenMP threads (a many-core host, or a container whose CPU quota the runtime misreads)
# one row took 9.6 ms, and 0.8 ms on one thread; with 2 threads on 2 cores, one thread made no
# difference up to ~100 rows and was slower from there (1,000 rows: 2.9 vs 1.9 ms). So small
# calls, which are per-firm rankings, run on one thread; batches keep every core.
SINGLE_THREAD_MAX_ROWS = 256
# The fast paths (predictors.py) pay off where scikit-learn's per-call overhead dominates: one
# firm's few hundred rows and their occlusions. Bigger calls (batch.py's chunks) keep
# scikit-learn, whose trees run compiled on every core without rows × trees index arrays.
FAST_PATH_MAX_ROWS = 4_096
_EPS = 1e-6

# d × groups: summing feature columns into their explanation groups is one matrix product.
_GROUP_MATRIX = np.zeros((len(FEATURE_NAMES), len(FEATURE_GROUPS)))
for _g, _cols in enumerate(FEATURE_GROUPS.values()):
    _GROUP_MATRIX[list(_cols), _g] = 1.0
_GROUP_COLUMNS = tuple(tuple(cols) for cols in FEATURE_GROUPS.values())
# (1 + groups) × d: which columns each occlusion block replaces (none in block 0).
_OCCLUDED = np.vstack([np.zeros(len(FEATURE_NAMES)), _GROUP_MATRIX.T]).astype(bool)


class Scorer(Protocol):
    version: str
    is_prior: bool
    meta: Mapping[str, Any]

    def predict(self, x: Floats) -> Floats:
        """P(approved) per row (NaN when there is no model yet)."""
        ...

    def contributions(self, x: Floats) -> Floats:
        """rows × len(FEATURE_GROUPS): each group's effect on the prediction, in log-odds."""
        ...


def _logit(p: Floats) -> Floats:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    out: Floats = np.log(q) - np.log1p(-q)
    return out


def _check(x: Floats) -> Floats:
    # Cheap shape check only: features come from pair_features, finite by construction, which
    # is what lets predict run under assume_finite.
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"expected rows × {len(FEATURE_NAMES)} features, got {x.shape}")
    return x


class LearnedModel:
    """A fitted estimator with its training metadata; load once, call with many rows."""

    is_prior = False

    def __init__(
        self,
        estimator: Any,
        meta: Mapping[str, Any],
        *,
        fast_path: bool = True,
        single_thread_max_rows: int = SINGLE_THREAD_MAX_ROWS,
    ) -> None:
        self.estimator = estimator
        self.meta: Mapping[str, Any] = MappingProxyType(dict(meta))
        self.version: str = str(meta["version"])
        self.fast_path = fast_path
        self.single_thread_max_rows = single_thread_max_rows
        self._means = np.asarray(meta["feature_means"], dtype=np.float64)
        if self._means.shape != (len(FEATURE_NAMES),):
            raise ValueError("meta feature_means does not match FEATURE_NAMES")
        # Inspecting the loaded libraries is slow (threadpool_limits() took 2.6 ms a call,
        # controller.limit 10 µs), so do it once per loaded model.
        self._threads = ThreadpoolController()
        self._linear = _linear_parts(estimator)
        # The same numbers without scikit-learn's per-call overhead (predictors.py), when the
        # estimator is one of ours and agrees bit for bit on probe rows.
        self._fast: Predictor | None = fast_predictor(estimator, self._means) if fast_path else None

    def _settings(self, rows: int) -> ExitStack:
        stack = ExitStack()
        if self.fast_path:
            # Skips one pass over the input (the finiteness check): 6–18% of a logistic call.
            stack.enter_context(sklearn.config_context(assume_finite=True))
            # Linear models do not use OpenMP here and limiting threads only costs ~10 µs.
            if self._linear is None and rows <= self.single_thread_max_rows:
                # OpenMP only: its thread count is per calling thread, so concurrent requests
                # do not undo each other's limit (BLAS limits are process-wide).
                stack.enter_context(self._threads.limit(limits=1, user_api="openmp"))
        return stack

    def _proba(self, x: Floats) -> Floats:
        if self._fast is not None and len(x) <= FAST_PATH_MAX_ROWS:
            return self._fast.proba(x)
        with self._settings(len(x)):
            p: Floats = self.estimator.predict_proba(x)[:, 1]
        return p

    def predict(self, x: Floats) -> Floats:
        return self._proba(_check(x))

    def contributions(self, x: Floats) -> Floats:
        """Per-group effect on the log-odds of approval, relative to an average training pair.

        Linear pipeline: coefficient × (scaled x − scaled mean), summed per group (exact: the
        groups add up to the logit minus the average pair's logit). Other models: occlusion,
        logit(p) − logit(p with the group set to its training means), all groups in one call.
        Both are in log-odds so reasons read the same whichever model won.
        """
        x = _check(x)
        if isinstance(self._fast, LinearPredictor):
            fast = self._fast
            centred = fast.scaled(x) - fast.scaled(self._means[None, :])
            fast_linear: Floats = (centred * fast.coef) @ _GROUP_MATRIX
            return fast_linear
        if self._linear is not None:
            scaler, coef = self._linear
            with self._settings(len(x)):
                centred = scaler.transform(x) - scaler.transform(self._means[None, :])
            linear: Floats = (centred * coef) @ _GROUP_MATRIX
            return linear
        n, groups = len(x), len(FEATURE_GROUPS)
        # Block 0 is x; block g is x with group g's columns at their training means.
        stacked = np.where(_OCCLUDED[:, None, :], self._means, x[None, :, :])
        stacked = stacked.reshape(-1, x.shape[1])
        if isinstance(self._fast, TreesPredictor) and len(stacked) <= FAST_PATH_MAX_ROWS:
            proba = self._fast.proba_occluded(stacked, n, _GROUP_COLUMNS)
        else:
            proba = self._proba(stacked)
        logit = _logit(proba).reshape(groups + 1, n)
        occluded: Floats = (logit[0] - logit[1:]).T
        return occluded


def _linear_parts(estimator: Any) -> tuple[StandardScaler, Floats] | None:
    """(scaler, coefficients) of a StandardScaler + LogisticRegression pipeline, else None."""
    if (
        isinstance(estimator, Pipeline)
        and len(estimator.steps) == 2
        and isinstance(estimator[0], StandardScaler)
        and isinstance(estimator[-1], LogisticRegression)
    ):
        coef: Floats = np.asarray(estimator[-1].coef_, dtype=np.float64)[0]
        return estimator[0], coef
    return None


class PriorModel:
    """Cold start: no probability before a model exists; the ranker falls back to rules and cost."""

    version: str = PRIOR_VERSION
    is_prior: bool = True
    meta: Mapping[str, Any] = MappingProxyType({"version": PRIOR_VERSION, "kind": "prior"})

    def predict(self, x: Floats) -> Floats:
        return np.full(len(_check(x)), np.nan)

    def contributions(self, x: Floats) -> Floats:
        return np.zeros((len(_check(x)), len(FEATURE_GROUPS)))
