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
const state = { answers: {}, generation: 0, status: null };

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

function townOnly(params) {
  const town = params.get("town_code");
  return town ? new URLSearchParams({ town_code: town }) : new URLSearchParams();
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
    setStatus("date_order", true);
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
    // Registers are read as valid today: only the town narrows them, not the period.
    registers: withParams("/v1/stats/registers", townOnly(params)),
  };
  if (!townScoped) requests.town = withParams("/v1/stats/breakdown", params, { by: "town" });
  $("main").setAttribute("aria-busy", "true");
  document.body.dataset.loading = "true";
  setStatus("loading");
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
  setStatus(failed ? "load_failed" : "loaded", failed);
  $("main").removeAttribute("aria-busy");
  document.body.dataset.loading = "false";
  document.body.dataset.query = state.query;
}

/** The status line holds a text key, not a text: a language switch redraws it too. */
function setStatus(key, isError = false) {
  state.status = { key, isError };
  renderStatus();
}

function renderStatus() {
  const status = $("status");
  status.textContent = state.status ? t(state.status.key) : "";
  status.classList.toggle("error", Boolean(state.status?.isError));
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
  renderRegisters();
}

function renderWho() {
  const scope =
    principal.role === "admin"
      ? t("role_admin")
      : townScoped
        ? label({ zh: principal.town_zh, en: principal.town_en }) || principal.town_code
        : t("scope_city");
  const name = document.createElement("span");
  name.translate = false; // a name from the data, not interface text
  name.textContent = principal.name;
  $("who").replaceChildren(name, ` · ${scope}`);
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

/** The name of the town a targets answer is about (null: the whole city). */
function targetsTown() {
  const code = state.answers.targets?.ok ? state.answers.targets.body.town_code : null;
  if (!code) return null;
  return label(vocab.town[code]) || code;
}

function goalText(target) {
  return `${target.comparison === ">" ? ">" : "≥"} ${formatByUnit(target.unit, target.target)}`;
}

/**
 * What a target row says: a town's count or amount is its part of the city's total (never
 * "not met": the plan sets the target for the city); a town's share is compared with the
 * city's threshold; the city's figures are met or not.
 */
function targetText(target, share, met) {
  const item = t("plan_item", { n: target.plan_item });
  const town = targetsTown();
  if (target.measure === "contribution") {
    const current =
      target.unit === "firms"
        ? t("count_firms", { n: formatCount(target.current) })
        : formatByUnit(target.unit, target.current);
    const sentence = t("contribution", {
      town,
      current,
      target: formatByUnit(target.unit, target.target),
      share: share === null ? "—" : formatShare(share),
    });
    return `${sentence}${item}`;
  }
  if (town && target.measure === "share") {
    const current = formatByUnit(target.unit, target.current);
    return `${t("town_share", { town, current, goal: goalText(target) })}${item} · ${
      met ? t("share_at_target") : t("share_below_target")
    }`;
  }
  const goal = `${t("target")} ${goalText(target)}`;
  return `${goal}${item} · ${share === null ? "—" : formatShare(share)} · ${met ? t("met") : t("not_met")}`;
}

function progress(target) {
  const wrap = document.createElement("div");
  wrap.className = "target";
  wrap.dataset.measure = target.measure ?? "total";
  const share = target.progress === null || target.progress === undefined ? null : target.progress;
  const contribution = target.measure === "contribution";
  const met =
    !contribution &&
    (target.met ??
      (target.current !== null &&
        (target.comparison === ">" ? target.current > target.target : target.current >= target.target)));
  const bar = document.createElement("div");
  bar.className = `progress${met ? " met" : ""}${contribution ? " contribution" : ""}`;
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const percent = share === null ? 0 : Math.round(Math.min(1, share) * 100);
  bar.setAttribute("aria-valuenow", String(percent));
  const text = document.createElement("p");
  text.className = "target-text";
  text.textContent = targetText(target, share, met);
  bar.setAttribute("aria-label", `${label(target)}: ${text.textContent}`);
  const fill = document.createElement("span");
  fill.className = "progress-fill";
  fill.style.width = `${percent}%`;
  bar.append(fill);
  wrap.append(bar, text);
  return wrap;
}

function renderTargets() {
  const holder = $("targets");
  const answer = state.answers.targets;
  const heading = $("targets-title");
  heading.dataset.i18n = answer?.ok && answer.body.scope === "town" ? "targets_town" : "targets";
  heading.textContent = t(heading.dataset.i18n);
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
      cell: (r) => monthLabel(by, r),
      csv: (r) => monthLabel(by, r),
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

/** A row's name; a month not yet whole (or cut by the period) says so. */
function monthLabel(by, row) {
  const name = rowLabel(by, row);
  if (!row.partial) return name;
  const note = row.partial === "to_date" ? t("month_to_date") : t("month_partial");
  return `${name} (${note})`;
}

/** Today's date in China time (the statistics' periods are China days), as YYYY-MM-DD. */
function chinaToday() {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(new Date());
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}

function lastDayOfMonth(month) {
  const [year, number] = month.split("-").map(Number);
  return `${month}-${String(new Date(Date.UTC(year, number, 0)).getUTCDate()).padStart(2, "0")}`;
}

/**
 * The months of the trend that are not whole, so that the drop at the right edge does not read
 * as a collapse: the current month runs "to date"; a period that starts or ends inside a month
 * covers only part of it. Returns month (YYYY-MM) -> "to_date" | "period".
 */
function partialMonths() {
  const today = chinaToday();
  const from = $("f-from").value;
  const to = $("f-to").value; // inclusive on the page
  const marks = new Map();
  if (from && !from.endsWith("-01")) marks.set(from.slice(0, 7), "period");
  if (to && to < today) {
    if (to !== lastDayOfMonth(to.slice(0, 7))) marks.set(to.slice(0, 7), "period");
  } else if (!from || from <= today) {
    marks.set(today.slice(0, 7), "to_date");
  }
  return marks;
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
  const partial = by === "month" ? partialMonths() : new Map();
  const marks = (list) =>
    list.map((r) => ({
      key: r.key,
      label: rowLabel(by, r),
      suppressed: Boolean(r.suppressed),
      partial: partial.get(r.key) ?? null,
      values: { applications: r.applications, approved: r.approved },
    }));
  if (by === "month") {
    rows = [...rows].sort((a, b) => String(a.key).localeCompare(String(b.key)));
    rows = rows.map((r) => (partial.has(r.key) ? { ...r, partial: partial.get(r.key) } : r));
    const notes = { to_date: t("month_to_date_note"), period: t("month_partial_note") };
    lineChart(chart, {
      title,
      rows: marks(rows),
      series,
      format: formatCount,
      suppressedText: "<3",
      partialNotes: notes,
    });
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
      { key: "name", head: t("institution"), data: true, cell: (r) => r.name, csv: (r) => r.name },
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
  const keyed = (rows) => rows.map((r) => ({ ...r, key: `${r.town_code}-${r.industry_section}` }));
  const table = (holder, name, caption, total, missing, rows) =>
    renderTable(holder, {
      name,
      caption,
      columns: gapColumns(total, missing),
      rows: keyed(largestGapsFirst(rows, total, missing)),
      limit: GAP_ROWS,
      essential: (r) => (r[missing] ?? 0) > 0,
      emptyText: t("no_gaps"),
      selectionNote: (counts) =>
        t(counts.n < counts.essential ? "gap_rows_top" : "gap_rows", counts),
    });
  table(
    first,
    "coverage-no-eligible-product",
    t("coverage_no_eligible"),
    "firms_with_need",
    "firms_with_need_no_eligible",
    answer.body.no_eligible_product,
  );
  table(
    second,
    "coverage-matched-no-application",
    t("coverage_no_application"),
    "firms_matched",
    "firms_matched_no_application",
    answer.body.matched_no_application,
  );
}

/** Per town and register: listed firms registered with us, matched, applied, approved. */
function renderRegisters() {
  const holder = $("table-registers");
  const answer = state.answers.registers;
  if (!answer?.ok) {
    unavailable(holder, answer);
    return;
  }
  const rows = answer.body.by_town.flatMap((town) =>
    town.registers.map((r) => ({ ...r, town, key: `${town.town_code}-${r.kind}` })),
  );
  const shown = (r, value) => (r.suppressed ? "<3" : value === null ? "–" : formatCount(value));
  const exported = (r, value) => (r.suppressed ? "<3" : value);
  const column = (key) => ({
    key,
    head: t(`reg_${key}`),
    numeric: true,
    cell: (r) => shown(r, r[key]),
    csv: (r) => exported(r, r[key]),
  });
  renderTable(holder, {
    name: "registers",
    caption: t("registers"),
    rows,
    columns: [
      {
        key: "town",
        head: t("town"),
        cell: (r) => label({ zh: r.town.town_zh, en: r.town.town_en }) || r.town.town_code,
        csv: (r) => r.town.town_code,
      },
      { key: "kind", head: t("register"), cell: (r) => label(r), csv: (r) => r.kind },
      column("firms"),
      column("matched"),
      column("applied"),
      column("approved"),
      column("green_credit"),
    ],
  });
}

/**
 * The gaps that need action first: most firms left without (a product, an application), then
 * the largest share of the group, then town and section codes so that the order is stable.
 * Groups of fewer than 3 firms (hidden counts) come last.
 */
function largestGapsFirst(rows, total, missing) {
  const count = (r) => r[missing] ?? -1;
  const share = (r) => (r[total] ? (r[missing] ?? 0) / r[total] : -1);
  return [...rows].sort(
    (a, b) =>
      count(b) - count(a) ||
      share(b) - share(a) ||
      String(a.town_code).localeCompare(String(b.town_code)) ||
      String(a.industry_section).localeCompare(String(b.industry_section)),
  );
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
    renderStatus();
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
