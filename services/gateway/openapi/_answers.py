"""Examples of the answers whose schema is open (the gateway passes a downstream's JSON on):
taken from a run of the demo world, shortened."""

from __future__ import annotations

from typing import Any

_MODEL = {
    "version": "m-20270210T090000-3f1c2a9b",
    "status": "champion",
    "algorithm": "hist_gradient_boosting",
    "metrics": {"auc": 0.83, "brier": 0.17, "log_loss": 0.51, "n": 1800.0},
    "meta": {"features": 31, "trained_rows": 9000},
    "artifact_sha256": "3f1c2a9b" * 8,
    "size_bytes": 412_331,
    "previous_version": "m-20270201T080000-0a1b2c3d",
    "created_at": "2027-02-10T09:00:41Z",
    "promoted_at": "2027-02-10T09:00:42Z",
}

ANSWER_EXAMPLES: dict[tuple[str, str], Any] = {
    ("GET", "/v1/stats/coverage"): {
        "filters": {"town_code": None},
        "no_eligible_product": [
            {
                "town_code": "441900121",
                "town_zh": "虎门镇",
                "town_en": "Humen",
                "industry_section": "C",
                "section_zh": "制造业",
                "section_en": "Manufacturing",
                "firms_with_need": 31,
                "firms_with_need_no_eligible": 7,
                "suppressed": False,
            }
        ],
        "matched_no_application": [
            {
                "town_code": "441900116",
                "town_zh": "塘厦镇",
                "town_en": "Tangxia",
                "industry_section": "C",
                "section_zh": "制造业",
                "section_en": "Manufacturing",
                "firms_matched": 40,
                "firms_matched_no_application": 12,
                "suppressed": False,
            }
        ],
        "degraded": False,
    },
    ("POST", "/v1/stats/what-if"): {
        "criterion": "min_export_usd",
        "value": 5_000_000,
        "products": [9, 10, 11],
        "town_code": None,
        "catalogue_version": "cat-48-b8625c9784097b42",
        "as_of": "2026-12-07",
        "firms_considered": 4210,
        "baseline_eligible": 96,
        "changed_eligible": 171,
        "newly_qualifying": 75,
        "no_longer_qualifying": 0,
        "requested_amount_yuan": 182_000_000,
        "by_industry": [
            {"key": "C", "label_zh": "制造业", "label_en": "Manufacturing", "firms": 61}
        ],
        "by_size_class": [{"key": "small", "label_zh": "小型", "label_en": "small", "firms": 48}],
    },
    ("GET", "/v1/stats/firms"): {
        "town_code": None,
        "firms": 5000,
        "by_size_class": {
            "micro": {"firms": 3650, "with_need": 2110},
            "small": {"firms": 1180, "with_need": 720},
            "medium": {"firms": 170, "with_need": 95},
        },
    },
    ("GET", "/v1/stats/registers"): {
        "as_of": "2026-12-07",
        "scope": "city",
        "town_code": None,
        "registers": [
            {
                "kind": "green_list",
                "label_zh": "绿色企业名录",
                "label_en": "green enterprise list",
                "suppressed": False,
                "firms": 212,
                "matched": 180,
                "applied": 64,
                "approved": 41,
                "green_credit": 23,
                "version": 3,
                "as_of": "2026-11-30",
            }
        ],
        "by_town": [
            {
                "town_code": "441900116",
                "town_zh": "塘厦镇",
                "town_en": "Tangxia",
                "registers": [
                    {
                        "kind": "green_list",
                        "label_zh": "绿色企业名录",
                        "label_en": "green enterprise list",
                        "suppressed": False,
                        "firms": 18,
                        "matched": 15,
                        "applied": 6,
                        "approved": 4,
                        "green_credit": 2,
                    }
                ],
            }
        ],
    },
    ("GET", "/v1/admin/institutions"): {
        "data": [
            {"id": 1, "name": "东莞银行", "kind": "bank", "created_at": "2026-12-07T07:52:26Z"},
            {
                "id": 12,
                "name": "东莞市科创融资担保有限公司",
                "kind": "guarantor",
                "created_at": "2026-12-07T07:52:26Z",
            },
        ],
        "next_cursor": None,
    },
    ("GET", "/v1/admin/models"): [_MODEL],
    ("POST", "/v1/admin/models/{version}/promote"): _MODEL,
    ("POST", "/v1/admin/models/rollback"): _MODEL
    | {"version": "m-20270201T080000-0a1b2c3d", "previous_version": None},
    ("GET", "/readyz"): {
        "status": "ok",
        "checks": {"registry": "ok", "matching": "ok", "redis": "ok"},
    },
    ("GET", "/healthz"): {"status": "ok"},
    ("GET", "/metrics"): (
        "# TYPE finmatch_http_request_duration_seconds histogram\n"
        'finmatch_http_request_duration_seconds_count{service="gateway",route="/v1/firms",'
        'method="GET",status="200"} 42.0\n'
    ),
}
