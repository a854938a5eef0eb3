"""A bank previews whom a product would reach: a draft (POST /v1/products/preview) or its own
listed product (GET /v1/products/{id}/reach); aggregates only, small groups withheld."""

from __future__ import annotations

import base64
import dataclasses
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.matching.artifact import dump
from services.matching.lifecycle import finite, finite_tree
from services.matching.train import train
from tests.gateway.conftest import TOKEN, Api, Stack, registry_app
from tests.matching.conftest import matching_settings
from tests.matching.training_data import export_rows
from tests.registry import data

TANGXIA, HUMEN = "441900116", "441900121"


def populate(stack: Stack) -> Api:
    """Nine firms with a need in Tangxia (patents 0–8), two in Humen, and firms the preview must
    not count: one without consent to matching, one without a need."""
    portal = stack.principal("portal")
    seq = iter(range(1, 100))
    for patents in range(9):
        body = data.firm(next(seq), invention_patents=0, utility_patents=patents)
        assert portal.post("/v1/firms", json=body).status_code == 201
    for _ in range(2):
        body = data.firm(next(seq), town_code=HUMEN, utility_patents=8, invention_patents=0)
        assert portal.post("/v1/firms", json=body).status_code == 201
    ignored = [
        data.firm(next(seq), utility_patents=8, consent_matching=False),
        data.firm(next(seq), utility_patents=8, need_amount_yuan=None, need_term_months=None),
    ]
    for body in ignored:
        assert portal.post("/v1/firms", json=body).status_code == 201
    return portal


