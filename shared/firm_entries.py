"""Each firm as the registry last committed it, kept in Redis for the gateway's match path.

The registry (the system of record) writes a firm's entry after every commit that changes the
firm, and a tombstone when it is erased; the gateway reads the entry in the round trip it makes
anyway, so an uncached match needs no registry call for its firm. An entry that is missing
(expired, evicted, never written, Redis down) is read from the registry, and the gateway writes
what it read back.

Writes race (two registry replicas, or a gateway writing back what it read just before a
commit), so every write goes through one script that keeps the newest: entries are ordered by
(when the firm was registered, its version). A tombstone outranks every version of the same
registration, so a late write can never bring an erased firm back; a later registration under
the same id (SQLite reuses ids) outranks the tombstone. A *marker* is an entry without a body:
"this version or a newer one exists" (a bulk import writes markers, not whole firms); it is
read as a miss, and refuses every older write.

Before a commit that changes a firm the registry writes a marker of the new version (or the
tombstone), after it the entry itself: if the registry dies in between, or the commit fails, the
marker sends the gateway to the registry, which answers what was committed.

The value: ``<registered µs>|<version or D>\\n<FirmPublic JSON, as the registry answers the
owner>``, the JSON with one more member, ``entry_stamp``: the day (China time) and the
registers' generation it was read under. A firm's provenance (an official register's value
over the portal's, expiry by date) changes with a register upload or with the date, without a
write to the firm; an entry counts only under the stamp of now, and the stamp is taken before
the registers are read, so an upload that lands meanwhile makes the entry a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import orjson

KEY_PREFIX: Final = "firm_entry:"
# Bumped (INCR) after each register upload is published: every firm's provenance may change.
REGISTERS_GENERATION: Final = "registers:generation"
STAMP_FIELD: Final = "entry_stamp"
# Present while a registry keeps the entries: it sets this key every second or so with a TTL
# of a few, and stops while writes it made did not reach Redis. A gateway reads and writes
# entries only while it is present (a registry without Redis writes none, and its firms'
# entries would go stale).
WRITER_KEY: Final = "firm_entry:writer"
TOMBSTONE: Final = "D"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS: the entries; ARGV[1]: TTL in ms, then for each key (registered µs, version or "D",
# body). Returns how many were written. A write lands when it is newer than the entry held:
# a later registration, or the same one at a higher version (a tombstone is the highest), or
# the same version with a body where a marker was.
WRITE_SCRIPT: Final = """
local written = 0
for i, key in ipairs(KEYS) do
  local registered = tonumber(ARGV[3 * i - 1])
  local version_text = ARGV[3 * i]
  local body = ARGV[3 * i + 1]
  local version = version_text == 'D' and math.huge or tonumber(version_text)
  local write = true
  local held = redis.call('GET', key)
  if held then
    local held_registered, held_version, held_body = string.match(held, '^(%d+)|(%w+)\\n(.*)$')
    if held_registered then
      held_registered = tonumber(held_registered)
      held_version = held_version == 'D' and math.huge or tonumber(held_version)
      if registered < held_registered then
        write = false
      elseif registered == held_registered then
        if version < held_version then
          write = false
        elseif version == held_version and (body == '' or held_body ~= '') then
          write = false
        end
      end
    end
  end
  if write then
    redis.call('SET', key, ARGV[3 * i - 1] .. '|' .. version_text .. '\\n' .. body, 'PX', ARGV[1])
    written = written + 1
  end
end
return written
"""


def entry_key(firm_id: int) -> str:
    """The entry's key, without the deployment's prefix (FINMATCH_REDIS_PREFIX)."""
    return f"{KEY_PREFIX}{firm_id}"


def registered_micros(created_at: datetime | str) -> int:
    """A registration's order: its ``created_at`` in whole µs since 1970 (exact, no float)."""
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at)
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return (created_at - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class EntryWrite:
    """One write for WRITE_SCRIPT: an entry (with its body), a marker or a tombstone."""

    firm_id: int
    registered: int
    version: int | None  # None: a tombstone
    body: bytes = b""

    @classmethod
    def of_firm(cls, firm: dict[str, Any], body: bytes) -> EntryWrite:
        """The entry of a firm as the registry answers its owner: ``firm`` parsed, ``body`` its
        FirmPublic JSON."""
        registered = registered_micros(firm["created_at"])
        return cls(int(firm["id"]), registered, int(firm["version"]), body)

    @property
    def args(self) -> tuple[str, str, bytes]:
        version = TOMBSTONE if self.version is None else str(self.version)
        return str(self.registered), version, self.body


def script_arguments(writes: Sequence[EntryWrite], ttl_ms: int) -> tuple[list[str], list[Any]]:
    """KEYS (unprefixed) and ARGV of WRITE_SCRIPT for these writes."""
    keys = [entry_key(w.firm_id) for w in writes]
    argv: list[Any] = [ttl_ms]
    for write in writes:
        argv.extend(write.args)
    return keys, argv


@dataclass(frozen=True, slots=True)
class FirmEntry:
    """A firm read from its entry: the registry's answer to its owner, and its ETag."""

    firm: dict[str, Any]
    etag: str


# KEYS[1]: an entry; ARGV[1]: the value read. Deletes the entry if it still holds that value (an
# entry read under an older stamp, about to be replaced: WRITE_SCRIPT keeps a held entry of the
# same version, and a marker or a newer entry written since must stay).
DELETE_IF_HELD_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def entry_stamp(registers_generation: bytes | None, today: date) -> str:
    """The stamp an entry is valid under: the China date and the registers' generation (the
    value of REGISTERS_GENERATION, read before the firm's provenance was)."""
    return f"{today.isoformat()}/{(registers_generation or b'0').decode()}"


def stamped_body(firm_json: bytes, stamp: str) -> bytes:
    """A FirmPublic JSON object with the entry's stamp added."""
    firm = orjson.loads(firm_json)
    firm[STAMP_FIELD] = stamp
    return orjson.dumps(firm)


def read_entry(value: bytes | None, stamp: str | None = None) -> FirmEntry | None:
    """The firm in an entry; None for no entry, a marker, a tombstone, an unreadable value or
    (given ``stamp``) one read under another stamp (each of them a miss: the registry is
    asked)."""
    if not value:
        return None
    head, _, body = value.partition(b"\n")
    if not body:
        return None
    try:
        firm = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(firm, dict):
        return None
    version = head.rpartition(b"|")[2]
    if not version.isdigit() or firm.get("version") != int(version):
        return None
    held_stamp = firm.pop(STAMP_FIELD, None)
    if stamp is not None and held_stamp != stamp:
        return None
    return FirmEntry(firm, f'"{int(version)}"')
