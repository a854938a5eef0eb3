"""After the soak: every acknowledged write counted back through the API, each exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.soak.traffic import Ledger
from bench.soak.world import PAGE, auth

CONCURRENCY = 8  # decisions are read one by one, this many at a time


@dataclass
class Tally:
    """One kind of write: how many were acknowledged, how many were found exactly once, and
    what was wrong with the others (missing, found twice, different from the answer)."""

    acknowledged: int = 0
    found_once: int = 0
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        self.acknowledged += 1
        if ok:
            self.found_once += 1
        else:
            self.problems.append(problem)


async def listed(http: httpx.AsyncClient, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
        response = await http.get(path, params=params, headers=auth(key))
        response.raise_for_status()
        page = response.json()
        items += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def count_back(
    http: httpx.AsyncClient, ledger: Ledger, keys: dict[str, str]
) -> dict[str, Tally]:
    firms = await listed(http, "/v1/firms", keys["portal"])
    firm_ids = Counter(int(f["id"]) for f in firms)
    codes = Counter(str(f["credit_code"]) for f in firms)
    version = {int(f["id"]): int(f["version"]) for f in firms}
    created, updated = Tally(), Tally()
    for firm_id, code in ledger.firms_created.items():
        created.check(
            firm_ids[firm_id] == 1 and codes[code] == 1,
            f"firm {firm_id} ({code}): listed {firm_ids[firm_id]}×, its code {codes[code]}×",
        )
    for firm_id, answered in ledger.firm_updates.items():
        updated.check(
            firm_ids[firm_id] == 1 and version.get(firm_id, 0) >= answered,
            f"firm {firm_id}: listed {firm_ids[firm_id]}×, version {version.get(firm_id)} "
            f"< {answered} answered",
        )

    applications = await listed(http, "/v1/applications", keys["portal"])
    app_ids = Counter(int(a["id"]) for a in applications)
    app_of = {int(a["id"]): a for a in applications}
    applied = Tally()
    for app_id, (firm, product) in ledger.applications.items():
        row = app_of.get(app_id, {})
        applied.check(
            app_ids[app_id] == 1 and (row.get("firm_id"), row.get("product_id")) == (firm, product),
            f"application {app_id}: listed {app_ids[app_id]}×",
        )

    decided = Tally()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def decision(app_id: int, decision_id: int, outcome: str) -> None:
        async with gate:
            response = await http.get(
                f"/v1/applications/{app_id}/decision", headers=auth(keys["institution"])
            )
        found = response.json() if response.status_code == 200 else {}
        status = app_of.get(app_id, {}).get("status")
        decided.check(
            found.get("id") == decision_id and found.get("outcome") == outcome == status,
            f"decision {decision_id} on application {app_id}: answered {response.status_code} "
            f"{found.get('id')}/{found.get('outcome')}, application {status}",
        )

    await asyncio.gather(
        *(decision(app, d, outcome) for app, (d, outcome) in ledger.decisions.items())
    )
    return {
        "firms created": created,
        "firms updated": updated,
        "applications": applied,
        "decisions": decided,
    }
