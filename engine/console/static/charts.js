// Small SVG charts for the gavel console: lines over time and horizontal bars. Drawn
// with DOM calls only (no innerHTML), so names from the API are always text.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function hhmm(d) {
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  // line draws series [{name, values}] over times (Date[]) into a new <svg>.
  function line(times, series, fmt) {
    fmt = fmt || String;
    const W = 640, H = 180, L = 48, R = 8, T = 8, B = 22;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    let max = 0;
    for (const se of series) for (const v of se.values) max = Math.max(max, v || 0);
    max = niceMax(max);
    const n = Math.max(times.length - 1, 1);
    const x = i => L + (W - L - R) * i / n;
    const y = v => T + (H - T - B) * (1 - (v || 0) / max);
    for (let g = 0; g <= 4; g++) {
      const v = max * g / 4;
      svg.appendChild(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(s("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, fmt(v)));
    }
    const ticks = Math.min(6, times.length);
    for (let k = 0; k < ticks; k++) {
      const i = Math.round(k * (times.length - 1) / Math.max(ticks - 1, 1));
      if (times[i]) svg.appendChild(s("text", { x: x(i), y: H - 6, "text-anchor": "middle" }, hhmm(times[i])));
    }
    series.forEach((se, j) => {
      let d = "";
      se.values.forEach((v, i) => { d += (i ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1); });
      const p = s("path", { class: "line s" + ((j % 6) + 1), d: d });
      p.appendChild(s("title", {}, se.name));
      svg.appendChild(p);
    });
    return svg;
  }
  // bars draws [{name, value}] as horizontal bars into a new <svg>.
  function bars(items, fmt) {
    fmt = fmt || String;
    const rowH = 22, W = 640, L = 130, R = 90;
    const H = Math.max(rowH * items.length + 6, 30);
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
    svg.style.height = H + "px";
    const max = niceMax(Math.max(0, ...items.map(i => i.value || 0)));
    items.forEach((it, i) => {
      const yy = 3 + i * rowH;
      const name = it.name.length > 20 ? it.name.slice(0, 19) + "…" : it.name;
      svg.appendChild(s("text", { x: L - 6, y: yy + 14, "text-anchor": "end" }, name || "(none)"));
      const w = (W - L - R) * (it.value || 0) / max;
      const r = s("rect", { class: "s" + ((i % 6) + 1), x: L, y: yy + 3, width: Math.max(w, 1), height: rowH - 8, rx: 2 });
      r.appendChild(s("title", {}, it.name + ": " + fmt(it.value)));
      svg.appendChild(r);
      svg.appendChild(s("text", { x: L + w + 6, y: yy + 14 }, fmt(it.value)));
    });
    if (!items.length) svg.appendChild(s("text", { x: 8, y: 18 }, "no data yet"));
    return svg;
  }
  function legend(names) {
    const d = document.createElement("div");
    d.className = "legend";
    names.forEach((n, j) => {
      const sp = document.createElement("span");
      const i = document.createElement("i");
      i.className = "sw" + ((j % 6) + 1);
      sp.appendChild(i);
      sp.appendChild(document.createTextNode(n));
      d.appendChild(sp);
    });
    return d;
  }
  window.charts = { line, bars, legend };
})();
