// Chinese by default, English on request; only the chosen language is remembered (localStorage).

const STORE = "finmatch.lang";

const TEXT = {
  zh: {
    brand: "东莞中小微企业融资对接 · 监测看板",
    page_title: "融资对接监测看板",
    signin_page_title: "登录 · 融资对接监测看板",
    skip: "跳到主要内容",
    signin_title: "政府部门登录",
    signin_hint: "请输入官员或管理员的 API 密钥。密钥只用于换取本次登录的会话，不会保存在浏览器中。",
    signin_key: "API 密钥",
    signin_submit: "登录",
    signin_error_invalid_key: "密钥无效或已吊销。",
    signin_error_not_official: "只有政府部门（官员）和管理员的密钥可以登录看板。",
    signin_error_rate_limited: "尝试次数过多，请稍后再试。",
    signin_error_bad_request: "请输入密钥。",
    signin_error_cross_site: "请从本站的登录页登录。",
    signin_error_unavailable: "服务暂时不可用，请稍后再试。",
    signout: "退出登录",
    print: "打印",
    synthetic: "合成数据：以下数字来自演示用的模拟数据，不代表真实企业或机构。",
    filters: "筛选",
    date_from: "起始日期",
    date_to: "截止日期（含）",
    town: "镇街",
    category: "产品类别",
    product: "产品",
    apply: "更新",
    reset: "重置",
    all_city: "全市",
    all_categories: "全部类别",
    loading: "正在加载…",
    loaded: "已更新",
    load_failed: "部分数据加载失败",
    unavailable: "暂无数据（接口不可用）",
    no_rows: "暂无数据",
    kpis: "关键指标",
    targets: "行动方案目标进度",
    target: "目标",
    plan_item: "（第{n}条）",
    met: "已达成",
    not_met: "未达成",
    chart_month: "月度趋势",
    chart_category: "按产品类别",
    chart_town: "按镇街",
    chart_size: "按企业规模",
    league: "金融机构排行",
    coverage: "覆盖缺口",
    coverage_degraded: "匹配服务暂不可用，“无可申请产品”一栏可能不完整。",
    coverage_no_eligible: "有融资需求但无可申请产品的企业",
    coverage_no_application: "已匹配但未申请的企业",
    registers: "官方名录覆盖",
    registers_note: "名录当前有效且已在平台注册的企业中，获匹配、申请、获批的企业数；绿色企业名录另计获得绿色信贷的企业（第 44 条）。",
    register: "名录",
    town: "镇街",
    reg_firms: "名录内注册企业",
    reg_matched: "已匹配",
    reg_applied: "已申请",
    reg_approved: "已获批",
    reg_green_credit: "获绿色信贷",
    top_rows: "（显示前 {n} 行，CSV 含全部 {total} 行）",
    show_table: "数据表",
    csv: "导出 CSV",
    csv_of: "导出 CSV：{name}",
    suppressed: "已隐藏",
    footnote: "少于 3 家企业的分组已隐藏（显示为“<3”），以保护企业信息。",
    scope_city: "全市",
    role_admin: "管理员",
    // Columns and series
    key: "分组",
    label: "名称",
    month: "月份",
    firms: "企业数",
    applications: "申请笔数",
    approved: "获批笔数",
    rejected: "拒绝笔数",
    pending: "待审批",
    approval_rate: "获批率",
    requested_amount_yuan: "申请金额（元）",
    approved_amount_yuan: "获批金额（元）",
    first_loan_approved: "首贷获批",
    institution: "机构",
    kind: "类型",
    decided: "已决定",
    response_hours_median: "响应时间中位数（小时）",
    response_hours_p90: "响应时间 P90（小时）",
    small_micro_approved_amount_yuan: "小微企业获批金额（元）",
    first_loans: "首贷笔数",
    overdue: "超期未响应",
    overdue_share: "超期占比",
    deadline: "响应时限：{n} 个工作日",
    town_name: "镇街",
    section_name: "行业门类",
    firms_with_need: "有需求企业",
    firms_with_need_no_eligible: "无可申请产品",
    firms_matched: "已匹配企业",
    firms_matched_no_application: "未申请",
    gap_share: "缺口占比",
    kind_bank: "银行",
    kind_insurer: "保险",
    kind_guarantor: "担保",
    kind_lessor: "租赁",
    kind_other: "其他",
    // KPI tiles
    kpi_firms_registered: "注册企业",
    kpi_firms_with_need: "有融资需求的企业",
    kpi_firms_matched: "已匹配企业",
    kpi_applications: "融资申请",
    kpi_approvals: "获批笔数",
    kpi_approval_rate: "获批率",
    kpi_requested_amount_yuan: "申请金额",
    kpi_approved_amount_yuan: "获批金额",
    kpi_first_loan_firms: "首贷企业",
    kpi_small_micro_share_of_approved: "小微企业获批金额占比",
    kpi_response_hours_median: "机构响应时间（中位数）",
    kpi_average_approved_rate_bp: "平均获批利率",
    sub_pending: "待审批 {n} 笔",
    sub_rejections: "拒绝 {n} 笔",
    sub_first_loan_rate: "首贷率 {v}",
    sub_p90: "P90：{v}",
    hours: "{v} 小时",
    // What-if
    whatif: "政策模拟（What-if）",
    whatif_hint: "选择一个产品类别或产品，修改一项准入条件，查看辖区内有多少注册企业将新符合条件。",
    whatif_target: "模拟对象",
    whatif_by_category: "产品类别",
    whatif_by_product: "单个产品",
    criterion: "准入条件",
    new_value: "新的门槛",
    allowed_sizes: "允许的企业规模",
    scope: "范围",
    whatif_run: "模拟",
    whatif_running: "正在计算…",
    whatif_failed: "模拟失败：{detail}",
    whatif_need_sizes: "请至少选择一种企业规模。",
    whatif_need_value: "请输入新的门槛。",
    current_value: "当前：{v}",
    current_none: "当前：无此限制",
    firms_considered: "纳入计算的企业",
    baseline_eligible: "现行条件下符合",
    changed_eligible: "调整后符合",
    newly_qualifying: "新符合条件的企业",
    whatif_amount: "其融资需求金额",
    by_industry: "新符合企业：按行业",
    by_size_class: "新符合企业：按规模",
    products_count: "涉及产品 {n} 个",
    date_order: "起始日期晚于截止日期。",
    // Coverage gaps: rows with a gap first; the others behind "show all"
    show_all_rows: "显示全部 {n} 行（含无缺口的分组）",
    show_gap_rows: "只显示有缺口的分组",
    gap_rows: "（有缺口的分组 {n} 个，共 {total} 个；CSV 含全部）",
    gap_rows_top: "（有缺口的 {essential} 个分组中的前 {n} 个，共 {total} 个；CSV 含全部）",
    no_gaps: "没有缺口：本表所有分组的缺口均为 0（少于 3 家企业的分组除外）。",
    // Monthly trend: the month still running
    month_to_date: "本月至今",
    month_to_date_note: "本月至今（未满一个月，数字仍会增加）",
    month_partial: "部分月份",
    month_partial_note: "所选期间只含该月的一部分",
    // A town's part of the city's targets
    targets_town: "对全市行动方案目标的贡献",
    contribution: "{town}贡献 {current}，占全市目标 {target} 的 {share}",
    count_firms: "{n} 家",
    town_share: "{town}：{current}；全市目标 {goal}",
    share_at_target: "达到全市目标水平",
    share_below_target: "未达全市目标水平",
  },
  en: {
    brand: "Dongguan SME financing · dashboard",
    page_title: "SME financing dashboard",
    signin_page_title: "Sign in · SME financing dashboard",
    skip: "Skip to main content",
    signin_title: "Sign in for officials",
    signin_hint:
      "Enter an official's or admin's API key. It is only exchanged for this session and never stored in the browser.",
    signin_key: "API key",
    signin_submit: "Sign in",
    signin_error_invalid_key: "Unknown or revoked key.",
    signin_error_not_official: "Only officials' and admins' keys can sign in to the dashboard.",
    signin_error_rate_limited: "Too many attempts; try again in a minute.",
    signin_error_bad_request: "Enter a key.",
    signin_error_cross_site: "Sign in from this site's sign-in page.",
    signin_error_unavailable: "The service is unavailable; try again in a moment.",
    signout: "Sign out",
    print: "Print",
    synthetic: "Synthetic data: the figures below come from simulated demo data, not real firms or institutions.",
    filters: "Filters",
    date_from: "From",
    date_to: "To (inclusive)",
    town: "Town",
    category: "Product category",
    product: "Product",
    apply: "Update",
    reset: "Reset",
    all_city: "Whole city",
    all_categories: "All categories",
    loading: "Loading…",
    loaded: "Updated",
    load_failed: "Some data could not be loaded",
    unavailable: "No data (endpoint unavailable)",
    no_rows: "No data",
    kpis: "Key figures",
    targets: "Action-plan targets",
    target: "Target",
    plan_item: " (item {n})",
    met: "met",
    not_met: "not met",
    chart_month: "Monthly trend",
    chart_category: "By product category",
    chart_town: "By town",
    chart_size: "By size class",
    league: "Institution league table",
    coverage: "Coverage gaps",
    coverage_degraded: "The matching service is unavailable; the “no eligible product” table may be incomplete.",
    coverage_no_eligible: "Firms with a financing need but no eligible product",
    coverage_no_application: "Firms matched that never applied",
    registers: "Official registers' coverage",
    registers_note: "Of the registered firms on each register's current list: how many were matched, applied and were approved; for the green list, how many got green credit (item 44).",
    register: "Register",
    town: "Town",
    reg_firms: "Listed firms registered",
    reg_matched: "Matched",
    reg_applied: "Applied",
    reg_approved: "Approved",
    reg_green_credit: "Green credit",
    top_rows: "(first {n} rows; the CSV has all {total})",
    show_table: "Data table",
    csv: "Export CSV",
    csv_of: "Export CSV: {name}",
    suppressed: "hidden",
    footnote: "Groups of fewer than 3 firms are hidden (shown as “<3”) to protect firms’ information.",
    scope_city: "whole city",
    role_admin: "admin",
    key: "Group",
    label: "Name",
    month: "Month",
    firms: "Firms",
    applications: "Applications",
    approved: "Approved",
    rejected: "Rejected",
    pending: "Pending",
    approval_rate: "Approval rate",
    requested_amount_yuan: "Requested (yuan)",
    approved_amount_yuan: "Approved (yuan)",
    first_loan_approved: "First loans approved",
    institution: "Institution",
    kind: "Kind",
    decided: "Decided",
    response_hours_median: "Median response (hours)",
    response_hours_p90: "P90 response (hours)",
    small_micro_approved_amount_yuan: "Approved to small/micro (yuan)",
    first_loans: "First loans",
    overdue: "Overdue",
    overdue_share: "Overdue share",
    deadline: "Response deadline: {n} working days",
    town_name: "Town",
    section_name: "Industry section",
    firms_with_need: "Firms with a need",
    firms_with_need_no_eligible: "No eligible product",
    firms_matched: "Firms matched",
    firms_matched_no_application: "Never applied",
    gap_share: "Gap share",
    kind_bank: "bank",
    kind_insurer: "insurer",
    kind_guarantor: "guarantor",
    kind_lessor: "lessor",
    kind_other: "other",
    kpi_firms_registered: "Firms registered",
    kpi_firms_with_need: "Firms with a financing need",
    kpi_firms_matched: "Firms matched",
    kpi_applications: "Applications",
    kpi_approvals: "Approvals",
    kpi_approval_rate: "Approval rate",
    kpi_requested_amount_yuan: "Amount requested",
    kpi_approved_amount_yuan: "Amount approved",
    kpi_first_loan_firms: "First-loan firms",
    kpi_small_micro_share_of_approved: "Small/micro share of approved amount",
    kpi_response_hours_median: "Institution response (median)",
    kpi_average_approved_rate_bp: "Average approved rate",
    sub_pending: "{n} pending",
    sub_rejections: "{n} rejected",
    sub_first_loan_rate: "first-loan rate {v}",
    sub_p90: "P90: {v}",
    hours: "{v} h",
    whatif: "Policy what-if",
    whatif_hint:
      "Pick a product category or product, change one eligibility criterion, and see how many registered firms in scope would newly qualify.",
    whatif_target: "Simulate",
    whatif_by_category: "a product category",
    whatif_by_product: "one product",
    criterion: "Criterion",
    new_value: "New threshold",
    allowed_sizes: "Size classes allowed",
    scope: "Scope",
    whatif_run: "Simulate",
    whatif_running: "Calculating…",
    whatif_failed: "The simulation failed: {detail}",
    whatif_need_sizes: "Choose at least one size class.",
    whatif_need_value: "Enter the new threshold.",
    current_value: "Now: {v}",
    current_none: "Now: no such restriction",
    firms_considered: "Firms considered",
    baseline_eligible: "Eligible today",
    changed_eligible: "Eligible after the change",
    newly_qualifying: "Newly qualifying firms",
    whatif_amount: "Their requested amount",
    by_industry: "Newly qualifying: by industry",
    by_size_class: "Newly qualifying: by size class",
    products_count: "{n} products concerned",
    date_order: "“From” is after “To”.",
    show_all_rows: "Show all {n} rows (with the groups without a gap)",
    show_gap_rows: "Only the groups with a gap",
    gap_rows: "({n} groups with a gap of {total}; the CSV has all)",
    gap_rows_top: "(the first {n} of {essential} groups with a gap, {total} in all; the CSV has all)",
    no_gaps: "No gaps: every group of this table has a gap of 0 (groups of fewer than 3 firms aside).",
    month_to_date: "month to date",
    month_to_date_note: "Month to date (not a full month yet; its figures still grow)",
    month_partial: "part of the month",
    month_partial_note: "The period chosen covers only part of this month",
    targets_town: "Contribution to the city's action-plan targets",
    contribution: "{town} contributes {current} of the city's {target} target ({share})",
    count_firms: "{n} firms",
    town_share: "{town}: {current}; city target {goal}",
    share_at_target: "at the city's target level",
    share_below_target: "below the city's target level",
  },
};

