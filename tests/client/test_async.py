"""The asynchronous client against the live stack: the same calls, awaited."""

from __future__ import annotations

import asyncio

import pytest

from finmatch_client import AsyncFinmatchClient, NotFound, PreconditionFailed
from finmatch_client.models import FirmUpdate
from tests.client.conftest import FAST, World, new_firm

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_async_firms_pages_etags_and_errors(world: World) -> None:
    town = "441900109"  # 石龙镇: only this test's firms

    async def scenario() -> None:
        async with AsyncFinmatchClient(world.url, world.keys["portal"], retry=FAST) as portal:
            created = await asyncio.gather(
                *(portal.firms.create(new_firm(town_code=town)) for _ in range(3))
            )
            listing = portal.firms.list(town_code=town, page_size=2)
            pages = [page async for page in listing.pages()]
            assert [len(page.data) for page in pages] == [2, 1]
            assert {firm.id async for firm in listing} == {firm.id for firm in created}

            first = created[0]
            updated = await portal.firms.update(first, FirmUpdate(employees=99))
            assert updated.version == first.version + 1
            with pytest.raises(PreconditionFailed):
                await portal.firms.update(first, FirmUpdate(employees=98))
            matches = await portal.firms.matches(first.id)
            assert matches.firm_id == first.id

        async with AsyncFinmatchClient(world.url, world.keys["other_portal"]) as other:
            with pytest.raises(NotFound) as hidden:
                await other.firms.get(first.id)
            assert hidden.value.request_id

    asyncio.run(scenario())
