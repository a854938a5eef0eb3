"""The dashboard in a real Chromium over a real gateway with the demo data: sign-in, figures
checked against the API, filters, CSV export, the what-if panel, town scoping, sign-out."""

from __future__ import annotations

import calendar
import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.gateway.dashboard.sessions import SESSION_COOKIE
from tests.dashboard.live import LiveGateway

TOWN = "441900116"  # 塘厦镇, the demo town official's
OTHER_TOWN = "441900003"  # 东城街道
COUNT_KPIS = (
    "firms_registered",
    "firms_with_need",
    "applications",
    "approvals",
    "first_loan_firms",
)
AMOUNT_KPIS = ("requested_amount_yuan", "approved_amount_yuan")


def sign_in(page: Any, live: LiveGateway, role: str) -> None:
    page.goto(f"{live.url}/dashboard")
    page.fill("#key", live.keys[role])
    page.click("#signin-submit")
    page.wait_for_url(f"{live.url}/dashboard")
    wait_loaded(page)


def wait_loaded(page: Any, query: str | None = None) -> None:
    """Until every statistics request of the current filters has been answered and drawn."""
    page.wait_for_function(
        "q => document.body.dataset.loading === 'false'"
        " && (q === null || document.body.dataset.query === q)",
        arg=query,
    )


def get(live: LiveGateway, role: str, path: str, **params: str) -> Any:
    with live.api(role) as api:
        answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def kpi(page: Any, key: str) -> str:
    return str(page.get_attribute(f'[data-kpi="{key}"] .tile-value', "data-value"))


def chart_values(page: Any, chart: str, series: str = "applications") -> dict[str, int]:
    return page.eval_on_selector_all(
        f'#chart-{chart} [data-series="{series}"]',
        "marks => Object.fromEntries(marks.map(m => [m.dataset.key, Number(m.dataset.value)]))",
    )


