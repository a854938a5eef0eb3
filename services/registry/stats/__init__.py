"""Officials' statistics as SQL aggregates over applications, firms and match events.

Every figure is computed from the rows themselves (no counters kept on the side), so a figure
can always be traced back to the records behind it. The overview, every breakdown, the league
table, the targets' amounts and the matched firms that never applied read the statistics cube
(``cube``: the rows summed per month, kept up to date by ``refresh``; percentiles
computed in NumPy over the months' response hours); the firms registered now are counted from
the rows at each request.

Privacy: a cell drawn from fewer than ``MIN_CELL_FIRMS`` distinct firms is suppressed (its
figures are None), so no single firm can be picked out of a table (see ``cells``).

The modules: ``tables`` and ``china_time`` (the rows read, the calendar they are read by),
``filters`` (what a query narrows by), ``measures`` (the aggregates the answers share),
``cells`` (a breakdown's labelled, withheld-when-small rows), ``cube`` (the cube's build
and read), ``delta`` and ``refresh`` (keeping it up to date), and the answers:
``cube_answers``, ``row_answers`` and ``league``. The names below are the surface the API and
the CLI use.
"""

from __future__ import annotations

from services.registry.stats.cells import MIN_CELL_FIRMS
from services.registry.stats.china_time import CHINA_TZ
from services.registry.stats.cube_answers import (
    CUBE_DIMENSIONS,
    breakdown,
    category_amounts,
    matched_without_application,
    overview,
)
from services.registry.stats.filters import Filters
from services.registry.stats.league import deadline_offsets, institutions
from services.registry.stats.refresh import refresh as refresh_cube
from services.registry.stats.row_answers import (
    breakdown_from_rows,
    firms_by_size,
    registered_firms,
)

__all__ = [
    "CHINA_TZ",
    "CUBE_DIMENSIONS",
    "MIN_CELL_FIRMS",
    "Filters",
    "breakdown",
    "breakdown_from_rows",
    "category_amounts",
    "deadline_offsets",
    "firms_by_size",
    "institutions",
    "matched_without_application",
    "overview",
    "refresh_cube",
    "registered_firms",
]
