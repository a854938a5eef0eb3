"""Under FINMATCH_REQUIRE_SERVICES=1 a missing service fails its tests instead of skipping them."""

from __future__ import annotations

import pytest

from tests import services


@pytest.mark.parametrize("required", [False, True])
def test_a_missing_redis_server_skips_or_fails(
    monkeypatch: pytest.MonkeyPatch, required: bool
) -> None:
    monkeypatch.setenv("PATH", "")  # no redis-server to be found
    monkeypatch.setattr(services, "REQUIRED", required)
    expected = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(expected, match="redis-server"):
        services.need_redis_server()
