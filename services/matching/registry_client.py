"""The matching service's view of the registry: training export and the model store."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import httpx

from shared.errors import ServiceUnavailable
from shared.request_context import current_request_id


class RegistryError(Exception):
    """The registry refused a request (a 4xx): carries its status and problem code."""

    def __init__(
        self, status: int, code: str, detail: str, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"registry answered {status} ({code}): {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem or {}


class RegistryClient:
    """One long-lived async client; every call names the internal token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-Internal-Token": token},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        request_id = current_request_id()
        if request_id is not None:
            kwargs["headers"] = {"X-Request-ID": request_id} | kwargs.get("headers", {})
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"registry unreachable: {exc.__class__.__name__}",
                code="registry_unavailable",
                headers={"Retry-After": "5"},
            ) from exc
        return response

    async def training_export(self) -> list[bytes]:
        response = await self._request("GET", "/internal/exports/training")
        self._check(response)
        return [line for line in response.content.splitlines() if line.strip()]

    async def firm_feed(self, changed_since: datetime | None, after_id: int) -> bytes:
        """A page of the registry's firm feed (shared.schemas.internal.FirmFeedPage): every
        firm after ``after_id``, or those written at or after ``changed_since``."""
        params: dict[str, str] = {"after_id": str(after_id)}
        if changed_since is not None:
            params["changed_since"] = changed_since.isoformat()
        response = await self._request("GET", "/internal/feeds/firms", params=params)
        self._check(response)
        return response.content

    async def catalogue(self) -> dict[str, Any]:
        """The active products and the catalogue's version."""
        response = await self._request("GET", "/internal/catalogue")
        self._check(response)
        body: dict[str, Any] = response.json()
        return body

    async def decisions_count(self) -> int:
        response = await self._request("GET", "/internal/decisions/count")
        self._check(response)
        return int(response.json()["count"])

    async def champion(self) -> dict[str, Any] | None:
        response = await self._request("GET", "/internal/models/champion")
        if response.status_code == 404:
            return None
        self._check(response)
        body: dict[str, Any] = response.json()
        return body

    async def artifact(self, version: str) -> bytes:
        response = await self._request("GET", f"/internal/models/{version}/artifact")
        self._check(response)
        return response.content

    async def list_models(self) -> list[dict[str, Any]]:
        response = await self._request("GET", "/internal/models")
        self._check(response)
        body: list[dict[str, Any]] = response.json()
        return body

    async def upload(
        self,
        *,
        version: str,
        algorithm: str,
        metrics: dict[str, float],
        meta: dict[str, Any],
        artifact: bytes,
    ) -> dict[str, Any]:
        response = await self._request(
            "POST",
            "/internal/models",
            json={
                "version": version,
                "algorithm": algorithm,
                "metrics": metrics,
                "meta": meta,
                "artifact_b64": base64.b64encode(artifact).decode(),
            },
        )
        self._check(response)
        body: dict[str, Any] = response.json()
        return body

    async def promote(self, version: str, actor: int | None = None) -> dict[str, Any]:
        headers = {} if actor is None else {"X-Principal-Id": str(actor)}
        response = await self._request(
            "POST", f"/internal/models/{version}/promote", headers=headers
        )
        self._check(response)
        body: dict[str, Any] = response.json()
        return body

    async def rollback(self, actor: int | None = None) -> dict[str, Any]:
        headers = {} if actor is None else {"X-Principal-Id": str(actor)}
        response = await self._request("POST", "/internal/models/rollback", headers=headers)
        self._check(response)
        body: dict[str, Any] = response.json()
        return body

    async def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """A queued training job; a 409 ``training_in_progress`` names the active one."""
        response = await self._request("POST", "/internal/training-jobs", json=body)
        self._check(response)
        job: dict[str, Any] = response.json()
        return job

    async def report_job(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The runner's heartbeat, progress or result (renews its lease)."""
        response = await self._request(
            "POST", f"/internal/training-jobs/{job_id}/report", json=body
        )
        self._check(response)
        job: dict[str, Any] = response.json()
        return job

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code >= 500:
            raise ServiceUnavailable(
                f"registry error {response.status_code}",
                code="registry_unavailable",
                headers={"Retry-After": "5"},
            )
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            if not isinstance(problem, dict):
                problem = {}
            raise RegistryError(
                response.status_code,
                str(problem.get("code", "error")),
                str(problem.get("detail", response.text[:300])),
                problem,
            )