def month_end(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{month}-{calendar.monthrange(year, number)[1]:02d}"


def test_city_official_sees_the_seeded_figures(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    key = live.keys["official_city"]

    # The key went into a POST body and nowhere else.
    assert key not in page.url
    assert key not in page.content()
    stored = page.evaluate(
        "JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert key not in stored
    assert SESSION_COOKIE not in page.evaluate("document.cookie")  # HttpOnly
    (cookie,) = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert key not in cookie["value"]

    overview = get(live, "official_city", "/v1/stats/overview")
    assert overview["synthetic"] is True
    assert page.is_visible("#synthetic-banner")
    assert "合成数据" in page.inner_text("#synthetic-banner")
    for name in (*COUNT_KPIS, *AMOUNT_KPIS):
        assert kpi(page, name) == str(overview[name]), name
    for name in COUNT_KPIS:
        shown = page.inner_text(f'[data-kpi="{name}"] .tile-value')
        assert re.sub(r"\D", "", shown) == str(overview[name]), (name, shown)
    assert overview["firms_registered"] > 0

    targets = get(live, "official_city", "/v1/stats/targets")["rows"]
    assert page.locator("#targets .tile").count() == len(targets)
    assert page.locator('[data-kpi="firms_registered"] [role="progressbar"]').count() == 1

    categories = get(live, "official_city", "/v1/stats/breakdown", by="category")["rows"]
    shown = chart_values(page, "category")
    expected = {r["key"]: r["applications"] for r in categories if not r["suppressed"]}
    assert shown == dict(list(expected.items())[: len(shown)])
    assert len(shown) == min(len(expected), 12)
    towns = get(live, "official_city", "/v1/stats/breakdown", by="town")["rows"]
    assert page.locator("#chart-town [data-series]").count() > 0
    assert page.locator("#table-town tbody tr").count() == len(towns)
    league = get(live, "official_city", "/v1/stats/institutions")["rows"]
    assert page.locator("#table-institutions tbody tr").count() == len(league)
    page.click('#table-institutions th button[data-key="approved_amount_yuan"]')
    top = max((r for r in league if not r["suppressed"]), key=lambda r: r["approved_amount_yuan"])
    assert page.inner_text("#table-institutions tbody tr:first-child th") == top["name"]
    assert page.get_attribute("#table-institutions th[aria-sort]", "aria-sort") == "descending"
    assert page.locator("#table-no_eligible table caption").count() == 1


def test_page_is_labelled_keyboard_usable_and_legible(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
            .filter(el => el.type !== 'hidden' && el.labels.length === 0)
            .map(el => el.id || el.name)"""
    )
    assert unlabelled == []
    assert page.locator("table:not(:has(caption))").count() == 0
    assert page.locator('th[scope="col"]').count() > 0
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "lang-switch"
    # Text against its background: WCAG contrast of at least 4.5:1 (no transparent stacking).
    ratios = page.evaluate(CONTRAST_JS)
    low = {selector: ratio for selector, ratio in ratios.items() if ratio < 4.5}
    assert not low, low


CONTRAST_JS = """() => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const color = getComputedStyle(el).backgroundColor;
      if (!color.startsWith('rgba(0, 0, 0, 0)') && color !== 'transparent') return rgb(color);
    }
    return [255, 255, 255];
  };
  const out = {};
  for (const selector of ['.brand', '.who', '#synthetic-banner', '.field label', '.tile-label',
                          '.tile-value', '.tile-sub', '.target-text', 'table.data th',
                          'table.data td', 'button[type=submit]', 'button.csv', '.footnote',
                          '.note', 'details summary']) {
    const el = document.querySelector(selector);
    if (!el) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    out[selector] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""


def test_filters_refetch_and_redraw_the_charts(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    before = chart_values(page, "month")
    assert before

    page.select_option("#f-category", "first_loan")
    wait_loaded(page, "category=first_loan")
    after = chart_values(page, "month")
    filtered = get(live, "official_city", "/v1/stats/breakdown", by="month", category="first_loan")
    assert after == {r["key"]: r["applications"] for r in filtered["rows"] if not r["suppressed"]}
    assert after != before
    overview = get(live, "official_city", "/v1/stats/overview", category="first_loan")
    assert kpi(page, "applications") == str(overview["applications"])

    # A period inside the seeded history (which ends today): whole months, the "to" date
    # inclusive on the page and exclusive in the API.
    history = sorted(before)
    first, last = history[len(history) // 4], history[len(history) // 2]
    date_from, date_to = f"{first}-01", month_end(last)
    api_to = (date.fromisoformat(date_to) + timedelta(days=1)).isoformat()
    page.fill("#f-from", date_from)
    page.fill("#f-to", date_to)
    page.click("#filters button[type=submit]")
    wait_loaded(page, f"date_from={date_from}&date_to={api_to}&category=first_loan")
    months = chart_values(page, "month")
    assert months
    assert all(first <= month <= last for month in months), months
    period = {"category": "first_loan", "date_from": date_from, "date_to": api_to}
    in_period = get(live, "official_city", "/v1/stats/overview", **period)
    assert kpi(page, "applications") == str(in_period["applications"])

    page.select_option("#f-town", TOWN)
    wait_loaded(
        page, f"date_from={date_from}&date_to={api_to}&town_code={TOWN}&category=first_loan"
    )
    town = get(live, "official_city", "/v1/stats/overview", **period, town_code=TOWN)
    assert kpi(page, "applications") == str(town["applications"])


def read_download(page: Any, selector: str) -> tuple[str, list[list[str]]]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so that Excel reads the Chinese"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    return download.suggested_filename, rows


def test_csv_export_has_the_rows_of_the_api(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    name, rows = read_download(page, 'button[data-csv="category"]')
    assert name.startswith("finmatch-category-")
    assert name.endswith(".csv")
    header, *body = rows
    assert header[:4] == ["名称", "企业数", "申请笔数", "获批笔数"]
    api_rows = get(live, "official_city", "/v1/stats/breakdown", by="category")["rows"]
    assert len(body) == len(api_rows)
    for line, row in zip(body, api_rows, strict=True):
        assert line[0] == row["label_zh"]
        if row["suppressed"]:
            assert line[1] == "<3"
            assert line[2] == "已隐藏"
        else:
            assert line[1:3] == [str(row["firms"]), str(row["applications"])]
            assert line[header.index("获批金额（元）")] == str(row["approved_amount_yuan"])

    _name, league = read_download(page, 'button[data-csv="institutions"]')
    api_league = get(live, "official_city", "/v1/stats/institutions")["rows"]
    assert [line[0] for line in league[1:]] == [r["name"] for r in api_league]

    page.click("#lang-switch")
    _name, english = read_download(page, 'button[data-csv="size_class"]')
    assert english[0][:3] == ["Name", "Firms", "Applications"]


def test_what_if_shows_the_newly_qualifying_firms(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    assert page.input_value("#w-category") == "guanmaotong"
    assert page.input_value("#w-criterion") == "min_export_usd"
    assert "当前" in page.inner_text("#w-current")
    page.fill("#w-value", "1000000")
    page.click("#w-run")
    page.wait_for_selector('[data-whatif="newly_qualifying"]')
    body = {
        "product_id": None,
        "category": "guanmaotong",
        "criterion": "min_export_usd",
        "value": 1_000_000,
        "town_code": None,
    }
    with live.api("official_city") as api:
        expected = api.post("/v1/stats/what-if", json=body)
    assert expected.status_code == 200, expected.text
    result = expected.json()
    for name in (
        "firms_considered",
        "baseline_eligible",
        "newly_qualifying",
        "requested_amount_yuan",
    ):
        shown = page.get_attribute(f'[data-whatif="{name}"] .tile-value', "data-value")
        assert shown == str(result[name]), name
    industry_rows = page.locator('[data-table="whatif-by-industry"] tbody tr[data-key]')
    assert industry_rows.count() == len(result["by_industry"])

    page.check('input[name="target"][value="product"]')
    page.select_option("#w-criterion", "size_classes")
    assert page.is_visible("#w-sizes")
    assert not page.is_visible("#w-value")


def test_town_official_cannot_reach_another_town(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_town")
    assert "塘厦镇" in page.inner_text("#who")
    assert not page.is_visible("#f-town")
    assert page.locator("#town-section").count() == 0
    own = get(live, "official_town", "/v1/stats/overview")
    assert own["filters"]["town_code"] == TOWN
    assert kpi(page, "firms_registered") == str(own["firms_registered"])
    city = get(live, "official_city", "/v1/stats/overview")
    assert own["firms_registered"] < city["firms_registered"]

    status = """async (town) => (await fetch('/v1/stats/' + town, {
        headers: {'X-Finmatch-Dashboard': '1'}})).status"""
    assert page.evaluate(status, f"overview?town_code={OTHER_TOWN}") == 404
    assert page.evaluate(status, f"breakdown?by=month&town_code={OTHER_TOWN}") == 404
    assert page.evaluate(status, f"overview?town_code={TOWN}") == 200
    assert page.eval_on_selector_all("#w-town option", "os => os.map(o => o.value)") == [TOWN]
    # The session opens the statistics only, not the rest of the API.
    assert page.evaluate("async () => (await fetch('/v1/products')).status") == 401


def test_portal_key_cannot_sign_in(page: Any, live: LiveGateway) -> None:
    page.goto(f"{live.url}/dashboard")
    page.fill("#key", live.keys["portal"])
    page.click("#signin-submit")
    page.wait_for_selector("#signin-error")
    assert "只有政府部门" in page.inner_text("#signin-error")
    assert [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE] == []
    assert live.keys["portal"] not in page.content()


def test_english_switch_and_sign_out(page: Any, live: LiveGateway) -> None:
    sign_in(page, live, "official_city")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.click("#lang-switch")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "dashboard" in page.inner_text(".brand").lower()
    assert page.evaluate("localStorage.getItem('finmatch.lang')") == "en"
    page.reload()
    wait_loaded(page)
    assert page.inner_text("#kpi-title") == "Key figures"
    assert "Synthetic data" in page.inner_text("#synthetic-banner")

    (cookie,) = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    page.click("#signout")
    page.wait_for_selector("#key")
    assert page.inner_text("h1") == "Sign in for officials"  # the language stays, nothing else
    assert [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE] == []
    replayed = httpx.get(
        f"{live.url}/v1/stats/overview", cookies={SESSION_COOKIE: cookie["value"]}, timeout=30
    )
    assert replayed.status_code == 401


def test_screenshot_shows_real_chinese(page: Any, live: LiveGateway, artifacts: Path) -> None:
    sign_in(page, live, "official_city")
    page.fill("#w-value", "1000000")
    page.click("#w-run")
    page.wait_for_selector('[data-whatif="newly_qualifying"]')
    # Which fonts drew the title: a CJK face, not boxes from a font without Chinese glyphs.
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": ".brand"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk = [f for f in fonts if re.search(r"CJK|PingFang|YaHei|Hei|Song", f["familyName"])]
    assert cjk, fonts
    assert sum(f["glyphCount"] for f in cjk) >= len("东莞中小微企业融资对接监测看板")
    path = artifacts / "dashboard.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 50_000
    page.emulate_media(media="print")
    assert not page.is_visible("#filters button[type=submit]")
    assert page.is_visible("#kpis")
