/* Small SVG charts (line, bars, histogram) drawn by hand; each comes with its numbers as a table
   (for screen readers, and for anyone who wants the exact values). */
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 480, H = 240, M = { top: 12, right: 12, bottom: 34, left: 48 };
  const COLORS = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490"];

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const fmt = (v) => (v === null || v === undefined ? "–" : Number.isInteger(v) ? String(v) : Number(v).toFixed(3));

  function niceTicks(lo, hi, n = 5) {
    if (hi === lo) { hi = lo + 1; }
    const step0 = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= step0) || step0;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toFixed(10)));
    return ticks;
  }

  function frame(title, xLabel, yLabel) {
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    root.append(svg("title", {}, title));
    root.append(svg("line", { class: "axis", x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom }));
    root.append(svg("line", { class: "axis", x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom }));
    if (xLabel) root.append(svg("text", { x: (M.left + W - M.right) / 2, y: H - 4, "text-anchor": "middle" }, xLabel));
    if (yLabel) root.append(svg("text", { x: 12, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${(M.top + H - M.bottom) / 2})` }, yLabel));
    return root;
  }

  const tick = (t) => String(Number(t.toPrecision(6)));
  function yAxis(root, lo, hi, sy) {
    for (const t of niceTicks(lo, hi)) {
      root.append(svg("line", { x1: M.left - 4, x2: W - M.right, y1: sy(t), y2: sy(t), stroke: "#e3e8ee" }));
      root.append(svg("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, tick(t)));
    }
  }

  function legend(series) {
    return AL.el("div", { class: "legend" }, series.map((s, i) =>
      AL.el("span", {}, AL.el("i", { style: `background:${s.color || COLORS[i % COLORS.length]}` }), s.name)));
  }

  function table(caption, head, rows) {
    return AL.el("details", {}, AL.el("summary", {}, "Numbers"),
      AL.el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, AL.el("table", { class: "chart-data" },
        AL.el("caption", { class: "visually-hidden" }, caption),
        AL.el("thead", {}, AL.el("tr", {}, head.map((h) => AL.el("th", { scope: "col" }, h)))),
        AL.el("tbody", {}, rows.map((r) => AL.el("tr", {}, r.map((c, j) => AL.el(j ? "td" : "th", j ? { class: "num" } : { scope: "row" }, fmt(c)))))))));
  }

  /* series: [{name, key, points: [{x, y}]}]; every point is a circle with data-series/x/y. */
  function line(box, { title, series, xLabel, yLabel, yMin, yMax }) {
    const all = series.flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined);
    box.replaceChildren();
    if (!all.length) { box.append(AL.el("p", { class: "muted" }, "No data yet.")); return; }
    const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    const y0 = yMin ?? Math.min(...ys), y1 = yMax ?? Math.max(...ys);
    const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
    const sy = (y) => H - M.bottom - ((y - y0) / ((y1 - y0) || 1)) * (H - M.top - M.bottom);
    const root = frame(title, xLabel, yLabel);
    yAxis(root, y0, y1, sy);
    for (const t of niceTicks(x0, x1)) root.append(svg("text", { x: sx(t), y: H - M.bottom + 14, "text-anchor": "middle" }, tick(t)));
    series.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      const pts = s.points.filter((p) => p.y !== null && p.y !== undefined);
      if (pts.length > 1) root.append(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2,
        "stroke-dasharray": s.dashed ? "5 4" : null, points: pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ") }));
      for (const p of pts) {
        const c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 3.5, fill: color, class: "point",
          "data-series": s.key || s.name, "data-x": p.x, "data-y": p.y });
        c.append(svg("title", {}, `${s.name}: ${fmt(p.y)} at ${fmt(p.x)}`));
        root.append(c);
      }
    });
    const xsSorted = [...new Set(xs)].sort((a, b) => a - b);
    box.append(root, legend(series), table(title, [xLabel, ...series.map((s) => s.name)],
      xsSorted.map((x) => [x, ...series.map((s) => { const p = s.points.find((q) => q.x === x); return p ? p.y : null; })])));
  }

  /* Grouped (or stacked) bars: categories along x, one bar per series. */
  function bars(box, { title, categories, series, yLabel, stacked }) {
    box.replaceChildren();
    if (!categories.length) { box.append(AL.el("p", { class: "muted" }, "No data yet.")); return; }
    const totals = categories.map((_, j) => stacked ? series.reduce((a, s) => a + (s.values[j] || 0), 0)
      : Math.max(...series.map((s) => s.values[j] || 0)));
    const y1 = Math.max(...totals, 0) || 1;
    const y0 = stacked ? 0 : Math.min(0, ...series.flatMap((s) => s.values.map((v) => v || 0)));
    const sy = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
    const root = frame(title, null, yLabel);
    yAxis(root, y0, y1, sy);
    const band = (W - M.left - M.right) / categories.length;
    const inner = band * 0.8 / (stacked ? 1 : series.length);
    categories.forEach((cat, j) => {
      let base = 0;
      series.forEach((s, i) => {
        const v = s.values[j] || 0;
        const x = M.left + band * j + band * 0.1 + (stacked ? 0 : i * inner);
        const hi = stacked ? base + v : Math.max(v, 0), lo = stacked ? base : Math.min(v, 0);
        const r = svg("rect", { x, y: sy(hi), width: Math.max(1, inner - 1), height: Math.max(0, sy(lo) - sy(hi)),
          fill: s.color || COLORS[i % COLORS.length], class: "col", "data-series": s.key || s.name, "data-category": cat, "data-value": v });
        r.append(svg("title", {}, `${s.name} · ${cat}: ${fmt(v)}`));
        root.append(r);
        if (stacked) base += v;
      });
      if (categories.length <= 24) root.append(svg("text", { x: M.left + band * (j + 0.5), y: H - M.bottom + 14, "text-anchor": "middle" }, String(cat)));
    });
    box.append(root, legend(series), table(title, ["", ...series.map((s) => s.name)],
      categories.map((c, j) => [c, ...series.map((s) => s.values[j])])));
  }

  /* Histogram over [edges[0], edges[n]]; several series are drawn over each other. */
  function histogram(box, { title, edges, series, xLabel }) {
    box.replaceChildren();
    const present = series.filter((s) => s.counts);
    if (!present.length) { box.append(AL.el("p", { class: "muted" }, "No model yet: the pool has no confidence to show.")); return; }
    const y1 = Math.max(1, ...present.flatMap((s) => s.counts));
    const x0 = edges[0], x1 = edges[edges.length - 1];
    const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
    const sy = (y) => H - M.bottom - (y / y1) * (H - M.top - M.bottom);
    const root = frame(title, xLabel, "items");
    yAxis(root, 0, y1, sy);
    for (const t of niceTicks(x0, x1)) root.append(svg("text", { x: sx(t), y: H - M.bottom + 14, "text-anchor": "middle" }, tick(t)));
    present.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      s.counts.forEach((c, j) => {
        const r = svg("rect", { x: sx(edges[j]) + 0.5, y: sy(c), width: Math.max(1, sx(edges[j + 1]) - sx(edges[j]) - 1),
          height: sy(0) - sy(c), fill: color, "fill-opacity": s.outline ? 0 : 0.75, stroke: s.outline ? color : null,
          "stroke-width": s.outline ? 2 : null, class: "bin", "data-series": s.key || s.name, "data-count": c });
        r.append(svg("title", {}, `${s.name}: ${c} items at ${fmt(edges[j])}–${fmt(edges[j + 1])}`));
        root.append(r);
      });
    });
    box.append(root, legend(present), table(title, ["from", ...present.map((s) => s.name)],
      edges.slice(0, -1).map((e, j) => [e, ...present.map((s) => s.counts[j])])));
  }

  return { line, bars, histogram, COLORS };
})();
