// Small SVG charts (no library): a horizontal grouped bar chart and a line chart.
// Every mark carries data-key, data-series and data-value, and a <title> for a tooltip; the
// SVG is an image with a text alternative, and a data table sits beside each chart.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An axis of five ticks at a round step (1, 2 or 5 × 10^k) that reaches ``value``. */
function axis(value) {
  if (!(value > 0)) return { max: 4, ticks: [0, 1, 2, 3, 4] };
  const rough = value / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const max = step * Math.ceil(value / step);
  const ticks = [];
  for (let tick = 0; tick <= max + step / 2; tick += step) ticks.push(tick);
  return { max, ticks };
}

/** Chinese characters are about twice as wide as Latin letters at the same size. */
function shorten(text) {
  const room = /[\u3400-\u9fff]/.test(text) ? 15 : 28;
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

function frame(container, { title, width, height, summary }) {
  container.replaceChildren();
  const id = `${container.id}-svg`;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`,
    class: "chart-svg",
    id,
  });
  svg.append(el("title", { id: `${id}-title` }, title), el("desc", { id: `${id}-desc` }, summary));
  container.append(svg);
  return svg;
}

/** One item per series, then notes on the marks (a note: {kind, label}, a hatched swatch). */
function legend(container, series, notes = []) {
  const list = document.createElement("ul");
  list.className = "legend";
  const item = (swatchClass, text) => {
    const entry = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${swatchClass}`;
    swatch.setAttribute("aria-hidden", "true");
    entry.append(swatch, document.createTextNode(text));
    list.append(entry);
    return entry;
  };
  for (const s of series) item(`series-${s.index}`, s.label);
  for (const note of notes) item("partial", note.label).dataset.partialNote = note.kind;
  container.append(list);
}

