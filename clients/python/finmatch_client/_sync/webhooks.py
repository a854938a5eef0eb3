# Generated from finmatch_client/_async/webhooks.py by tools/unasync.py: edit that, not this.
"""Webhook endpoints (any principal, its own) and their delivery log."""

from __future__ import annotations

from finmatch_client._core import Call, Versioned, expect, expect_nothing, make_call, target
from finmatch_client._sync._pagination import Paginator
from finmatch_client._sync._resource import Resource
from finmatch_client.models import (
    DeliveryStatus,
    Page,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

ENDPOINTS = "/v1/webhooks/endpoints"


class Webhooks(Resource):
    def create_endpoint(
        self, endpoint: WebhookEndpointCreate, *, idempotency_key: str | None = None
    ) -> WebhookEndpointWithSecret:
        """The answer holds the signing secret: shown here and on rotation only."""
        call = make_call(
            "POST",
            ENDPOINTS,
            expect(WebhookEndpointWithSecret),
            body=endpoint,
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def list_endpoints(self, *, page_size: int = 50) -> Paginator[WebhookEndpointPublic]:
        def page(cursor: str | None) -> Call[Page[WebhookEndpointPublic]]:
            params = {"limit": page_size, "cursor": cursor}
            return make_call("GET", ENDPOINTS, expect(Page[WebhookEndpointPublic]), params=params)

        return Paginator(self._session, page)

    def get_endpoint(self, endpoint_id: int) -> WebhookEndpointPublic:
        call = make_call("GET", f"{ENDPOINTS}/{endpoint_id}", expect(WebhookEndpointPublic))
        return self._session.send(call)

    def update_endpoint(
        self,
        endpoint: int | Versioned,
        changes: WebhookEndpointUpdate,
        *,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpointPublic:
        """Change the fields set in ``changes``, guarded by the version read."""
        endpoint_id, if_match = target(endpoint, if_match)
        call = make_call(
            "PATCH",
            f"{ENDPOINTS}/{endpoint_id}",
            expect(WebhookEndpointPublic),
            body=changes,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def delete_endpoint(self, endpoint_id: int, *, idempotency_key: str | None = None) -> None:
        call = make_call(
            "DELETE", f"{ENDPOINTS}/{endpoint_id}", expect_nothing, idempotency_key=idempotency_key
        )
        self._session.send(call)

    def rotate_secret(
        self, endpoint_id: int, *, idempotency_key: str | None = None
    ) -> WebhookEndpointWithSecret:
        """A new secret, shown once; for 24 hours the old one signs too (two signatures):
        verify with both meanwhile (``verify_webhook(secrets=[new, old], ...)``)."""
        call = make_call(
            "POST",
            f"{ENDPOINTS}/{endpoint_id}/rotate-secret",
            expect(WebhookEndpointWithSecret),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def send_test(
        self, endpoint_id: int, *, idempotency_key: str | None = None
    ) -> WebhookDeliveryPublic:
        """Queue a ``webhook.ping`` to this endpoint; the answer is its delivery."""
        call = make_call(
            "POST",
            f"{ENDPOINTS}/{endpoint_id}/test",
            expect(WebhookDeliveryPublic),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def list_deliveries(
        self,
        *,
        endpoint_id: int | None = None,
        status: DeliveryStatus | str | None = None,
        page_size: int = 50,
    ) -> Paginator[WebhookDeliveryPublic]:
        """Deliveries to your endpoints, oldest first, each with its attempts."""

        def page(cursor: str | None) -> Call[Page[WebhookDeliveryPublic]]:
            params = {
                "endpoint_id": endpoint_id,
                "status": status,
                "limit": page_size,
                "cursor": cursor,
            }
            answer = expect(Page[WebhookDeliveryPublic])
            return make_call("GET", "/v1/webhooks/deliveries", answer, params=params)

        return Paginator(self._session, page)

    def redeliver(
        self, delivery_id: int, *, idempotency_key: str | None = None
    ) -> WebhookDeliveryPublic:
        """Queue the same event to the same endpoint again (a new delivery and webhook-id)."""
        call = make_call(
            "POST",
            f"/v1/webhooks/deliveries/{delivery_id}/redeliver",
            expect(WebhookDeliveryPublic),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)
