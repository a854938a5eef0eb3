"""What a phase must have answered: statuses, stored answers, the expected bytes."""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import redis

from bench.api.common import CACHE_PREFIX, MODEL_SWITCH_TIMEOUT_SECONDS, BenchFailure, matches_path
from bench.api.phases import Phase


def check_statuses(phase: Phase) -> None:
    bad = Counter(s for s in phase.statuses if s != 200)
    if bad:
        summary = ", ".join(f"{n}× {s or 'no answer'}" for s, n in bad.most_common())
        raise BenchFailure(f"{phase.name}: {sum(bad.values())} requests failed ({summary})")


def check_answer(answer: dict[str, Any], firm_id: int, expect: Expectation) -> list[str]:
    problems = []
    if answer.get("firm_id") != firm_id:
        problems.append(f"firm_id {answer.get('firm_id')}")
    if answer.get("degraded") is not False:
        problems.append(f"degraded: {answer.get('degraded_reason')}")
    if answer.get("model_version") != expect.model_version:
        problems.append(f"model {answer.get('model_version')}, expected {expect.model_version}")
    if answer.get("is_prior") is not expect.is_prior:
        problems.append(f"is_prior {answer.get('is_prior')}")
    if answer.get("catalogue_version") != expect.catalogue_version:
        problems.append(f"catalogue {answer.get('catalogue_version')}")
    if answer.get("evaluated") != expect.products:
        problems.append(f"evaluated {answer.get('evaluated')} products, not {expect.products}")
    return problems


@dataclass
class Expectation:
    model_version: str
    is_prior: bool
    catalogue_version: str
    products: int


def cache_keys(cache: redis.Redis, portal_id: int) -> dict[int, list[bytes]]:
    """Stored match answers of the portal's firms, by firm id."""
    prefix = f"{CACHE_PREFIX}match:{portal_id}:"
    found: dict[int, list[bytes]] = {}
    for key in cache.scan_iter(match=prefix + "*", count=5000):
        firm = int(key[len(prefix) :].split(b":", 1)[0])
        found.setdefault(firm, []).append(key)
    return found


def verify_uncached(
    phase: Phase,
    firms: Sequence[int],
    cache: redis.Redis,
    portal_id: int,
    expect: Expectation,
    before: dict[int, list[bytes]],
) -> list[int]:
    """Each request missed (its firm has exactly one new stored answer), matching ranked it with
    the expected model and catalogue, and the client got exactly the bytes that were stored.
    Returns the eligible count of each answer."""
    check_statuses(phase)
    after = cache_keys(cache, portal_id)
    problems: list[str] = []
    eligible = []
    stored_sizes: Counter[int] = Counter()
    # The Python client's answers are the first ones sent, in order. wrk's are the first
    # ``requests`` to come back: up to concurrency - 1 sent before them may still have been in
    # flight when it stopped, so those firms may have no answer (but never two).
    in_flight = 0 if phase.crcs else phase.concurrency - 1
    unanswered = 0
    for index, firm in enumerate(firms[: phase.requests + in_flight]):
        seen = set(before.get(firm, []))
        new = [k for k in after.get(firm, []) if k not in seen]
        if len(new) == 0 and unanswered < in_flight:
            unanswered += 1
            continue
        if len(new) != 1:
            problems.append(f"firm {firm}: {len(new)} answers stored, expected 1 (a miss)")
            continue
        stamped_answer = cache.get(new[0])
        # The gateway stores the answer behind a line of the versions it was computed from.
        stored = None if stamped_answer is None else stamped_answer.partition(b"\n")[2]
        if stored is None:
            problems.append(f"firm {firm}: its stored answer expired")
            continue
        if phase.crcs and (zlib.crc32(stored), len(stored)) != (
            phase.crcs[index],
            phase.sizes[index],
        ):
            problems.append(f"firm {firm}: the client got other bytes than were stored")
        stored_sizes[len(stored)] += 1
        answer = orjson.loads(stored)
        problems += [f"firm {firm}: {p}" for p in check_answer(answer, firm, expect)]
        eligible.append(int(answer["eligible"]))
        if len(problems) > 20:
            break
    if not phase.crcs:  # wrk: each answer's size is one of the stored answers' sizes
        extra = Counter(phase.sizes) - stored_sizes
        if sum(extra.values()) >= phase.concurrency:  # in flight past the limit: not checked
            problems.append(f"{sum(extra.values())} answers of sizes no stored answer has")
    if problems:
        raise BenchFailure(f"{phase.name}: " + "; ".join(problems[:20]))
    return eligible


