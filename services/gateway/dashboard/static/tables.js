// Data tables with captions and header cells, and their CSV export (UTF-8 with a BOM for Excel).

import { t } from "./i18n.js";

/**
 * columns: [{key, head, cell(row) -> text shown, csv(row) -> value exported, numeric}]
 * The first column is the row header. ``limit`` shows only the first rows; the CSV has all.
 */
export function renderTable(holder, options) {
  const { name, caption, columns, limit, collapsible, note, sortable } = options;
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
  toolbar.append(button);

  const table = document.createElement("table");
  table.className = "data";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  const shown = limit && rows.length > limit ? rows.slice(0, limit) : rows;
  if (shown.length < rows.length) {
    const more = document.createElement("span");
    more.className = "caption-note";
    more.textContent = ` ${t("top_rows", { n: shown.length, total: rows.length })}`;
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
    cell.textContent = t("no_rows");
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
