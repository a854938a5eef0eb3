"""Read a service's /metrics the way Prometheus does, and compare scrapes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    samples: dict[Key, float]
    help: dict[str, str]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``; 0 if none."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def has(self, name: str, **labels: str) -> bool:
        wanted = set(labels.items())
        return any(n == name and wanted <= ls for n, ls in self.samples)

    def labels(self, name: str) -> list[dict[str, str]]:
        return [dict(ls) for n, ls in self.samples if n == name]


def scrape(client: TestClient) -> Scrape:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: dict[Key, float] = {}
    helps: dict[str, str] = {}
    for family in text_string_to_metric_families(answer.text):
        helps[family.name] = family.documentation
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"{key} exposed twice"
            samples[key] = sample.value
    return Scrape(samples, helps)


def requests_seen(
    scraped: Scrape, service: str, route: str, status: int, method: str = "GET"
) -> float:
    """How many requests the latency histogram counted for this label set."""
    return scraped.value(
        "finmatch_http_request_duration_seconds_count",
        service=service,
        route=route,
        method=method,
        status=str(status),
    )