export function currentLang() {
  try {
    return localStorage.getItem(STORE) === "en" ? "en" : "zh";
  } catch {
    return "zh";
  }
}

export function t(key, values = {}) {
  const text = TEXT[currentLang()][key] ?? TEXT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function applyLanguage(root = document) {
  const lang = currentLang();
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  const button = document.getElementById("lang-switch");
  if (button) {
    button.textContent = lang === "en" ? "中文" : "English";
    button.lang = lang === "en" ? "zh-CN" : "en";
    button.setAttribute("aria-label", lang === "en" ? "切换到中文" : "Switch to English");
  }
}

/** Wires the language button; ``onChange`` redraws what the page built itself. */
export function setupLanguageSwitch(onChange = () => {}) {
  applyLanguage();
  const button = document.getElementById("lang-switch");
  if (!button) return;
  button.addEventListener("click", () => {
    const next = currentLang() === "en" ? "zh" : "en";
    try {
      localStorage.setItem(STORE, next);
    } catch {
      // Storage disabled: the switch still works for this page.
    }
    applyLanguage();
    onChange();
  });
}

/** The label of a vocabulary entry or row in the current language. */
export function label(entry) {
  if (!entry) return "";
  const lang = currentLang();
  return (lang === "en" ? entry.label_en ?? entry.en : entry.label_zh ?? entry.zh) ?? entry.key ?? "";
}

function locale() {
  return currentLang() === "en" ? "en-US" : "zh-CN";
}

export function formatCount(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(locale()).format(value);
}

export function formatYuan(value) {
  if (value === null || value === undefined) return "—";
  const compact = new Intl.NumberFormat(locale(), {
    notation: "compact",
    maximumFractionDigits: 2,
  }).format(value);
  return currentLang() === "en" ? `¥${compact}` : `${compact}元`;
}

export function formatShare(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(
    value,
  );
}

export function formatDecimal(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value);
}

export function formatHours(value) {
  if (value === null || value === undefined) return "—";
  return t("hours", { v: new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value) });
}

export function formatRateBp(value) {
  if (value === null || value === undefined) return "—";
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(value / 100)}%`;
}
