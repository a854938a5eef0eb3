"""Retries against the live stack: a real 429 (the officials' rate limit is lowered for these
tests), a real 503 (the registry stopped), real network errors (a proxy in front of the
gateway, closed); each unsafe call keeps one Idempotency-Key over its retries, so a product
created through 503s exists once."""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict

import httpx
import pytest

from finmatch_client import (
    NO_RETRIES,
    FinmatchClient,
    RateLimited,
    RetryPolicy,
    TransportError,
)
from finmatch_client.models import ProductCategory, WhatIfRequest
from tests.client.conftest import (
    FAST,
    RATE_WINDOW_SECONDS,
    Attempt,
    Recorder,
    World,
    new_product,
)
from tests.tcp_proxy import ThreadedProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def by_call(attempts: list[Attempt]) -> dict[str, list[Attempt]]:
    """Attempts grouped by Idempotency-Key: one group per logical call."""
    groups: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        assert attempt.idempotency_key is not None, attempt
        groups[attempt.idempotency_key].append(attempt)
    return groups


def test_a_real_429_is_retried_after_retry_after_with_the_same_key(world: World) -> None:
    world.bank.products.create(new_product(name="客户端测试限流"))  # an ip_pledge to ask about
    recorder = Recorder()
    official = world.client("rate_limited", retry=FAST, http_client=recorder.http())
    question = WhatIfRequest(category=ProductCategory.IP_PLEDGE, criterion="min_patents", value=0)
    # More calls than the limit allows in a window, until a first attempt meets a 429 (on a
    # slow machine the first few may each fall in a window of their own).
    answers = []
    for _ in range(30):
        answers.append(official.stats.what_if(question))
        if any(a.status == 429 for a in recorder.attempts):
            break
    assert all(answer.criterion == "min_patents" for answer in answers)

    calls = by_call(recorder.attempts)
    assert len(calls) == len(answers)  # a key per logical call
    retried = [attempts for attempts in calls.values() if len(attempts) > 1]
    assert retried, "no call met the rate limit"
    for attempts in retried:
        assert [a.status for a in attempts][-1] == 200
        assert {a.status for a in attempts[:-1]} == {429}
        assert {a.method for a in attempts} == {"POST"}


def test_without_retries_a_429_is_a_typed_error_saying_when_to_come_back(world: World) -> None:
    official = world.client("rate_limited", retry=NO_RETRIES)

    def exhaust() -> None:
        for _ in range(20):
            official.stats.targets()

    with pytest.raises(RateLimited) as limited:
        exhaust()
    error = limited.value
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after is not None
    assert 0 <= error.retry_after <= RATE_WINDOW_SECONDS
    assert error.request_id


def test_a_product_created_through_503s_exists_once(world: World) -> None:
    """The registry is stopped: the gateway answers 503 (Retry-After) to the create, which the
    client sends again with the same key until the registry is back."""
    cluster = world.cluster
    recorder = Recorder()
    patient = RetryPolicy(max_retries=20, backoff_base=0.2, backoff_max=1.0, retry_after_max=10)
    bank = world.client("bank", retry=patient, http_client=recorder.http())
    assert bank.products.list(page_size=1).first_page()  # the gateway knows this key now
    name = f"客户端测试重试{secrets.token_hex(3)}"

    def bring_back() -> None:
        time.sleep(2.0)
        cluster.restart("registry").wait_ready()

    cluster.services["registry"].stop()
    restarter = threading.Thread(target=bring_back)
    restarter.start()
    try:
        product = bank.products.create(new_product(name=name))
    finally:
        restarter.join()
        if cluster.services["registry"].process.poll() is not None:
            cluster.restart("registry").wait_ready()

    posts = [a for a in recorder.attempts if a.method == "POST"]
    statuses = [a.status for a in posts]
    assert 503 in statuses, statuses
    assert statuses[-1] == 201
    assert len({a.idempotency_key for a in posts}) == 1

    named = [p for p in bank.products.list(institution_id=world.institution_id) if p.name == name]
    assert [p.id for p in named] == [product.id]

    # The same key again, on purpose: the stored answer, not a second product.
    key = posts[0].idempotency_key
    again = bank.products.create(new_product(name=name), idempotency_key=key)
    assert again.id == product.id
    named = [p for p in bank.products.list(institution_id=world.institution_id) if p.name == name]
    assert len(named) == 1
    # And a new key is a new product: the key, not the body, made the retries safe.
    other = bank.products.create(new_product(name=name))
    assert other.id != product.id


def test_network_errors_are_retried_until_the_gateway_answers(world: World) -> None:
    gateway = world.cluster.services["gateway"]
    with ThreadedProxy.to_url(gateway.url, gateway.port) as proxy:
        url = proxy.proxied(gateway.url)
        recorder = Recorder()
        policy = RetryPolicy(max_retries=10, backoff_base=0.2, backoff_max=0.5)
        client = FinmatchClient(
            url, world.keys["portal"], retry=policy, http_client=recorder.http()
        )
        refused = FinmatchClient(url, world.keys["portal"], retry=NO_RETRIES)
        proxy.stop()  # nothing listens: connection refused
        with pytest.raises(TransportError) as failed:
            refused.reference.towns()
        assert isinstance(failed.value.__cause__, httpx.ConnectError)

        reopen = threading.Timer(1.0, proxy.start)
        reopen.start()
        try:
            towns = client.reference.towns()
        finally:
            reopen.join()
            client.close()
            refused.close()
    assert towns
    statuses = [a.status for a in recorder.attempts]
    assert statuses[0] is None  # no answer
    assert statuses[-1] == 200
