"""The garbage collector and a long-lived service: freeze what start-up built.

A service imports numpy, scikit-learn, FastAPI, SQLAlchemy and pydantic and builds its app: a
few hundred thousand objects that live as long as the process. CPython's full (generation 2)
collections walk all of them, and under load they came every few seconds and held the event
loop for 60-120 ms each (measured in the gateway and matching during ``make bench-api``): the
99th percentile of every request was one of those pauses. ``gc.freeze()`` moves everything
alive at the end of start-up into a permanent generation that collections skip; objects made
later are collected as before, and reference counting still frees frozen objects that are
dropped (only cycles among them are kept).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("finmatch.heap")


def freeze_startup_heap(enabled: bool) -> int:
    """Collect once, then freeze the survivors; returns how many objects are frozen now.

    ``enabled`` is the service's ``gc_freeze`` setting (FINMATCH_GC_FREEZE): the test suite
    turns it off, since it builds hundreds of apps in one process and would keep each one's
    cycles for good.
    """
    if not enabled:
        return 0
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects outside garbage collection", frozen)
    return frozen
