"""Every registered firm as numpy columns, kept in step with the registry's firm feed.

Coverage, the policy what-if and the reach preview ask about the whole population, so the
matching service keeps it: one row per firm, in id order, in the smallest dtype that holds each
field exactly (money as float64, exact below 2**53 yuan; counts int32; flags bool; codes int8;
the founding date as days). About 115 bytes per firm, ``nbytes`` says exactly; 1,000,000 firms
take about 115 MB. ``apply`` writes a page of the feed in place (changed firms replaced,
new ones inserted in id order, erased ones dropped), so an answer can follow every write.

A criterion's firm values (``criterion_values``) are read off these columns by the criterion
registry's own arithmetic (``combine``), as FirmTable reads them off FirmFeatures, so a rule
evaluated here is the rule ranking evaluates.

Official registers: the feed gives each gating attribute as declared, and beside it the
registers published and their entries with their dates (RegisterEntries). Wherever a register
is published, a gating attribute reads as that register says on ``registers_on`` (China's
date), as the registry's provenance reads it for a firm answer: a certificate stops counting
the day after its last day with no write at all, because the dates, not a value, are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.tables import (
    FIELD_COLUMNS,
    SECTION_LETTERS,
    SIZE_CLASSES,
    TOWN_CODES,
    Bools,
    FirmTable,
    Floats,
    Ints,
    verified_criteria,
)
from shared.china_date import today_in_china
from shared.criteria import CRITERIA, Criterion, combine, years_between
from shared.enums import CreditRating, RegisterKind
from shared.schemas.firm import FirmFeatures
from shared.schemas.internal import FIRM_FEED_COLUMNS, REGISTER_ENTRY_COLUMNS
from shared.schemas.registers import REGISTERED_FIELDS

Column = npt.NDArray[Any]
EPOCH = date(1970, 1, 1)

_RATING_RANKS: dict[str | None, int] = {None: 0} | {r.value: r.rank for r in CreditRating}
_CODES: dict[str, tuple[str, ...]] = {
    "town_code": TOWN_CODES,
    "industry_section": SECTION_LETTERS,
    "size_class": tuple(str(s) for s in SIZE_CLASSES),
}
_MONEY = (
    "annual_revenue_yuan",
    "total_assets_yuan",
    "export_revenue_usd",
    "gov_procurement_contracts_yuan",
    "core_enterprise_receivables_yuan",
    "collateral_real_estate_yuan",
    "collateral_equipment_yuan",
    "need_amount_yuan",  # NaN when not stated
)
_COUNTS = ("employees", "invention_patents", "utility_patents", "trademarks")
_FLAGS = (
    "consent_matching",
    "is_high_tech",
    "is_specialized_sme",
    "is_green_listed",
    "has_borrowed_before",
)


def _codes(vocabulary: Sequence[str]) -> Callable[[list[Any]], Column]:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return lambda values: np.fromiter((lookup[v] for v in values), dtype=np.int8, count=len(values))


def _days(values: list[Any]) -> Column:
    return np.array(values, dtype="datetime64[D]").astype(np.int32)


# How each kept field is read from the feed's column (a list of JSON values).
_READERS: dict[str, Callable[[list[Any]], Column]] = {
    **{name: _codes(vocabulary) for name, vocabulary in _CODES.items()},
    **{name: (lambda v: np.array(v, dtype=np.float64)) for name in _MONEY},
    **{name: (lambda v: np.array(v, dtype=np.int32)) for name in _COUNTS},
    **{name: (lambda v: np.array(v, dtype=np.bool_)) for name in _FLAGS},
    "need_term_months": lambda v: np.array(v, dtype=np.float32),  # NaN when not stated
    "credit_rating": lambda v: np.fromiter(
        (_RATING_RANKS[x] for x in v), dtype=np.int8, count=len(v)
    ),
    "established_on": _days,
}
# Every field a criterion or a FirmTable reads is kept (a new one fails here, at import).
_NEEDED = {f for c in CRITERIA for f in c.firm_fields} | set(FIELD_COLUMNS)
assert set(_READERS) >= _NEEDED, _NEEDED - set(_READERS)
assert set(_READERS) <= set(FIRM_FEED_COLUMNS)


_KINDS: tuple[RegisterKind, ...] = tuple(RegisterKind)
_NO_END = np.iinfo(np.int32).max


class RegisterEntries:
    """Register entries as columns: the firm, its register, first and last day (days since
    1970; no end: the largest int32) and the yuan it is worth (0 where none)."""

    def __init__(
        self, firm_ids: Ints, kinds: Column, starts: Column, ends: Column, amounts: Floats
    ) -> None:
        self.firm_ids, self.kinds = firm_ids, kinds
        self.starts, self.ends, self.amounts = starts, ends, amounts

    def __len__(self) -> int:
        return len(self.firm_ids)

    @classmethod
    def from_feed(cls, entries: dict[str, list[Any]]) -> RegisterEntries:
        kind_index = {k.value: i for i, k in enumerate(_KINDS)}
        ends = [
            _NO_END if e is None else (date.fromisoformat(e) - EPOCH).days
            for e in entries["ends_on"]
        ]
        return cls(
            np.array(entries["firm_id"], dtype=np.int64),
            np.array([kind_index[k] for k in entries["kind"]], dtype=np.int8),
            _days(entries["starts_on"]),
            np.array(ends, dtype=np.int32),
            np.array([a or 0 for a in entries["amount_yuan"]], dtype=np.float64),
        )

    def keep(self, rows: Column) -> RegisterEntries:
        return RegisterEntries(
            self.firm_ids[rows],
            self.kinds[rows],
            self.starts[rows],
            self.ends[rows],
            self.amounts[rows],
        )

    def plus(self, other: RegisterEntries) -> RegisterEntries:
        return RegisterEntries(
            *(
                np.concatenate([getattr(self, name), getattr(other, name)])
                for name in ("firm_ids", "kinds", "starts", "ends", "amounts")
            )
        )


_NO_ENTRIES: dict[str, list[Any]] = {name: [] for name in REGISTER_ENTRY_COLUMNS}


class FirmColumns:
    """The registered firms, one row each in id order; ``years`` is their age on ``as_of``."""

    def __init__(self, ids: Ints, data: dict[str, Column]) -> None:
        self.ids = ids
        self.data = data
        self.as_of: date | None = None
        self.years: Floats = np.zeros(len(ids), dtype=np.float64)
        self.generation = 0  # counts writes: what is derived from the columns keys on it
        # The published registers (kind → version) and their entries; the gating attributes
        # as they read on ``registers_on`` (None: China's date when asked), kept per
        # (generation, day).
        self.registers: dict[str, int] = {}
        self.entries = RegisterEntries.from_feed(_NO_ENTRIES)
        self.registers_on: date | None = None
        self._registered: tuple[tuple[int, date], dict[str, Column]] | None = None

    @property
    def m(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        entries: int = sum(
            int(getattr(self.entries, name).nbytes)
            for name in ("firm_ids", "kinds", "starts", "ends", "amounts")
        )
        columns = sum(c.nbytes for c in self.data.values())
        return self.ids.nbytes + self.years.nbytes + columns + entries

    @classmethod
    def empty(cls) -> FirmColumns:
        return cls.from_feed({name: [] for name in FIRM_FEED_COLUMNS})

    @classmethod
    def from_feed(cls, columns: dict[str, list[Any]]) -> FirmColumns:
        """From a feed page's columns (already in id order)."""
        ids = np.array(columns["id"], dtype=np.int64)
        return cls(ids, {name: read(columns[name]) for name, read in _READERS.items()})

    @classmethod
    def from_firms(cls, firms: Sequence[FirmFeatures], consent: Sequence[bool]) -> FirmColumns:
        """From FirmFeatures (ids 1…n in the given order): for tests and tools."""
        rows = [
            {"id": i, "consent_matching": ok} | f.model_dump(mode="json")
            for i, (f, ok) in enumerate(zip(firms, consent, strict=True), start=1)
        ]
        return cls.from_feed({name: [r[name] for r in rows] for name in FIRM_FEED_COLUMNS})

    # --- keeping in step ---------------------------------------------------------------

    def apply_registers(
        self,
        registers: dict[str, int],
        entries: RegisterEntries,
        *,
        written: Ints,
        replaced: Sequence[str],
        after_id: int,
        up_to_id: int | None,
    ) -> None:
        """A feed page's register part (see FirmFeedPage): the entries of the firms
        ``written`` and, for the ``replaced`` registers, of every firm in (after_id, up_to_id]
        give way to the page's ``entries``; ``registers`` is every published register."""
        drop = np.isin(self.entries.firm_ids, written)
        if replaced:
            kinds = [_KINDS.index(RegisterKind(k)) for k in replaced]
            in_range = self.entries.firm_ids > after_id
            if up_to_id is not None:
                in_range &= self.entries.firm_ids <= up_to_id
            drop |= np.isin(self.entries.kinds, kinds) & in_range
        if drop.any() or len(entries) or registers != self.registers:
            self.entries = self.entries.keep(np.flatnonzero(~drop)).plus(entries)
            self.registers = dict(registers)
            self.generation += 1

    def apply(self, changed: FirmColumns, erased: Sequence[int] = ()) -> None:
        """Write the changed firms (replacing those known, inserting new ones in id order)
        and drop the erased ones; ages of the written rows follow ``as_of``.

        Erasures go first: a row of the same read exists at that read, even under an erased
        id (SQLite gives the highest id again once its firm is erased)."""
        if len(erased):
            gone = np.asarray(erased, dtype=np.int64)
            pos = np.searchsorted(self.ids, gone)
            hit = pos < self.m
            hit[hit] = self.ids[pos[hit]] == gone[hit]
            self._keep(np.setdiff1d(np.arange(self.m), pos[hit], assume_unique=True))
            gone_entries = np.isin(self.entries.firm_ids, gone)
            if gone_entries.any():
                self.entries = self.entries.keep(np.flatnonzero(~gone_entries))
        if changed.m:
            pos = np.searchsorted(self.ids, changed.ids)
            known = pos < self.m
            known[known] = self.ids[pos[known]] == changed.ids[known]
            if known.any():
                for name, column in self.data.items():
                    column[pos[known]] = changed.data[name][known]
            new = ~known
            if new.any():
                self._insert(changed.ids[new], {k: v[new] for k, v in changed.data.items()})
        if changed.m and self.as_of is not None:
            rows = np.searchsorted(self.ids, changed.ids)
            self.years[rows] = _years(self.data["established_on"][rows], self.as_of)
        if changed.m or len(erased):
            self.generation += 1

    def _insert(self, ids: Ints, data: dict[str, Column]) -> None:
        appended = self.m == 0 or ids[0] > self.ids[-1]  # ids arrive sorted: the usual case
        self.ids = np.concatenate([self.ids, ids])
        self.years = np.concatenate([self.years, np.zeros(len(ids), dtype=np.float64)])
        self.data = {k: np.concatenate([v, data[k]]) for k, v in self.data.items()}
        if not appended:  # an id allocated earlier committed later: restore the id order
            self._keep(np.argsort(self.ids, kind="stable"))

    def _keep(self, rows: Ints) -> None:
        self.ids = self.ids[rows]
        self.years = self.years[rows]
        self.data = {k: v[rows] for k, v in self.data.items()}

    def date_to(self, as_of: date) -> None:
        """Every firm's age on ``as_of`` (once a day: the ages of a day are kept)."""
        if self.as_of != as_of:
            self.years = _years(self.data["established_on"], as_of)
            self.as_of = as_of
            self.generation += 1

    # --- reading ------------------------------------------------------------------------

    def verify_on(self, day: date) -> None:
        """Read the registers' entries on ``day`` (tests and tools; else China's today)."""
        self.registers_on = day

    @property
    def verified(self) -> Bools:
        """Per criterion: whether the firms' values come from an official register."""
        return verified_criteria(
            [name for name, kind in REGISTERED_FIELDS.items() if kind.value in self.registers]
        )

    def _register_readings(self) -> dict[str, Column]:
        """Each gating attribute a published register covers, as it reads on the day."""
        day = self.registers_on or today_in_china()
        key = (self.generation, day)
        if self._registered is not None and self._registered[0] == key:
            return self._registered[1]
        n = (day - EPOCH).days
        entries = self.entries
        valid = (entries.starts <= n) & (entries.ends >= n)
        pos = np.searchsorted(self.ids, entries.firm_ids)
        known = pos < self.m
        known[known] = self.ids[pos[known]] == entries.firm_ids[known]
        valid &= known
        readings: dict[str, Column] = {}
        for name, kind in REGISTERED_FIELDS.items():
            if kind.value not in self.registers:
                continue
            mine = valid & (entries.kinds == _KINDS.index(kind))
            declared = self.data[name]
            if declared.dtype == np.bool_:
                held = np.zeros(self.m, dtype=np.bool_)
                held[pos[mine]] = True
                readings[name] = held
            else:  # the yuan of the entries valid on the day, added up
                total = np.zeros(self.m, dtype=declared.dtype)
                np.add.at(total, pos[mine], entries.amounts[mine])
                readings[name] = total
        self._registered = (key, readings)
        return readings

    def field(self, name: str, rows: Ints | None = None) -> Column:
        """A FirmFeatures field as the number a criterion compares (field_number's reading:
        a date its years since ``as_of``, a rating its rank, a flag as a boolean); a gating
        attribute as its register reads, wherever one is published."""
        if name == "established_on":
            column = self.years
        elif name in REGISTERED_FIELDS and REGISTERED_FIELDS[name].value in self.registers:
            column = self._register_readings()[name]
        else:
            column = self.data[name]
        return column if rows is None else column[rows]

    def criterion_values(self, criterion: Criterion, rows: Ints | None = None) -> Column:
        """Each firm's value for a numeric or flag criterion; a list criterion's: its code."""
        if criterion.is_list:
            return self.field(criterion.firm_fields[0], rows)
        return np.asarray(combine(criterion, [self.field(f, rows) for f in criterion.firm_fields]))

    def firm_table(self, rows: Ints) -> FirmTable:
        """The given firms as a FirmTable (for the model), as FirmTable.from_firms builds it."""
        floats = {
            column: self.field(name, rows).astype(np.float64)
            for name, column in FIELD_COLUMNS.items()
        }
        values = [self.criterion_values(c, rows).astype(np.float64) for c in CRITERIA]
        return FirmTable(
            town=self.data["town_code"][rows].astype(np.int64),
            section=self.data["industry_section"][rows].astype(np.int64),
            size=self.data["size_class"][rows].astype(np.int64),
            **floats,
            values=np.stack(values, axis=1).reshape(len(rows), len(CRITERIA)),
            need_amount=self.data["need_amount_yuan"][rows],
            need_term=self.data["need_term_months"][rows].astype(np.float64),
            verified=np.broadcast_to(self.verified, (len(rows), len(CRITERIA))),
        )


def _years(days: Column, as_of: date) -> Floats:
    """years_between for each founding date: computed once per distinct date (a few
    thousand), so the calendar rule is the registry's own function, not a restatement."""
    unique, inverse = np.unique(days, return_inverse=True)
    ages = np.array(
        [years_between(EPOCH + timedelta(days=int(d)), as_of) for d in unique.tolist()],
        dtype=np.float64,
    )
    out: Floats = ages[inverse].reshape(len(days))
    return out
