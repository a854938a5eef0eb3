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

function legend(container, series) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const s of series) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch series-${s.index}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(s.label));
    list.append(item);
  }
  container.append(list);
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
 * rows: [{key, label, values, suppressed}]
 */
export function lineChart(container, { title, rows, series, format, suppressedText }) {
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
  const summary = rows
    .map((r) =>
      r.suppressed
        ? `${r.label}: ${suppressedText}`
        : `${r.label}: ${series.map((s) => `${s.label} ${format(r.values[s.key])}`).join(", ")}`,
    )
    .join("; ");
  const svg = frame(container, { title, width, height, summary });
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
    let path = "";
    let pen = "M";
    rows.forEach((row, i) => {
      if (row.suppressed || row.values[s.key] === null || row.values[s.key] === undefined) {
        pen = "M";
        return;
      }
      path += `${pen}${x(i).toFixed(1)},${y(row.values[s.key]).toFixed(1)} `;
      pen = "L";
    });
    svg.append(el("path", { d: path.trim(), class: `line series-${index}`, fill: "none" }));
    rows.forEach((row, i) => {
      if (row.suppressed) return;
      const value = row.values[s.key] ?? 0;
      const point = el("circle", {
        cx: x(i),
        cy: y(value),
        r: 3.5,
        class: `point series-${index}`,
        "data-key": row.key,
        "data-series": s.key,
        "data-value": value,
      });
      point.append(el("title", {}, `${row.label} · ${s.label}: ${format(value)}`));
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
  legend(container, series.map((s, index) => ({ ...s, index })));
}