/** A hatch for the months not yet whole (a pattern: no colour alone carries the meaning). */
function hatch(svg, id) {
  const pattern = el("pattern", {
    id,
    width: 6,
    height: 6,
    patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)",
  });
  pattern.append(el("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  const defs = el("defs");
  defs.append(pattern);
  svg.append(defs);
}

/**
 * Horizontal bars, one group per row and one bar per series.
 * rows: [{key, label, values: {series: number|null}, suppressed}]
 * series: [{key, label}]
 */
export function barChart(container, { title, rows, series, format, suppressedText }) {
  const labelWidth = 180;
  const valueRoom = 90;
  const width = 640;
  const barHeight = 12;
  const gap = 10;
  const groupHeight = series.length * barHeight + gap;
  const height = Math.max(40, rows.length * groupHeight + 24);
  const { max, ticks } = axis(
    Math.max(0, ...rows.flatMap((r) => series.map((s) => r.values[s.key] ?? 0))),
  );
  const plot = width - labelWidth - valueRoom;
  const summary = rows
    .map((r) =>
      r.suppressed
        ? `${r.label}: ${suppressedText}`
        : `${r.label}: ${series.map((s) => `${s.label} ${format(r.values[s.key])}`).join(", ")}`,
    )
    .join("; ");
  const svg = frame(container, { title, width, height, summary });
  for (const tick of ticks) {
    const x = labelWidth + (plot * tick) / max;
    svg.append(el("line", { x1: x, x2: x, y1: 0, y2: height - 20, class: "grid-line" }));
    svg.append(el("text", { x, y: height - 6, class: "axis", "text-anchor": "middle" }, format(tick)));
  }
  rows.forEach((row, index) => {
    const top = index * groupHeight + 4;
    const group = el("g", { "data-key": row.key, class: "bar-group" });
    const name = el(
      "text",
      { x: labelWidth - 8, y: top + (series.length * barHeight) / 2 + 4, "text-anchor": "end", class: "label" },
      shorten(row.label),
    );
    name.append(el("title", {}, row.label));
    group.append(name);
    if (row.suppressed) {
      group.setAttribute("data-suppressed", "true");
      group.append(
        el("text", { x: labelWidth + 4, y: top + (series.length * barHeight) / 2 + 4, class: "muted" }, suppressedText),
      );
    } else {
      series.forEach((s, i) => {
        const value = row.values[s.key] ?? 0;
        const y = top + i * barHeight;
        const bar = el("rect", {
          x: labelWidth,
          y,
          width: Math.max(value > 0 ? 1 : 0, (plot * value) / max),
          height: barHeight - 2,
          class: `bar series-${i}`,
          "data-key": row.key,
          "data-series": s.key,
          "data-value": value,
        });
        bar.append(el("title", {}, `${row.label} · ${s.label}: ${format(value)}`));
        group.append(bar);
        group.append(
          el("text", { x: labelWidth + (plot * value) / max + 4, y: y + barHeight - 3, class: "value" }, format(value)),
        );
      });
    }
    svg.append(group);
  });
  legend(container, series.map((s, index) => ({ ...s, index })));
}

/**
 * One line per series over ordered keys (months); a suppressed row breaks the lines.
 * rows: [{key, label, values, suppressed, partial}]; a row with ``partial`` (a key of
 * ``partialNotes``, e.g. the month to date) sits on a hatched band, its points are hollow and
 * the line into it is faint, and the legend says why: its lower figure is no fall.
 */
export function lineChart(container, { title, rows, series, format, suppressedText, partialNotes = {} }) {
  const width = 640;
  const height = 260;
  const left = 56;
  const right = 30;
  const top = 12;
  const bottom = 36;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const { max, ticks } = axis(
    Math.max(0, ...rows.flatMap((r) => series.map((s) => (r.suppressed ? 0 : r.values[s.key] ?? 0)))),
  );
  const x = (i) => left + (rows.length <= 1 ? plotWidth / 2 : (plotWidth * i) / (rows.length - 1));
  const y = (v) => top + plotHeight - (plotHeight * v) / max;
  const named = (r) => (r.partial && partialNotes[r.partial] ? `${r.label} (${partialNotes[r.partial]})` : r.label);
  const summary = rows
    .map((r) =>
      r.suppressed
        ? `${named(r)}: ${suppressedText}`
        : `${named(r)}: ${series.map((s) => `${s.label} ${format(r.values[s.key])}`).join(", ")}`,
    )
    .join("; ");
  const svg = frame(container, { title, width, height, summary });
  const step = rows.length <= 1 ? plotWidth : plotWidth / (rows.length - 1);
  const hatchId = `${container.id}-hatch`;
  if (rows.some((r) => r.partial)) hatch(svg, hatchId);
  rows.forEach((row, i) => {
    if (!row.partial) return;
    const start = Math.max(left, x(i) - step / 2);
    const band = el("rect", {
      x: start,
      y: top,
      width: Math.min(width, x(i) + step / 2) - start,
      height: plotHeight,
      fill: `url(#${hatchId})`,
      class: "partial-band",
      "data-key": row.key,
      "data-partial": row.partial,
    });
    band.append(el("title", {}, named(row)));
    svg.append(band);
  });
  for (const value of ticks) {
    svg.append(el("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid-line" }));
    svg.append(el("text", { x: left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, format(value)));
  }
  const every = Math.max(1, Math.ceil(rows.length / 8));
  rows.forEach((row, i) => {
    if (i % every === 0 || i === rows.length - 1) {
      svg.append(el("text", { x: x(i), y: height - 14, class: "axis", "text-anchor": "middle" }, row.label));
    }
  });
  series.forEach((s, index) => {
    // Whole months on one path; each segment into a partial month on a faint path of its own.
    let path = "";
    let faint = "";
    let pen = "M";
    let previous = null;
    rows.forEach((row, i) => {
      if (row.suppressed || row.values[s.key] === null || row.values[s.key] === undefined) {
        pen = "M";
        previous = null;
        return;
      }
      const here = `${x(i).toFixed(1)},${y(row.values[s.key]).toFixed(1)}`;
      if (row.partial) {
        if (previous) faint += `M${previous} L${here} `;
        pen = "M";
      } else {
        path += `${pen}${here} `;
        pen = "L";
      }
      previous = here;
    });
    svg.append(el("path", { d: path.trim(), class: `line series-${index}`, fill: "none" }));
    if (faint) {
      svg.append(el("path", { d: faint.trim(), class: `line partial series-${index}`, fill: "none" }));
    }
    rows.forEach((row, i) => {
      if (row.suppressed) return;
      const value = row.values[s.key] ?? 0;
      const point = el("circle", {
        cx: x(i),
        cy: y(value),
        r: 3.5,
        class: `point series-${index}${row.partial ? " partial" : ""}`,
        "data-key": row.key,
        "data-series": s.key,
        "data-value": value,
      });
      if (row.partial) point.setAttribute("data-partial", row.partial);
      point.append(el("title", {}, `${named(row)} · ${s.label}: ${format(value)}`));
      svg.append(point);
    });
  });
  rows.forEach((row, i) => {
    if (row.suppressed) {
      const mark = el("text", { x: x(i), y: top + plotHeight - 4, class: "muted", "text-anchor": "middle", "data-key": row.key, "data-suppressed": "true" }, "<3");
      mark.append(el("title", {}, `${row.label}: ${suppressedText}`));
      svg.append(mark);
    }
  });
  const kinds = [...new Set(rows.map((r) => r.partial).filter((kind) => kind && partialNotes[kind]))];
  legend(
    container,
    series.map((s, index) => ({ ...s, index })),
    kinds.map((kind) => ({ kind, label: partialNotes[kind] })),
  );
}
