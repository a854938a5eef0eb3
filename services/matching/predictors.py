"""Serving-side arithmetic of our two fitted model kinds, without scikit-learn's per-call cost.

scikit-learn validates its input and inspects the loaded libraries on every call, and a
gradient-boosted model walks its trees one Python-level call per tree inside an OpenMP
region. For the few hundred rows of one firm that overhead is most of the cost, and on a busy
machine OpenMP threads waiting for each other make it worse. These classes compute the same
numbers with the same floating-point operations in the same order (see each ``proba``), so
their answers are bit-for-bit scikit-learn's; ``fast_predictor`` still compares the two on
probe rows before using one and keeps scikit-learn when they differ (another library version).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from services.matching.tables import Floats

log = logging.getLogger("finmatch.matching.predictors")

Ints = npt.NDArray[np.int64]
PROBE_ROWS = 256
MAX_CACHED_SHAPES = 16


class Predictor(Protocol):
    def proba(self, x: Floats) -> Floats:
        """P(approved) per row, as ``estimator.predict_proba(x)[:, 1]``."""
        ...


class LinearPredictor:
    """StandardScaler + binary LogisticRegression: ``expit(((x − mean) / scale) · coef + b)``."""

    def __init__(self, scaler: StandardScaler, logistic: LogisticRegression) -> None:
        self.mean = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale = np.asarray(scaler.scale_, dtype=np.float64)
        self.coef_t = np.asarray(logistic.coef_, dtype=np.float64).T
        self.coef = self.coef_t[:, 0]
        self.intercept = np.asarray(logistic.intercept_, dtype=np.float64)

    def scaled(self, x: Floats) -> Floats:
        # StandardScaler.transform: X -= mean_; X /= scale_ (elementwise, so the same bits).
        out: Floats = (x - self.mean) / self.scale
        return out

    def proba(self, x: Floats) -> Floats:
        # LogisticRegression: X @ coef_.T + intercept_, then expit of the one column.
        scores: Floats = (self.scaled(x) @ self.coef_t + self.intercept).reshape(-1)
        p: Floats = expit(scores)
        return p


class TreesPredictor:
    """One HistGradientBoostingClassifier (numeric splits) behind a sigmoid calibrator.

    The trees are flattened into one node array, and every (row, tree) pair walks down one
    level per step, all pairs at once. A leaf points to itself, so a pair that reaches a leaf
    early stays there.
    """

    def __init__(self, booster: HistGradientBoostingClassifier, a: Any, b: Any) -> None:
        trees = [predictors[0].nodes for predictors in booster._predictors]
        sizes = np.array([len(nodes) for nodes in trees], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        nodes = np.concatenate(trees)
        own = np.arange(len(nodes), dtype=np.int64)
        shift = np.repeat(offsets, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, own, nodes["left"].astype(np.int64) + shift)
        right = np.where(leaf, own, nodes["right"].astype(np.int64) + shift)
        self.roots: Ints = offsets
        self.feature: Ints = np.where(leaf, 0, nodes["feature_idx"].astype(np.int64))
        self.threshold: Floats = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        # children[2·node + went_left]: one gather per step instead of two and a select.
        self.children: Ints = np.stack([right, left], axis=1).reshape(-1)
        self.value: Floats = nodes["value"].astype(np.float64)
        self.depth = int(nodes["depth"].max())
        self.baseline = float(np.asarray(booster._baseline_prediction).reshape(-1)[0])
        self.a, self.b = a, b
        # splits[f, t]: tree t splits on feature f somewhere.
        self.splits = np.zeros((int(booster.n_features_in_), len(trees)), dtype=bool)
        tree_of_node = np.repeat(np.arange(len(trees)), sizes)
        self.splits[self.feature[~leaf], tree_of_node[~leaf]] = True
        self._pairs: dict[tuple[int, tuple[tuple[int, ...], ...]], tuple[Ints, Ints]] = {}

    def _walk(self, flat: Floats, start: Ints, node: Ints) -> Ints:
        """The leaf each pair reaches: ``start`` is the offset of the pair's row in ``flat``
        (the rows, raveled) and ``node`` the root of its tree; any shapes that broadcast."""
        missing = bool(np.isnan(flat).any())
        for _ in range(self.depth):
            values = flat.take(start + self.feature.take(node))
            left = values <= self.threshold.take(node)
            if missing:  # as scikit-learn: NaN goes where training sent missing values
                left = np.where(np.isnan(values), self.missing_left.take(node), left)
            node = self.children.take(2 * node + left)
        return node

    def _proba_of_leaves(self, leaves: Ints) -> Floats:
        """P(approved) of rows × trees leaves: the booster's sum, then the calibrator.

        scikit-learn starts from zeros, adds the baseline, then one tree at a time in order; a
        cumulative sum along the row makes exactly those additions in that order. Then
        _SigmoidCalibration.predict: expit(-(a · T + b)).
        """
        steps = np.empty((len(leaves), len(self.roots) + 1))
        steps[:, 0] = 0.0 + self.baseline
        steps[:, 1:] = self.value.take(leaves)
        raw = np.cumsum(steps, axis=1)[:, -1]
        p: Floats = expit(-(self.a * raw + self.b))
        return p

    def _leaves(self, rows: Floats) -> Ints:
        n, width = rows.shape
        flat = np.ascontiguousarray(rows).reshape(-1)
        start = (np.arange(n, dtype=np.int64) * width)[:, None]
        return self._walk(flat, start, np.broadcast_to(self.roots, (n, len(self.roots))))

    def proba(self, x: Floats) -> Floats:
        return self._proba_of_leaves(self._leaves(x))

    def proba_occluded(
        self, stacked: Floats, n: int, groups: tuple[tuple[int, ...], ...]
    ) -> Floats:
        """``proba(stacked)`` where ``stacked`` is n rows, then those rows with the columns of
        groups[0] changed, then of groups[1], … (blocks of n rows).

        A block's rows differ from the first block only in its group's columns, so they reach
        the first block's leaves in every tree that never splits on those columns; only the
        other trees are walked again.
        """
        width = stacked.shape[1]
        flat = np.ascontiguousarray(stacked).reshape(-1)
        leaves = np.tile(self._leaves(stacked[:n]), (len(groups) + 1, 1))
        row, tree = self._occlusion_pairs(n, groups)
        leaves[row, tree] = self._walk(flat, row * width, self.roots.take(tree))
        return self._proba_of_leaves(leaves)

    def _occlusion_pairs(self, n: int, groups: tuple[tuple[int, ...], ...]) -> tuple[Ints, Ints]:
        """(row, tree) of every pair proba_occluded walks again; a handful of shapes recur."""
        key = (n, groups)
        pairs = self._pairs.get(key)
        if pairs is None:
            rows, trees = [], []
            for block, columns in enumerate(groups, start=1):
                using = np.flatnonzero(self.splits[list(columns)].any(axis=0))
                rows.append(np.repeat(np.arange(block * n, (block + 1) * n), len(using)))
                trees.append(np.tile(using, n))
            pairs = (np.concatenate(rows), np.concatenate(trees))
            if len(self._pairs) >= MAX_CACHED_SHAPES:
                self._pairs.pop(next(iter(self._pairs)))
            self._pairs[key] = pairs
        return pairs


def _trees(estimator: CalibratedClassifierCV) -> TreesPredictor | None:
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if calibrated is None or len(calibrated) != 1 or list(estimator.classes_) != [0, 1]:
        return None
    (one,) = calibrated
    booster = one.estimator
    if (
        one.method != "sigmoid"
        or len(one.calibrators) != 1
        or not isinstance(booster, HistGradientBoostingClassifier)
        or booster.n_trees_per_iteration_ != 1
        or list(booster.classes_) != [0, 1]
        or getattr(booster, "_preprocessor", None) is not None
        or any(p[0].nodes["is_categorical"].any() for p in booster._predictors)
    ):
        return None
    calibrator = one.calibrators[0]
    return TreesPredictor(booster, calibrator.a_, calibrator.b_)


def _linear(estimator: Pipeline) -> LinearPredictor | None:
    if len(estimator.steps) != 2:
        return None
    scaler, logistic = estimator[0], estimator[-1]
    if (
        not isinstance(scaler, StandardScaler)
        or not isinstance(logistic, LogisticRegression)
        or not (scaler.with_mean and scaler.with_std)
        or list(logistic.classes_) != [0, 1]
        or np.asarray(logistic.coef_).shape[0] != 1
    ):
        return None
    return LinearPredictor(scaler, logistic)


def probe_rows(means: Floats, seed: int = 0) -> Floats:
    """Rows around the training means, at many scales, plus the means themselves."""
    rng = np.random.default_rng(seed)
    spread = np.abs(means) + 1.0
    rows = means + rng.standard_normal((PROBE_ROWS, len(means))) * spread * rng.choice(
        [0.01, 0.3, 1.0, 3.0], size=(PROBE_ROWS, 1)
    )
    rows[::7] = np.round(rows[::7])  # whole numbers, as counts and flags are
    rows[0] = means
    out: Floats = rows
    return out


def fast_predictor(estimator: Any, means: Floats) -> Predictor | None:
    """The fast path of ``estimator`` if it is one we know and agrees exactly on probe rows."""
    try:
        if isinstance(estimator, Pipeline):
            predictor: Predictor | None = _linear(estimator)
        elif isinstance(estimator, CalibratedClassifierCV):
            predictor = _trees(estimator)
        else:
            predictor = None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        log.warning("no fast path for %s: %r", type(estimator).__name__, exc)
        return None
    if predictor is None:
        return None
    rows = probe_rows(means)
    if not np.array_equal(predictor.proba(rows), estimator.predict_proba(rows)[:, 1]):
        log.warning("the fast path of %s disagrees with it: not used", type(estimator).__name__)
        return None
    return predictor