def test_a_draft_previews_its_reach_without_being_saved(stack: Stack) -> None:
    populate(stack)
    bank = stack.institution("东莞测试银行")
    draft = data.product(min_patents=5, elig_size_classes=[])
    answer = bank.post("/v1/products/preview", json=draft)
    assert answer.status_code == 200, answer.text
    reach: dict[str, Any] = answer.json()
    assert reach["product_id"] is None
    assert reach["firms_considered"] == 11  # consenting, with a need
    assert reach["eligible"] == 6  # patents 5..8 in Tangxia (4) and both Humen firms
    towns = {c["key"]: c for c in reach["by_town"]}
    assert towns[TANGXIA]["firms"] == 4
    assert towns[HUMEN] == {**towns[HUMEN], "firms": None, "suppressed": True}
    # Every firm here is small (45 staff, 18m yuan revenue in manufacturing).
    assert [(c["key"], c["firms"], c["suppressed"]) for c in reach["by_size_class"]] == [
        ("small", 6, False)
    ]
    [patents] = [c for c in reach["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["setting"], patents["relaxed_to"]) == (5, 4)
    assert patents["binding"] is True
    assert patents["additional_firms"] is None  # one more firm (4 patents): withheld
    assert patents["suppressed"] is True
    assert reach["is_prior"] is True
    assert reach["expected_approval_share"] is None  # no model yet
    assert reach["expected_approval_share_margin"] is None
    assert reach["expected_approval_share_scored"] is None
    assert "firm_id" not in answer.text
    assert bank.get("/v1/products").json()["data"] == []  # nothing saved

    looser = bank.post("/v1/products/preview", json=data.product(min_patents=8))
    [patents] = [c for c in looser.json()["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["relaxed_to"], patents["additional_firms"]) == (7, None)
    local = bank.post("/v1/products/preview", json=draft, params={"town_code": TANGXIA})
    assert local.json()["firms_considered"] == 9


def test_a_listed_products_reach_is_its_institutions_only(stack: Stack) -> None:
    populate(stack)
    bank = stack.institution("东莞测试银行")
    rival = stack.institution("另一家银行")
    product = bank.post("/v1/products", json=data.product(min_patents=3)).json()
    answer = bank.get(f"/v1/products/{product['id']}/reach")
    assert answer.status_code == 200, answer.text
    assert answer.json()["product_id"] == product["id"]
    assert answer.json()["eligible"] == 8  # patents 3..8 in Tangxia, both Humen firms
    [patents] = [c for c in answer.json()["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["relaxed_to"], patents["binding"]) == (2, True)
    assert rival.get(f"/v1/products/{product['id']}/reach").status_code == 404
    assert stack.principal("portal").get(f"/v1/products/{product['id']}/reach").status_code == 404
    assert stack.admin.get(f"/v1/products/{product['id']}/reach").status_code == 200
    assert bank.get("/v1/products/999999/reach").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_min_yuan": -1}, "amount_min_yuan"),
        ({"min_patents": "many"}, "min_patents"),
        ({"elig_town_codes": ["999"]}, "elig_town_codes"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_draft_is_422_naming_the_field(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    bank = stack.institution("东莞测试银行")
    answer = bank.post("/v1/products/preview", json=data.product() | change)
    assert answer.status_code == 422
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_only_institutions_preview_and_an_unknown_town_is_404(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    assert portal.post("/v1/products/preview", json=data.product()).status_code == 404
    unknown = bank.post("/v1/products/preview", json=data.product(), params={"town_code": "1"})
    assert unknown.status_code == 404


def test_every_firm_write_counts_in_the_next_preview(stack: Stack) -> None:
    """The matching service keeps the firms and reads what changed before each answer: a
    firm that grows into the rule, one erased and one registered count at once."""
    portal = populate(stack)
    bank = stack.institution("东莞测试银行")
    draft = data.product(min_patents=5, elig_size_classes=[])
    assert bank.post("/v1/products/preview", json=draft).json()["eligible"] == 6
    firms = portal.get("/v1/firms", params={"limit": 100}).json()["data"]
    reachable = [f for f in firms if f["consent_matching"] and f["need_amount_yuan"]]
    by_patents = {f["utility_patents"]: f for f in reachable if f["town_code"] == TANGXIA}
    grown = by_patents[4]
    patched = portal.patch(
        f"/v1/firms/{grown['id']}",
        json={"utility_patents": 5},
        headers={"If-Match": f'"{grown["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    assert portal.delete(f"/v1/firms/{by_patents[8]['id']}").status_code == 204
    new = data.firm(200, town_code=HUMEN, utility_patents=6, invention_patents=0)
    assert portal.post("/v1/firms", json=new).status_code == 201
    after = bank.post("/v1/products/preview", json=draft).json()
    assert after["firms_considered"] == 11  # one erased, one registered
    assert after["eligible"] == 7  # 6 + the grown one + the new one − the erased one
    towns = {c["key"]: c["firms"] for c in after["by_town"]}
    assert towns == {TANGXIA: 4, HUMEN: 3}


MODEL_VERSION = "test-reach-model"


@cache
def signed_model() -> dict[str, Any]:
    """A model trained on a small synthetic world's decisions (once for the module, a few
    seconds), signed with the matching service's test key, as a training job uploads it."""
    trained = train(export_rows(n_firms=300, n_applications=1_000), seed=0)
    trained = dataclasses.replace(trained, version=MODEL_VERSION)
    return {
        "version": MODEL_VERSION,
        "algorithm": trained.chosen,
        "metrics": finite(trained.metrics),
        "meta": finite_tree(trained.meta),
        "artifact_b64": base64.b64encode(dump(trained, matching_settings().signing_key)).decode(),
    }


def promote_model(stack: Stack) -> None:
    """Upload the signed model to the registry as a training job does, then promote it
    through the gateway's admin API: matching serves it from then on."""
    registry = TestClient(registry_app(stack.engine))
    uploaded = registry.post(
        "/internal/models", headers={"X-Internal-Token": TOKEN}, json=signed_model()
    )
    assert uploaded.status_code == 201, uploaded.text
    promoted = stack.admin.post(f"/v1/admin/models/{MODEL_VERSION}/promote")
    assert promoted.status_code == 200, promoted.text


def test_a_served_models_approval_share_is_the_mean_of_its_firm_probabilities(
    stack: Stack,
) -> None:
    """With a model served, the share is the mean of the probabilities matching gives each
    eligible firm for that product (every firm scored: margin 0); a withheld group has none."""
    portal = populate(stack)
    promote_model(stack)
    bank = stack.institution("东莞测试银行")
    product = bank.post("/v1/products", json=data.product(min_patents=5, elig_size_classes=[]))
    assert product.status_code == 201, product.text
    product_id = product.json()["id"]
    answer = bank.get(f"/v1/products/{product_id}/reach")
    assert answer.status_code == 200, answer.text
    reach = answer.json()
    assert (reach["model_version"], reach["is_prior"]) == (MODEL_VERSION, False)
    assert reach["eligible"] == 6
    share = reach["expected_approval_share"]
    assert isinstance(share, float)
    assert 0.0 <= share <= 1.0
    assert reach["expected_approval_share_margin"] == 0.0  # all 6 scored, no sample
    assert reach["expected_approval_share_scored"] == 6

    # Matching's ranking, firm by firm (its own path: one firm's features against the
    # listed product), gives each eligible firm's probability, to 4 decimals.
    probabilities = []
    for firm in portal.get("/v1/firms", params={"limit": 100}).json()["data"]:
        if not firm["consent_matching"]:
            continue
        matches = portal.get(f"/v1/firms/{firm['id']}/matches")
        assert matches.status_code == 200, matches.text
        assert matches.json()["model_version"] == MODEL_VERSION
        ranked = [r for r in matches.json()["ranked"] if r["product_id"] == product_id]
        if ranked and firm["need_amount_yuan"] is not None:
            probabilities.append(ranked[0]["approval_probability"])
    assert len(probabilities) == 6
    assert len(set(probabilities)) > 1  # the model tells these firms apart
    # Each probability is rounded to 4 decimals, and so is the share: within 1e-4.
    assert share == pytest.approx(sum(probabilities) / len(probabilities), abs=1e-4)

    # The same product as a draft answers the same. A draft admitting 8 patents in Humen
    # (2 firms) or in Tangxia (1 firm) withholds the count and the share alike.
    draft = data.product(min_patents=5, elig_size_classes=[])
    preview = bank.post("/v1/products/preview", json=draft).json()
    assert preview["expected_approval_share"] == share
    for town in (HUMEN, TANGXIA):
        few = bank.post(
            "/v1/products/preview",
            json=draft | {"min_patents": 8, "elig_town_codes": [town]},
        )
        assert few.status_code == 200, few.text
        withheld = few.json()
        assert (withheld["model_version"], withheld["is_prior"]) == (MODEL_VERSION, False)
        assert withheld["eligible"] is None
        assert withheld["expected_approval_share"] is None
        assert withheld["expected_approval_share_margin"] is None
        assert withheld["expected_approval_share_scored"] is None
        assert all(c["suppressed"] for c in withheld["by_town"])


def test_a_relaxation_adding_three_or_more_firms_is_counted_fewer_withheld(
    stack: Stack,
) -> None:
    """Firms with 3, 4 and 5 patents (2, 4 and 3 of them): one patent fewer than 5 admits the
    four with 4 (shown), one fewer than 4 the two with 3 (withheld)."""
    portal = stack.principal("portal")
    seq = iter(range(1, 100))
    for patents, firms in ((3, 2), (4, 4), (5, 3)):
        for _ in range(firms):
            body = data.firm(next(seq), invention_patents=0, utility_patents=patents)
            assert portal.post("/v1/firms", json=body).status_code == 201
    bank = stack.institution("东莞测试银行")

    five = bank.post("/v1/products/preview", json=data.product(min_patents=5)).json()
    assert (five["firms_considered"], five["eligible"]) == (9, 3)
    patents, *others = five["criteria"]  # the binding ones first, most admitted first
    assert patents == {
        **patents,
        "criterion": "min_patents",
        "setting": 5,
        "relaxed_to": 4,
        "additional_firms": 4,
        "binding": True,
        "suppressed": False,
    }
    assert all(not c["binding"] and c["additional_firms"] == 0 for c in others)

    listed = bank.post("/v1/products", json=data.product(min_patents=4))
    assert listed.status_code == 201, listed.text
    four = bank.get(f"/v1/products/{listed.json()['id']}/reach").json()
    assert four["eligible"] == 7
    [patents] = [c for c in four["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["relaxed_to"], patents["binding"]) == (3, True)
    assert (patents["additional_firms"], patents["suppressed"]) == (None, True)  # 2: withheld
