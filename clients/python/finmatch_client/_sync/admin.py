# Generated from finmatch_client/_async/admin.py by tools/unasync.py: edit that, not this.
"""Admin: institutions, principals and keys; training jobs; model versions."""

from __future__ import annotations

import math
import time

from finmatch_client._core import Call, expect, make_call
from finmatch_client._sync._pagination import Paginator
from finmatch_client._sync._resource import Resource
from finmatch_client.models import (
    InstitutionCreate,
    InstitutionPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    ModelVersion,
    Page,
    PrincipalCreate,
    PrincipalPublic,
    TrainingJobPublic,
    TrainRequest,
)


class Admin(Resource):
    def create_institution(
        self, institution: InstitutionCreate, *, idempotency_key: str | None = None
    ) -> InstitutionPublic:
        call = make_call(
            "POST",
            "/v1/admin/institutions",
            expect(InstitutionPublic),
            body=institution,
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def list_institutions(self, *, page_size: int = 100) -> Paginator[InstitutionPublic]:
        """Every institution, oldest first, fetched a page at a time."""

        def page(cursor: str | None) -> Call[Page[InstitutionPublic]]:
            params = {"limit": page_size, "cursor": cursor}
            answer = expect(Page[InstitutionPublic])
            return make_call("GET", "/v1/admin/institutions", answer, params=params)

        return Paginator(self._session, page)

    def create_principal(
        self, principal: PrincipalCreate, *, idempotency_key: str | None = None
    ) -> PrincipalPublic:
        call = make_call(
            "POST",
            "/v1/admin/principals",
            expect(PrincipalPublic),
            body=principal,
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def create_key(self, key: KeyCreate, *, idempotency_key: str | None = None) -> KeyCreated:
        """A new key for a principal, shown once. To rotate: issue one, hand it over, then
        revoke the old one."""
        call = make_call(
            "POST",
            "/v1/admin/keys",
            expect(KeyCreated),
            body=key,
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def list_keys(
        self, *, principal_id: int | None = None, page_size: int = 100
    ) -> Paginator[KeyPublic]:
        def page(cursor: str | None) -> Call[Page[KeyPublic]]:
            params = {"principal_id": principal_id, "limit": page_size, "cursor": cursor}
            return make_call("GET", "/v1/admin/keys", expect(Page[KeyPublic]), params=params)

        return Paginator(self._session, page)

    def revoke_key(self, key_id: int, *, idempotency_key: str | None = None) -> KeyPublic:
        call = make_call(
            "POST",
            f"/v1/admin/keys/{key_id}/revoke",
            expect(KeyPublic),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def models(self) -> list[ModelVersion]:
        """Model versions, newest first."""
        call = make_call("GET", "/v1/admin/models", expect(list[ModelVersion]))
        return self._session.send(call)

    def train(
        self, request: TrainRequest | None = None, *, idempotency_key: str | None = None
    ) -> TrainingJobPublic:
        """Queue a training job (one at a time: Conflict ``training_in_progress`` names the
        running one in ``extra["job_id"]``); poll it with ``job`` or ``wait_for_job``."""
        call = make_call(
            "POST",
            "/v1/admin/models/train",
            expect(TrainingJobPublic),
            body=request or TrainRequest(),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def jobs(self, *, limit: int = 20) -> list[TrainingJobPublic]:
        """Training jobs, newest first."""
        call = make_call(
            "GET", "/v1/admin/models/jobs", expect(list[TrainingJobPublic]), params={"limit": limit}
        )
        return self._session.send(call)

    def job(self, job_id: int) -> TrainingJobPublic:
        call = make_call("GET", f"/v1/admin/models/jobs/{job_id}", expect(TrainingJobPublic))
        return self._session.send(call)

    def wait_for_job(
        self, job_id: int, *, timeout: float = 600.0, interval: float = 1.0
    ) -> TrainingJobPublic:
        """Poll the job until it succeeds or fails; TimeoutError if it is still going after
        about ``timeout`` seconds."""
        for _ in range(max(1, math.ceil(timeout / interval))):
            job = self.job(job_id)
            if job.finished:
                return job
            time.sleep(interval)
        raise TimeoutError(f"training job {job_id} still {job.status} after {timeout:.0f} s")

    def promote(self, version: str, *, idempotency_key: str | None = None) -> ModelVersion:
        call = make_call(
            "POST",
            f"/v1/admin/models/{version}/promote",
            expect(ModelVersion),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)

    def rollback(self, *, idempotency_key: str | None = None) -> ModelVersion:
        """Serve the champion's predecessor again."""
        call = make_call(
            "POST",
            "/v1/admin/models/rollback",
            expect(ModelVersion),
            idempotency_key=idempotency_key,
        )
        return self._session.send(call)
