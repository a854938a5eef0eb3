// The dashboard: filters → /v1/stats/* (session cookie + the dashboard header) → tiles, charts
// and tables. Redraws from the last answers when the language changes.

import { barChart, lineChart } from "./charts.js";
import {
  currentLang,
  formatCount,
  formatDecimal,
  formatHours,
  formatRateBp,
  formatShare,
  formatYuan,
  label,
  setupLanguageSwitch,
  t,
} from "./i18n.js";
import { renderTable } from "./tables.js";
import { setupWhatIf } from "./whatif.js";

const context = JSON.parse(document.getElementById("context").textContent);
const principal = context.principal;
const townScoped = principal.role === "official" && Boolean(principal.town_code);
const HEADERS = { "X-Finmatch-Dashboard": "1", Accept: "application/json" };
const CHART_ROWS = 12;
const GAP_ROWS = 15;
const state = { answers: {}, generation: 0 };

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { ...HEADERS, ...(options.headers ?? {}) },
  });
  if (response.status === 401) {
    window.location.assign("/dashboard"); // the session ended: the sign-in form
    throw new Error("signed out");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new Error(body?.detail ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- vocabulary ----------------------------------------------------------------------------

const vocab = {
  town: Object.fromEntries(context.towns.map((x) => [x.code, x])),
  category: Object.fromEntries(context.categories.map((x) => [x.code, x])),
  size_class: Object.fromEntries(context.size_classes.map((x) => [x.code, x])),
};

function rowLabel(by, row) {
  if (row.label_zh || row.label_en) return label(row);
  const entry = vocab[by]?.[row.key];
  return entry ? label(entry) : String(row.key);
}

function fillSelect(select, options, keep = true) {
  const previous = keep ? select.value : "";
  select.replaceChildren(
    ...options.map(([value, text]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      return option;
    }),
  );
  if (options.some(([value]) => value === previous)) select.value = previous;
}

function fillFilterSelects() {
  fillSelect($("f-town"), [["", t("all_city")], ...context.towns.map((x) => [x.code, label(x)])]);
  fillSelect($("f-category"), [
    ["", t("all_categories")],
    ...context.categories.map((x) => [x.code, label(x)]),
  ]);
}

// ---- filters and loading -------------------------------------------------------------------

function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

function filterParams() {
  const params = new URLSearchParams();
  const from = $("f-from").value;
  const to = $("f-to").value;
  if (from) params.set("date_from", from);
  if (to) params.set("date_to", nextDay(to)); // the API's date_to is exclusive
  if (!townScoped && $("f-town").value) params.set("town_code", $("f-town").value);
  if ($("f-category").value) params.set("category", $("f-category").value);
  return params;
}

function withParams(path, params, extra = {}) {
  const query = new URLSearchParams(params);
  for (const [key, value] of Object.entries(extra)) query.set(key, value);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function load() {
  const from = $("f-from").value;
  const to = $("f-to").value;
  if (from && to && from > to) {
    setStatus(currentLang() === "en" ? "“From” is after “To”." : "起始日期晚于截止日期。", true);
    return;
  }
  const generation = ++state.generation;
  const params = filterParams();
  const requests = {
    overview: withParams("/v1/stats/overview", params),
    targets: withParams("/v1/stats/targets", params),
    month: withParams("/v1/stats/breakdown", params, { by: "month" }),
    category: withParams("/v1/stats/breakdown", params, { by: "category" }),
    size_class: withParams("/v1/stats/breakdown", params, { by: "size_class" }),
    institutions: withParams("/v1/stats/institutions", params),
    coverage: withParams("/v1/stats/coverage", params),
  };
  if (!townScoped) requests.town = withParams("/v1/stats/breakdown", params, { by: "town" });
  $("main").setAttribute("aria-busy", "true");
  document.body.dataset.loading = "true";
  setStatus(t("loading"));
  const names = Object.keys(requests);
  const settled = await Promise.allSettled(names.map((name) => api(requests[name])));
  if (generation !== state.generation) return; // a newer filter change is on its way
  state.answers = Object.fromEntries(
    names.map((name, i) => [
      name,
      settled[i].status === "fulfilled"
        ? { ok: true, body: settled[i].value }
        : { ok: false, error: settled[i].reason },
    ]),
  );
  state.query = params.toString();
  render();
  const failed = settled.some((s) => s.status === "rejected");
  setStatus(failed ? t("load_failed") : t("loaded"), failed);
  $("main").removeAttribute("aria-busy");
  document.body.dataset.loading = "false";
  document.body.dataset.query = state.query;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// ---- rendering -----------------------------------------------------------------------------

function render() {
  renderWho();
  renderOverview();
  renderTargets();
  renderBreakdown("month");
  renderBreakdown("category");
  if (!townScoped) renderBreakdown("town");
  renderBreakdown("size_class");
  renderInstitutions();
  renderCoverage();
}

function renderWho() {
  const scope =
    principal.role === "admin"
      ? t("role_admin")
      : townScoped
        ? label({ zh: principal.town_zh, en: principal.town_en }) || principal.town_code
        : t("scope_city");
  $("who").textContent = t("signed_in_as", { name: principal.name, scope });
}

function unavailable(holder, answer) {
  holder.replaceChildren();
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = `${t("unavailable")}${answer?.error?.status ? ` (${answer.error.status})` : ""}`;
  holder.append(p);
}

const KPIS = [
  { key: "firms_registered", format: formatCount },
  { key: "firms_with_need", format: formatCount },
  { key: "firms_matched", format: formatCount },
  { key: "applications", format: formatCount, sub: (o) => t("sub_pending", { n: formatCount(o.pending) }) },
  { key: "approvals", format: formatCount, sub: (o) => t("sub_rejections", { n: formatCount(o.rejections) }) },
  { key: "approval_rate", format: formatShare },
  { key: "requested_amount_yuan", format: formatYuan },
  { key: "approved_amount_yuan", format: formatYuan },
  {
    key: "first_loan_firms",
    format: formatCount,
    sub: (o) => t("sub_first_loan_rate", { v: formatShare(o.first_loan_rate) }),
  },
  { key: "small_micro_share_of_approved", format: formatShare },
  {
    key: "response_hours_median",
    format: formatHours,
    sub: (o) => t("sub_p90", { v: formatHours(o.response_hours_p90) }),
  },
  { key: "average_approved_rate_bp", format: formatRateBp },
];

function tile({ key, name, value, text, sub }) {
  const box = document.createElement("div");
  box.className = "tile";
  box.dataset.kpi = key;
  const title = document.createElement("p");
  title.className = "tile-label";
  title.id = `tile-${key}`;
  title.textContent = name;
  const figure = document.createElement("p");
  figure.className = "tile-value";
  figure.dataset.value = value === null || value === undefined ? "" : String(value);
  figure.setAttribute("aria-describedby", title.id);
  figure.textContent = text;
  box.append(title, figure);
  if (sub) {
    const small = document.createElement("p");
    small.className = "tile-sub";
    small.textContent = sub;
    box.append(small);
  }
  return box;
}

function renderOverview() {
  const holder = $("kpis");
  const answer = state.answers.overview;
  $("synthetic-banner").hidden = !(answer?.ok && answer.body.synthetic);
  document.body.classList.toggle("synthetic", Boolean(answer?.ok && answer.body.synthetic));
  if (!answer?.ok) {
    unavailable(holder, answer);
    return;
  }
  const overview = answer.body;
  const targets = state.answers.targets?.ok ? state.answers.targets.body.rows : [];
  holder.replaceChildren(
    ...KPIS.map((kpi) => {
      const box = tile({
        key: kpi.key,
        name: t(`kpi_${kpi.key}`),
        value: overview[kpi.key],
        text: kpi.format(overview[kpi.key]),
        sub: kpi.sub?.(overview),
      });
      const target = targets.find((row) => row.key === kpi.key);
      if (target) box.append(progress(target));
      return box;
    }),
  );
}

function formatByUnit(unit, value) {
  if (unit === "yuan") return formatYuan(value);
  if (unit === "share") return formatShare(value);
  return formatCount(value);
}

function progress(target) {
  const wrap = document.createElement("div");
  wrap.className = "target";
  const share = target.progress === null || target.progress === undefined ? null : target.progress;
  const met =
    target.met ??
    (target.current !== null &&
      (target.comparison === ">" ? target.current > target.target : target.current >= target.target));
  const bar = document.createElement("div");
  bar.className = `progress${met ? " met" : ""}`;
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const percent = share === null ? 0 : Math.round(Math.min(1, share) * 100);
  bar.setAttribute("aria-valuenow", String(percent));
  const goal = `${t("target")} ${target.comparison === ">" ? ">" : "≥"} ${formatByUnit(target.unit, target.target)}`;
  bar.setAttribute("aria-label", `${label(target)}: ${goal}`);
  const fill = document.createElement("span");
  fill.className = "progress-fill";
  fill.style.width = `${percent}%`;
  bar.append(fill);
  const text = document.createElement("p");
  text.className = "target-text";
  text.textContent = `${goal}${t("plan_item", { n: target.plan_item })} · ${
    share === null ? "—" : formatShare(share)
  } · ${met ? t("met") : t("not_met")}`;
  wrap.append(bar, text);
  return wrap;
}

function renderTargets() {
  const holder = $("targets");
  const answer = state.answers.targets;
  if (!answer?.ok) {
    unavailable(holder, answer);
    return;
  }
  holder.replaceChildren(
    ...answer.body.rows.map((row) => {
      const box = tile({
        key: `target-${row.key}`,
        name: label(row),
        value: row.current,
        text: formatByUnit(row.unit, row.current),
      });
      box.classList.add("target-tile");
      box.append(progress(row));
      return box;
    }),
  );
}

function suppressedOr(row, value, format) {
  return row.suppressed ? t("suppressed") : format(value);
}

function breakdownColumns(by) {
  const count = (key) => ({
    key,
    head: t(key),
    numeric: true,
    cell: (r) => suppressedOr(r, r[key], formatCount),
    csv: (r) => (r.suppressed ? t("suppressed") : r[key]),
  });
  return [
    {
      key: "label",
      head: by === "month" ? t("month") : t("label"),
      cell: (r) => rowLabel(by, r),
      csv: (r) => rowLabel(by, r),
    },
    {
      key: "firms",
      head: t("firms"),
      numeric: true,
      cell: (r) => (r.suppressed ? "<3" : formatCount(r.firms)),
      csv: (r) => (r.suppressed ? "<3" : r.firms),
    },
    count("applications"),
    count("approved"),
    count("rejected"),
    count("pending"),
    {
      key: "approval_rate",
      head: t("approval_rate"),
      numeric: true,
      cell: (r) => suppressedOr(r, r.approval_rate, formatShare),
      csv: (r) => (r.suppressed ? t("suppressed") : r.approval_rate),
    },
    count("requested_amount_yuan"),
    count("approved_amount_yuan"),
    count("first_loan_approved"),
  ];
}

const CHART_TITLES = {
  month: "chart_month",
  category: "chart_category",
  town: "chart_town",
  size_class: "chart_size",
};

function renderBreakdown(by) {
  const chart = $(`chart-${by}`);
  const table = $(`table-${by}`);
  const answer = state.answers[by];
  if (!answer?.ok) {
    unavailable(chart, answer);
    table.replaceChildren();
    return;
  }
  let rows = answer.body.rows;
  const title = t(CHART_TITLES[by]);
  const series = [
    { key: "applications", label: t("applications") },
    { key: "approved", label: t("approved") },
  ];
  const marks = (list) =>
    list.map((r) => ({
      key: r.key,
      label: rowLabel(by, r),
      suppressed: Boolean(r.suppressed),
      values: { applications: r.applications, approved: r.approved },
    }));
  if (by === "month") {
    rows = [...rows].sort((a, b) => String(a.key).localeCompare(String(b.key)));
    lineChart(chart, { title, rows: marks(rows), series, format: formatCount, suppressedText: "<3" });
  } else {
    if (by === "town") rows = [...rows].sort((a, b) => (b.applications ?? -1) - (a.applications ?? -1));
    if (by === "size_class") {
      const order = context.size_classes.map((size) => size.code);
      rows = [...rows].sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
    }
    const shown = rows.slice(0, CHART_ROWS);
    barChart(chart, { title, rows: marks(shown), series, format: formatCount, suppressedText: "<3" });
  }
  chart.dataset.query = state.query;
  renderTable(table, {
    name: by,
    caption: title,
    columns: breakdownColumns(by),
    rows,
    collapsible: true,
  });
}

function renderInstitutions() {
  const holder = $("table-institutions");
  const answer = state.answers.institutions;
  if (!answer?.ok) {
    unavailable(holder, answer);
    return;
  }
  const hidden = (r, value, format) => (r.suppressed ? t("suppressed") : format(value));
  const raw = (r, value) => (r.suppressed ? t("suppressed") : value);
  const column = (key, format = formatCount) => ({
    key,
    head: t(key),
    numeric: true,
    cell: (r) => hidden(r, r[key], format),
    csv: (r) => raw(r, r[key]),
  });
  const rows = answer.body.rows.map((r) => ({ ...r, key: String(r.institution_id) }));
  renderTable(holder, {
    name: "institutions",
    caption: t("league"),
    sortable: true,
    note: t("deadline", { n: answer.body.deadline_working_days }),
    rows,
    columns: [
      { key: "name", head: t("institution"), cell: (r) => r.name, csv: (r) => r.name },
      {
        key: "kind",
        head: t("kind"),
        nowrap: true,
        cell: (r) => t(`kind_${r.kind}`),
        csv: (r) => r.kind,
      },
      column("applications"),
      column("decided"),
      column("approved"),
      column("approval_rate", formatShare),
      column("response_hours_median", formatDecimal),
      column("response_hours_p90", formatDecimal),
      column("approved_amount_yuan"),
      column("small_micro_approved_amount_yuan"),
      column("first_loans"),
      column("overdue"),
      column("overdue_share", formatShare),
    ],
  });
}

function gapColumns(total, missing) {
  const share = (r) => (r[total] ? r[missing] / r[total] : null);
  return [
    {
      key: "town",
      head: t("town_name"),
      cell: (r) => label({ zh: r.town_zh, en: r.town_en }) || r.town_code,
      csv: (r) => label({ zh: r.town_zh, en: r.town_en }) || r.town_code,
    },
    {
      key: "section",
      head: t("section_name"),
      cell: (r) => `${r.industry_section} ${label({ zh: r.section_zh, en: r.section_en })}`,
      csv: (r) => `${r.industry_section} ${label({ zh: r.section_zh, en: r.section_en })}`,
    },
    {
      key: total,
      head: t(total),
      numeric: true,
      cell: (r) => (r[total] === null ? "<3" : formatCount(r[total])),
      csv: (r) => (r[total] === null ? "<3" : r[total]),
    },
    {
      key: missing,
      head: t(missing),
      numeric: true,
      cell: (r) => (r[missing] === null ? "<3" : formatCount(r[missing])),
      csv: (r) => (r[missing] === null ? "<3" : r[missing]),
    },
    {
      key: "gap_share",
      head: t("gap_share"),
      numeric: true,
      cell: (r) => formatShare(share(r)),
      csv: (r) => share(r),
    },
  ];
}

function renderCoverage() {
  const first = $("table-no_eligible");
  const second = $("table-no_application");
  const answer = state.answers.coverage;
  if (!answer?.ok) {
    unavailable(first, answer);
    second.replaceChildren();
    $("coverage-degraded").hidden = true;
    return;
  }
  $("coverage-degraded").hidden = !answer.body.degraded;
  const byGap = (key) => (a, b) => (b[key] ?? -1) - (a[key] ?? -1);
  const keyed = (rows) => rows.map((r) => ({ ...r, key: `${r.town_code}-${r.industry_section}` }));
  renderTable(first, {
    name: "coverage-no-eligible-product",
    caption: t("coverage_no_eligible"),
    columns: gapColumns("firms_with_need", "firms_with_need_no_eligible"),
    rows: keyed([...answer.body.no_eligible_product].sort(byGap("firms_with_need_no_eligible"))),
    limit: GAP_ROWS,
  });
  renderTable(second, {
    name: "coverage-matched-no-application",
    caption: t("coverage_no_application"),
    columns: gapColumns("firms_matched", "firms_matched_no_application"),
    rows: keyed([...answer.body.matched_no_application].sort(byGap("firms_matched_no_application"))),
    limit: GAP_ROWS,
  });
}

// ---- sign-out ------------------------------------------------------------------------------

// DELETE with the dashboard header (the server refuses a sign-out without it, so that no other
// site can sign an official out), then the page again: the sign-in form, or, if the request
// failed, the dashboard still signed in.
async function signOut() {
  $("signout").disabled = true;
  try {
    await fetch("/dashboard/session", {
      method: "DELETE",
      credentials: "same-origin",
      headers: HEADERS,
    });
  } catch {
    // no answer: the page reloaded below shows whether the session is still open
  }
  window.location.assign("/dashboard");
}

// ---- start ---------------------------------------------------------------------------------

function start() {
  if (townScoped) {
    $("f-town-field").hidden = true;
    $("town-section").remove();
  }
  fillFilterSelects();
  const whatIf = setupWhatIf({ context, principal, townScoped, api });
  setupLanguageSwitch(() => {
    fillFilterSelects();
    whatIf.relabel();
    render();
  });
  const form = $("filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  form.addEventListener("change", () => load());
  form.addEventListener("reset", () => setTimeout(load, 0));
  $("print").addEventListener("click", () => window.print());
  $("signout").addEventListener("click", signOut);
  renderWho();
  load();
}

start();
