// Data tables with captions and header cells, and their CSV export (UTF-8 with a BOM for Excel).

import { t } from "./i18n.js";

/**
 * columns: [{key, head, cell(row) -> text shown, csv(row) -> value exported, numeric, data}]
 * (``data``: the cells hold names from the data, such as institutions, never translated).
 * The first column is the row header. ``limit`` shows only the first rows; the CSV has all.
 * ``essential(row)``: only those rows are shown until the reader asks for all of them (a
 * toggle in the toolbar), so that a table of gaps leads with the gaps; ``emptyText`` says
 * why no row is shown then, and ``selectionNote({n, essential, total})`` what is shown.
 */
export function renderTable(holder, options) {
  const { name, caption, columns, limit, collapsible, note, sortable } = options;
  const { essential, emptyText, selectionNote } = options;
  const sort = holder.sort?.name === name ? holder.sort : null;
  let rows = options.rows;
  if (sort) {
    const column = columns.find((c) => c.key === sort.key);
    if (column) rows = sortedRows(rows, column, sort.descending);
  }
  holder.replaceChildren();
  holder.dataset.table = name;
  const toolbar = document.createElement("div");
  toolbar.className = "table-toolbar";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary csv";
  button.dataset.csv = name;
  button.textContent = t("csv");
  button.setAttribute("aria-label", t("csv_of", { name: caption }));
  button.disabled = rows.length === 0;
  button.addEventListener("click", () => downloadCsv(name, columns, rows));
  const showAll = holder.showAll?.name === name && holder.showAll.value;
  const selected = essential && !showAll ? rows.filter(essential) : rows;
  const shown = limit && !showAll && selected.length > limit ? selected.slice(0, limit) : selected;
  if (essential && (showAll || shown.length < rows.length)) {
    toolbar.prepend(showAllToggle(holder, options, showAll, rows.length));
  }
  toolbar.append(button);

  const table = document.createElement("table");
  table.className = "data";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  if (shown.length < rows.length) {
    const more = document.createElement("span");
    more.className = "caption-note";
    const counts = { n: shown.length, essential: selected.length, total: rows.length };
    const text =
      essential && !showAll && selectionNote ? selectionNote(counts) : t("top_rows", counts);
    more.textContent = ` ${text}`;
    cap.append(more);
  }
  if (note) {
    const extra = document.createElement("span");
    extra.className = "caption-note";
    extra.textContent = ` ${note}`;
    cap.append(extra);
  }
  table.append(cap);
  const head = table.createTHead().insertRow();
  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    if (column.numeric) th.className = "num";
    if (sortable) {
      // A button in the header: keyboard users sort too; aria-sort tells the current order.
      const active = sort?.key === column.key;
      if (active) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = `${column.head}${active ? (sort.descending ? " ▼" : " ▲") : ""}`;
      button.addEventListener("click", () => {
        const descending = active ? !sort.descending : Boolean(column.numeric);
        holder.sort = { name, key: column.key, descending };
        renderTable(holder, options);
        holder.querySelector(`th button.sort[data-key="${column.key}"]`)?.focus();
      });
      button.dataset.key = column.key;
      th.append(button);
    } else {
      th.textContent = column.head;
    }
    head.append(th);
  }
  const body = table.createTBody();
  if (shown.length === 0) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = columns.length;
    cell.textContent = rows.length > 0 && emptyText ? emptyText : t("no_rows");
  }
  for (const row of shown) {
    const tr = body.insertRow();
    tr.dataset.key = row.key ?? "";
    if (row.suppressed) tr.dataset.suppressed = "true";
    columns.forEach((column, index) => {
      const cell = document.createElement(index === 0 ? "th" : "td");
      if (index === 0) cell.scope = "row";
      if (column.numeric) cell.className = "num";
      if (column.nowrap) cell.classList.add("nowrap");
      if (column.data) cell.translate = false;
      cell.dataset.column = column.key;
      cell.textContent = column.cell(row);
      tr.append(cell);
    });
  }
  const wrapper = document.createElement("div");
  wrapper.className = "table-scroll";
  wrapper.append(table);
  if (collapsible) {
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = t("show_table");
    details.append(summary, wrapper);
    holder.append(toolbar, details);
  } else {
    holder.append(toolbar, wrapper);
  }
}

/** The button that shows every row or the essential ones only; the choice survives redraws. */
function showAllToggle(holder, options, showAll, total) {
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "secondary show-all";
  toggle.dataset.showAll = options.name;
  toggle.setAttribute("aria-pressed", String(showAll));
  toggle.textContent = showAll ? t("show_gap_rows") : t("show_all_rows", { n: total });
  toggle.addEventListener("click", () => {
    holder.showAll = { name: options.name, value: !showAll };
    renderTable(holder, options);
    holder.querySelector(`button[data-show-all="${options.name}"]`)?.focus();
  });
  return toggle;
}

function sortedRows(rows, column, descending) {
  const value = (row) => {
    const raw = row.suppressed ? null : column.csv(row);
    return raw === null || raw === undefined || raw === "" ? null : raw;
  };
  const sorted = [...rows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1; // hidden last
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  });
  return sorted;
}

function csvField(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  // A text cell that starts like a formula would be run by a spreadsheet: keep it text.
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvField(c.head)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvField(c.csv(row))).join(","));
  return `\ufeff${lines.join("\r\n")}\r\n`;
}

function downloadCsv(name, columns, rows) {
  const blob = new Blob([toCsv(columns, rows)], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `finmatch-${name}-${new Date().toISOString().slice(0, 10)}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
