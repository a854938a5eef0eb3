"""Cache lookups counted by key namespace and backend, for the hit ratio on the dashboards."""

from __future__ import annotations

import re
from typing import Any, Final

from prometheus_client import Counter

_LOOKUP_LABELS: Final = ["namespace", "backend"]
CACHE_HITS: Final = Counter(
    "finmatch_cache_hits_total",
    "Cache lookups that found a value, by key namespace (the key's first segment: key, match, "
    "stats, ...) and backend (redis; local: in-process, also while Redis is down). Hit ratio: "
    "sum(rate(finmatch_cache_hits_total[5m])) / (sum(rate(finmatch_cache_hits_total[5m])) "
    "+ sum(rate(finmatch_cache_misses_total[5m]))).",
    _LOOKUP_LABELS,
)
CACHE_MISSES: Final = Counter(
    "finmatch_cache_misses_total",
    "Cache lookups that found nothing (absent or expired), by key namespace and backend.",
    _LOOKUP_LABELS,
)
_NAMESPACE = re.compile(r"[a-z][a-z_]{0,31}")
_lookup_counters: dict[tuple[str, str, bool], Any] = {}


def count_lookup(key: str, backend: str, hit: bool) -> None:
    """One lookup in the hit or miss counter; Counter.labels() is too slow to call each time."""
    namespace = key.partition(":")[0]
    counter = _lookup_counters.get((namespace, backend, hit))
    if counter is None:
        # Keys are built by our code from a literal first segment; anything else is one label.
        label = namespace if _NAMESPACE.fullmatch(namespace) else "other"
        counter = (CACHE_HITS if hit else CACHE_MISSES).labels(label, backend)
        if label == namespace:
            _lookup_counters[(namespace, backend, hit)] = counter
    counter.inc()
