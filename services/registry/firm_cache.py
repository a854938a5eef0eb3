"""Writing each firm's entry through to Redis around every commit that changes it (see
shared/firm_entries.py for the entry, its ordering and who reads it).

The writes happen in the request that made the change, in the committing thread (hooks on the
session: services.registry.db.around_commit): a marker of the new version just before the
commit, the entry just after it, so the gateway's next match reads the firm as committed.

If Redis does not take a write (down, too slow), the firm id is remembered with the version it
must be at least, and that is written as a marker as soon as Redis answers again (before the
next write, and by the registry's loop every FINMATCH_FIRM_ENTRY_RETRY_SECONDS); a marker
refuses every older entry and reads as a miss, so the gateway asks the registry. While anything
is pending the registry stops renewing its lease (WRITER_KEY), so gateways stop reading entries
within 3 × that (at least 3 s); a gateway that forwarded a firm write while Redis was
down for it deletes that entry when Redis is back, before it reads Redis again. If more ids are
pending than ``MAX_PENDING``, every entry is deleted once Redis is back instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final, cast

import redis
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.models import Firm
from services.registry.registers.provenance import firms_public
from shared.china_date import today_in_china
from shared.firm_entries import (
    KEY_PREFIX,
    REGISTERS_GENERATION,
    WRITE_SCRIPT,
    WRITER_KEY,
    EntryWrite,
    entry_stamp,
    registered_micros,
    script_arguments,
    stamped_body,
)
from shared.schemas.firm import FirmPublic

log = logging.getLogger("finmatch.registry.firm_cache")
MAX_PENDING: Final = 100_000
# Entries per script call: a bulk import's batch is split so that Redis is never blocked long.
CHUNK: Final = 1_000


def entry_of(firm: Firm, answer: FirmPublic, stamp: str | None) -> EntryWrite:
    """The entry of a firm as committed: its answer as the owner reads it, under ``stamp``
    (taken before the answer's provenance was read); without a stamp, a marker."""
    assert firm.id is not None
    body = b"" if stamp is None else stamped_body(answer.model_dump_json().encode(), stamp)
    return EntryWrite(firm.id, registered_micros(firm.created_at), firm.version, body)


def tombstone_of(firm: Firm) -> EntryWrite:
    assert firm.id is not None
    return EntryWrite(firm.id, registered_micros(firm.created_at), None)


class FirmCache:
    """The registry's writer of firm entries (synchronous: writes run in the request's thread)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "finmatch:",
        ttl_seconds: float = 7 * 86_400,
        timeout_seconds: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        # Fail fast, no retries of its own, no maintenance notifications: as the gateway's
        # client (services/gateway/redis_guard.py says why).
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._script = self.client.register_script(WRITE_SCRIPT)
        self._lock = threading.Lock()
        # firm id → the write that did not reach Redis (the newest one per firm)
        self._pending: dict[int, EntryWrite] = {}
        self._overflow = False

    @property
    def pending(self) -> int:
        return len(self._pending) + (1 if self._overflow else 0)

    def write(self, writes: Sequence[EntryWrite]) -> bool:
        """Write these entries (markers, tombstones) now; on failure remember them. True when
        Redis took them (and everything pending before)."""
        if not writes:
            return True
        if (self._pending or self._overflow) and not self.replay():
            self._remember(writes)
            return False
        try:
            self._run(writes)
        except (redis.RedisError, OSError) as exc:
            log.warning("firm entries: Redis did not take %d writes (%s)", len(writes), exc)
            self._remember(writes)
            self.replay()  # once more, as markers: a timeout may be one slow command
            return False
        return True

    def replay(self) -> bool:
        """Write what is pending, as markers (tombstones stay tombstones); True when none is
        left. Called before each write and by the registry's retry loop."""
        with self._lock:
            pending = list(self._pending.values())
            overflow = self._overflow
        if not pending and not overflow:
            return True
        try:
            if overflow:
                self._delete_all()
            else:
                self._run([EntryWrite(w.firm_id, w.registered, w.version) for w in pending])
        except (redis.RedisError, OSError) as exc:
            log.debug("firm entries: replay failed (%s)", exc)
            return False
        with self._lock:
            for write in pending:
                if self._pending.get(write.firm_id) is write:
                    del self._pending[write.firm_id]
            if overflow:
                self._overflow = False
        log.info("firm entries: %s written after Redis came back", len(pending) or "all deleted")
        return not self._pending and not self._overflow

    def keep_lease(self, lease_seconds: float) -> bool:
        """Say for ``lease_seconds`` that this registry keeps the entries (WRITER_KEY), once
        nothing is pending; the registry's loop calls it more often than that. True if said."""
        if (self._pending or self._overflow) and not self.replay():
            return False
        try:
            self.client.set(self.prefix + WRITER_KEY, b"1", px=max(1, round(lease_seconds * 1000)))
        except (redis.RedisError, OSError) as exc:
            log.debug("firm entries: lease not renewed (%s)", exc)
            return False
        return True

    def fill(self, engine: Engine, page: int = CHUNK) -> int:
        """Write every firm's entry as the database holds it now (older entries give way; a
        newer one stays): after enabling the entries on a running deployment, or to warm them.
        Returns the number of firms read. Raises if Redis fails."""
        count, after = 0, 0
        while True:
            with Session(engine) as session:
                firms = session.exec(
                    select(Firm).where(col(Firm.id) > after).order_by(col(Firm.id)).limit(page)
                ).all()
                stamp = self.stamp()
                if stamp is None:
                    raise redis.ConnectionError("the registers' generation could not be read")
                answers = firms_public(session.connection(), firms)
                writes = [
                    entry_of(firm, answer, stamp)
                    for firm, answer in zip(firms, answers, strict=True)
                ]
            if not writes:
                return count
            self._run(writes)
            count += len(writes)
            after = writes[-1].firm_id

    def stamp(self) -> str | None:
        """The stamp entries written now are valid under (shared/firm_entries.py); None if
        Redis does not answer (then only markers are written)."""
        try:
            generation = self.client.get(self.prefix + REGISTERS_GENERATION)
        except (redis.RedisError, OSError) as exc:
            log.debug("firm entries: registers' generation not read (%s)", exc)
            return None
        return entry_stamp(cast(bytes | None, generation), today_in_china())

    def clear(self) -> None:
        """Delete every entry (after firms were changed by hand, bypassing the registry)."""
        self._delete_all()

    def close(self) -> None:
        self.client.close()

    def _run(self, writes: Sequence[EntryWrite]) -> None:
        for start in range(0, len(writes), CHUNK):
            keys, argv = script_arguments(writes[start : start + CHUNK], self.ttl_ms)
            self._script(keys=[self.prefix + k for k in keys], args=argv)

    def _remember(self, writes: Iterable[EntryWrite]) -> None:
        with self._lock:
            for write in writes:
                if self._overflow:
                    return
                held = self._pending.get(write.firm_id)
                if held is None or _order(write) >= _order(held):
                    self._pending[write.firm_id] = write
                if len(self._pending) > MAX_PENDING:
                    log.warning("firm entries: too many pending; all will be deleted")
                    self._pending.clear()
                    self._overflow = True

    def _delete_all(self) -> None:
        batch: list[Any] = []
        for key in self.client.scan_iter(match=f"{self.prefix}{KEY_PREFIX}*", count=1_000):
            batch.append(key)
            if len(batch) >= 1_000:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)


def _order(write: EntryWrite) -> tuple[int, float]:
    return write.registered, float("inf") if write.version is None else write.version