def verify_same_bytes(phase: Phase, paths_crc: Sequence[tuple[int, int]]) -> None:
    """Each answer is byte for byte the expected one of its URL (cached answer or floor body)."""
    check_statuses(phase)
    if not phase.crcs:  # wrk: sizes only, in no particular order
        expected_sizes = {size for _crc, size in paths_crc}
        wrong = [i for i, size in enumerate(phase.sizes) if size not in expected_sizes]
    else:
        wrong = [
            i
            for i, (crc, size) in enumerate(zip(phase.crcs, phase.sizes, strict=True))
            if (crc, size) != paths_crc[i % len(paths_crc)]
        ]
    if wrong:
        raise BenchFailure(f"{phase.name}: {len(wrong)} answers differ from the expected bytes")


def wait_for_model(
    client: httpx.Client,
    cache: redis.Redis,
    firms: Sequence[int],
    portal_id: int,
    model_version: str,
) -> dict[str, Any]:
    """Spend warm-up firms until the gateway stamps its cached answers with the trained model
    (a promotion it did not make reaches it by polling) and matching ranks with it; returns
    the last answer."""
    deadline = time.monotonic() + MODEL_SWITCH_TIMEOUT_SECONDS
    for firm in firms:
        response = client.get(matches_path(firm))
        if response.status_code != 200:
            raise BenchFailure(f"warm-up answered {response.status_code}: {response.text[:2000]}")
        answer: dict[str, Any] = response.json()
        keys = cache_keys(cache, portal_id).get(firm, [])
        # The stored answer's stamp line names the model it was computed with.
        stamps = [(cache.get(k) or b"").partition(b"\n")[0].split(b"|") for k in keys]
        if answer["model_version"] == model_version and any(
            model_version.encode() in stamp for stamp in stamps
        ):
            return answer
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    raise BenchFailure(f"the gateway did not switch to model {model_version} in time")


def match_key(portal_id: int, path: str) -> bytes:
    """The gateway's match-cache key of a ``GET /v1/firms/{id}/matches?...`` path (the query
    fields in the gateway's order, defaults where the path gives none)."""
    route, _, query = path.partition("?")
    firm = int(route.split("/")[3])
    asked = dict(part.split("=", 1) for part in query.split("&") if part)
    fields = [
        asked.get("lang", "zh"),
        asked.get("limit", "20"),
        asked.get("near_miss_limit", "10"),
        asked.get("amount_yuan", "None"),
        asked.get("term_months", "None"),
    ]
    return f"{CACHE_PREFIX}match:{portal_id}:{firm}:{':'.join(fields)}".encode()


def verify_open(
    phase: Phase,
    paths: Sequence[str],
    cache: redis.Redis,
    portal_id: int,
    expect: Expectation,
    before: dict[int, list[bytes]],
) -> int:
    """Each open-loop request answered 200 missed: its own cache key was not stored before the
    phase and is now, with the bytes the client got; matching ranked it with the expected
    model. Returns how many 200 answers have no stored answer in Redis: past capacity the
    gateway's Redis pool runs out and its cache falls back to process memory (degraded, not
    wrong), which the report shows (target (a) not met) rather than stopping the run, as it
    shows the requests not answered 200 (an open loop past capacity queues until they time
    out)."""
    held = {key for keys in before.values() for key in keys}
    problems: list[str] = []
    unstored = 0
    for index, path in enumerate(paths):
        if phase.statuses[index] != 200:
            continue
        key = match_key(portal_id, path)
        if key in held:
            problems.append(f"{path}: answered before the phase (a hit, not a miss)")
            continue
        value = cache.get(key)
        stored = value.partition(b"\n")[2] if isinstance(value, bytes) else b""
        if not stored:
            unstored += 1
            continue
        if (zlib.crc32(stored), len(stored)) != (phase.crcs[index], phase.sizes[index]):
            problems.append(f"{path}: the client got other bytes than were stored")
            continue
        firm = int(path.split("/")[3])
        problems += [f"{path}: {p}" for p in check_answer(orjson.loads(stored), firm, expect)]
        if len(problems) > 20:
            break
    if problems:
        raise BenchFailure(f"{phase.name}: " + "; ".join(problems[:20]))
    return unstored
