// The policy what-if panel: change one eligibility criterion of a category or product and see
// how many registered firms in scope would newly qualify (POST /v1/stats/what-if).

import { currentLang, formatCount, formatYuan, label, t } from "./i18n.js";
import { renderTable } from "./tables.js";

const $ = (id) => document.getElementById(id);

function options(select, entries) {
  const previous = select.value;
  select.replaceChildren(
    ...entries.map(([value, text]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      return option;
    }),
  );
  if (entries.some(([value]) => value === previous)) select.value = previous;
}

export function setupWhatIf({ context, principal, townScoped, api }) {
  const form = $("whatif-form");
  const result = $("whatif-result");
  const categoryName = Object.fromEntries(context.categories.map((c) => [c.code, c]));
  // The criteria and their names come from the server's criterion registry.
  const criteria = context.what_if_criteria ?? [];
  const isList = (code) => criteria.some((c) => c.code === code && c.list);
  let last = null;
  // A message of the panel as a text key and its values, so that a language switch redraws it.
  let message = null;
  const separator = () => (currentLang() === "en" ? ", " : "、");

  function target() {
    return form.querySelector('input[name="target"]:checked').value;
  }

  function products() {
    if (target() === "product") {
      return context.products.filter((p) => String(p.id) === $("w-product").value);
    }
    return context.products.filter((p) => p.category === $("w-category").value);
  }

  function sizeBoxes() {
    return [...$("w-sizes").querySelectorAll('input[type="checkbox"]')];
  }

  function relabel() {
    options(
      $("w-category"),
      context.categories.map((c) => [c.code, label(c)]),
    );
    const inBrackets = (text) => (currentLang() === "en" ? ` (${text})` : `（${text}）`);
    options(
      $("w-product"),
      context.products.map((p) => [String(p.id), `${p.name}${inBrackets(label(categoryName[p.category]))}`]),
    );
    // A product's name comes from the institution that listed it: data, never translated.
    for (const option of $("w-product").options) option.translate = false;
    options(
      $("w-criterion"),
      criteria.map((c) => [c.code, label(c)]),
    );
    if (townScoped) {
      options($("w-town"), [[principal.town_code, label({ zh: principal.town_zh, en: principal.town_en })]]);
    } else {
      options($("w-town"), [["", t("all_city")], ...context.towns.map((x) => [x.code, label(x)])]);
    }
    const checked = new Set(sizeBoxes().filter((b) => b.checked).map((b) => b.value));
    const legend = $("w-sizes").querySelector("legend");
    $("w-sizes").replaceChildren(
      legend,
      ...context.size_classes.map((size) => {
        const wrap = document.createElement("label");
        wrap.className = "inline";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = size.code;
        box.checked = checked.has(size.code);
        wrap.append(box, document.createTextNode(` ${label(size)}`));
        return wrap;
      }),
    );
    describeCurrent(false);
    if (last) showResult(last);
    else if (message) showMessage(message);
  }

  /** The criterion's value today (for a category: the range over its products); prefill. */
  function describeCurrent(prefill) {
    const criterion = $("w-criterion").value;
    const isSizes = isList(criterion); // the only list the panel edits: size classes
    $("w-value-field").hidden = isSizes;
    $("w-sizes").hidden = !isSizes;
    $("w-category-field").hidden = target() !== "category";
    $("w-product-field").hidden = target() !== "product";
    const values = products()
      .map((p) => p.criteria?.[criterion])
      .filter((v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0));
    let text = t("current_none");
    if (isSizes) {
      const sizes = [...new Set(values.flat())];
      if (sizes.length) {
        const names = Object.fromEntries(context.size_classes.map((s) => [s.code, label(s)]));
        text = t("current_value", { v: sizes.map((s) => names[s] ?? s).join(separator()) });
      }
      if (prefill) {
        const allowed = new Set(sizes.length ? sizes : context.size_classes.map((s) => s.code));
        for (const box of sizeBoxes()) box.checked = allowed.has(box.value);
      }
    } else if (values.length) {
      const low = Math.min(...values);
      const high = Math.max(...values);
      text = t("current_value", {
        v: low === high ? formatCount(low) : `${formatCount(low)} – ${formatCount(high)}`,
      });
      if (prefill) $("w-value").value = String(low);
    } else if (prefill) {
      $("w-value").value = "";
    }
    $("w-current").textContent = text;
  }

  function request() {
    const criterion = $("w-criterion").value;
    let value;
    if (isList(criterion)) {
      value = sizeBoxes().filter((b) => b.checked).map((b) => b.value);
      if (value.length === 0) throw new Error("whatif_need_sizes"); // a text key
    } else {
      const raw = $("w-value").value.trim();
      if (raw === "" || Number.isNaN(Number(raw))) throw new Error("whatif_need_value"); // a text key
      value = Number(raw);
    }
    const byProduct = target() === "product";
    return {
      product_id: byProduct ? Number($("w-product").value) : null,
      category: byProduct ? null : $("w-category").value,
      criterion,
      value,
      town_code: $("w-town").value || null,
    };
  }

  function figure(key, value, text) {
    const box = document.createElement("div");
    box.className = "tile small";
    box.dataset.whatif = key;
    const name = document.createElement("p");
    name.className = "tile-label";
    name.textContent = t(key === "requested_amount_yuan" ? "whatif_amount" : key);
    const number = document.createElement("p");
    number.className = "tile-value";
    number.dataset.value = value === null || value === undefined ? "" : String(value);
    number.textContent = text;
    box.append(name, number);
    return box;
  }

  function showResult(body) {
    result.replaceChildren();
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    tiles.append(
      figure("firms_considered", body.firms_considered, formatCount(body.firms_considered)),
      figure("baseline_eligible", body.baseline_eligible, formatCount(body.baseline_eligible)),
      figure("changed_eligible", body.changed_eligible, formatCount(body.changed_eligible)),
      figure("newly_qualifying", body.newly_qualifying, formatCount(body.newly_qualifying)),
      figure("requested_amount_yuan", body.requested_amount_yuan, formatYuan(body.requested_amount_yuan)),
    );
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = t("products_count", { n: (body.products ?? []).length });
    result.append(tiles, note);
    for (const [name, rows] of [
      ["by_industry", body.by_industry ?? []],
      ["by_size_class", body.by_size_class ?? []],
    ]) {
      const holder = document.createElement("div");
      holder.className = "table-holder";
      result.append(holder);
      renderTable(holder, {
        name: `whatif-${name.replaceAll("_", "-")}`,
        caption: t(name),
        rows,
        columns: [
          { key: "label", head: t("label"), cell: (r) => label(r) || r.key, csv: (r) => label(r) || r.key },
          {
            key: "firms",
            head: t("firms"),
            numeric: true,
            cell: (r) => (r.firms === null ? "<3" : formatCount(r.firms)),
            csv: (r) => (r.firms === null ? "<3" : r.firms),
          },
        ],
      });
    }
  }

  function showMessage({ key, values, className }) {
    result.replaceChildren(
      Object.assign(document.createElement("p"), { className, textContent: t(key, values) }),
    );
  }

  function say(key, className, values = {}) {
    last = null;
    message = { key, values, className };
    showMessage(message);
  }

  async function run(event) {
    event.preventDefault();
    let body;
    try {
      body = request();
    } catch (error) {
      say(error.message, "error");
      return;
    }
    $("w-run").disabled = true;
    result.setAttribute("aria-busy", "true");
    say("whatif_running", "note");
    try {
      last = await api("/v1/stats/what-if", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      message = null;
      showResult(last);
    } catch (error) {
      say("whatif_failed", "error", { detail: error.message });
    } finally {
      $("w-run").disabled = false;
      result.removeAttribute("aria-busy");
    }
  }

  relabel();
  // Start on 莞贸通's export threshold: the example the panel was asked for.
  if (context.categories.some((c) => c.code === "guanmaotong")) $("w-category").value = "guanmaotong";
  $("w-criterion").value = "min_export_usd";
  describeCurrent(true);
  form.addEventListener("change", (event) => {
    if (event.target.matches('input[name="target"], #w-category, #w-product, #w-criterion')) {
      describeCurrent(true);
    }
  });
  form.addEventListener("submit", run);
  return { relabel };
}
