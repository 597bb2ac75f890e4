"""The one page of ``acumen view``: HTML with its CSS and JavaScript inline (no build step,
nothing loaded from elsewhere). Every value from the dataset reaches the page as text
(``textContent``, never ``innerHTML``), so a metadata string holding HTML shows as written."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>acumen view</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #222; }
h1 { font-size: 1.3em; margin: .8em 0 .4em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
code, td, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; }
dl#summary { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; margin: 0; }
dl#summary dt { color: #666; } dl#summary dd { margin: 0; }
#controls { display: flex; gap: .5em; align-items: center; flex-wrap: wrap; }
#filter { width: 28em; font-family: ui-monospace, monospace; }
#filter-error { color: #b00020; }
table { border-collapse: collapse; margin-top: .5em; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; white-space: pre; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr.row:hover, tr.row.selected { background: #e8f0fe; cursor: pointer; }
#gallery { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #ddd; padding: 4px; width: 136px; cursor: pointer; }
.card.selected { border-color: #1a73e8; }
.card img, .card canvas, .card svg { width: 128px; height: 128px; object-fit: contain;
  image-rendering: pixelated; background: #f7f7f7; display: block; }
.card .label { font-size: 11px; color: #555; overflow: hidden; text-overflow: ellipsis; }
#detail img, #detail canvas, #detail svg { width: 320px; height: 320px; object-fit: contain;
  image-rendering: pixelated; background: #f7f7f7; }
.part { display: inline-block; vertical-align: top; margin: 0 1em 1em 0; }
#histograms { display: flex; flex-wrap: wrap; gap: 1em; }
.hist { border: 1px solid #eee; padding: 4px; } .hist .title { font-weight: 600; }
.muted { color: #777; }
</style>
</head>
<body>
<h1>acumen view <span class="mono" id="path"></span></h1>
<dl id="summary"></dl>
<h2>Index</h2>
<div id="controls">
  <input id="filter" placeholder="filter, as ds.filter: label == 3 and split == 'train'">
  <button id="apply">Filter</button>
  <label>rows per page <select id="page-size">
    <option>10</option><option selected>25</option><option>50</option><option>100</option>
    <option>200</option></select></label>
  <button id="prev">&larr;</button><span id="page-info"></span><button id="next">&rarr;</button>
  <span id="filter-error" role="alert"></span>
</div>
<table id="rows"><thead></thead><tbody></tbody></table>
<h2>Samples on this page</h2>
<div id="gallery"></div>
<div id="detail"></div>
<h2>Metadata columns <span class="muted" id="hist-note"></span></h2>
<div id="histograms"></div>
<script>
"use strict";
const state = { filter: "", offset: 0, limit: 25, total: 0, summary: null, asked: 0 };
const GALLERY = 24;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
async function api(path, params) {
  const response = await fetch(path + "?" + new URLSearchParams(params || {}));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function fmt(x) {
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return x.toLocaleString("en");
  return Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3)
    : x.toPrecision(4);
}
function stats(s) {
  if (!s) return "";
  let text = s.min === undefined ? "no finite values" :
    `min ${fmt(s.min)}  max ${fmt(s.max)}  mean ${fmt(s.mean)}  std ${fmt(s.std)}`;
  if (s.nonfinite) text += `  (${fmt(s.nonfinite)} not finite)`;
  return text;
}

async function loadSummary() {
  const s = state.summary = await api("/api/summary");
  document.getElementById("path").textContent = s.path;
  const what = s.fields.length
    ? s.fields.map(f => `${f.name}: ${f.dtype} (${f.codec})`).join(", ")
    : `${s.dtype}, shape ${s.shape ? "(" + s.shape.join(", ") + ")" : "variable"}`;
  const entries = [
    ["samples", fmt(s.samples), "samples-count"],
    [s.fields.length ? "fields" : "array", what],
    ["codec", s.codec], ["index format", s.index_format], ["storage", s.storage],
    ["chunks", fmt(s.chunks) + (s.chunk_bytes ? `  (${fmt(s.chunk_bytes)} bytes)` : "")],
    ["metadata", s.columns.map(c => `${c.name} (${c.type})`).join(", ") || "none"],
    ["version", s.version + (s.acumen_version ? `  (written by acumen ${s.acumen_version})` : "")],
  ];
  const dl = document.getElementById("summary");
  for (const [k, v, id] of entries) dl.append(el("dt", {}, k), el("dd", id ? { id } : {}, v));
  const head = el("tr", {}, ...["position", "chunk", "offset", "size", "shape"]
    .concat(s.columns.map(c => c.name)).map(n => el("th", {}, n)));
  document.querySelector("#rows thead").append(head);
}

async function loadRows() {
  const error = document.getElementById("filter-error"), asked = ++state.asked;
  let page;
  try {
    page = await api("/api/rows",
      { filter: state.filter, offset: state.offset, limit: state.limit });
  } catch (e) {
    if (asked === state.asked) error.textContent = e.message;
    return;
  }
  if (asked !== state.asked) return;  // a newer request is on its way
  error.textContent = "";
  state.total = page.total;
  const tbody = document.querySelector("#rows tbody");
  tbody.replaceChildren(...page.rows.map(r => {
    const cells = [r.position, r.chunk, r.offset, r.size, r.shape]
      .concat(state.summary.columns.map(c => r.metadata[c.name]));
    const tr = el("tr", { class: "row", "data-position": r.position },
      ...cells.map(c => el("td", {}, typeof c === "number" ? fmt(c) : String(c))));
    tr.addEventListener("click", () => showDetail(r.position));
    return tr;
  }));
  const last = Math.min(state.offset + page.rows.length, page.total);
  document.getElementById("page-info").textContent = page.total
    ? ` ${fmt(state.offset + 1)}-${fmt(last)} of ${fmt(page.total)} ` : " no rows ";
  loadGallery(page.rows.slice(0, GALLERY).map(r => r.position));
  loadHistograms(asked);
}

function thumbUrl(position, field, size) {
  const params = { i: position, size: size || 256 };
  if (field) params.field = field;
  return "/api/thumbnail?" + new URLSearchParams(params);
}
function drawPart(part, position, big) {
  if (part.kind === "image") {
    return el("img", { class: "thumb", "data-position": position, alt: `sample ${position}`,
      src: thumbUrl(position, part.field, big ? 512 : 256) });
  }
  if (part.kind === "grid") return heatmap(part.values);
  if (part.kind === "series") return line(part.values);
  if (part.kind === "value") return el("div", { class: "mono" }, String(part.value));
  if (part.kind === "bytes") {
    return el("div", { class: "mono" }, `${fmt(part.bytes)} bytes: ${part.head}`);
  }
  return el("div", { class: "muted" }, `${part.dtype}: nothing to draw`);
}
function heatmap(values) {
  const h = values.length, w = values[0].length;
  let lo = Infinity, hi = -Infinity;
  for (const row of values) {
    for (const v of row) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  const canvas = el("canvas", { width: w, height: h, class: "heatmap" });
  const ctx = canvas.getContext("2d"), image = ctx.createImageData(w, h);
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  values.forEach((row, y) => row.forEach((v, x) => {
    const at = 4 * (y * w + x);
    if (v === null) { image.data.set([255, 0, 255, 255], at); return; }
    const t = hi > lo ? (v - lo) / (hi - lo) * (stops.length - 1) : 0;
    const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
    const c = stops[i].map((a, k) => a + f * (stops[i + 1][k] - a));
    image.data.set([c[0], c[1], c[2], 255], at);
  }));
  ctx.putImageData(image, 0, 0);
  return canvas;
}
function line(values) {
  const W = 256, H = 128, finite = values.filter(v => v !== null);
  const lo = Math.min(...finite), hi = Math.max(...finite), n = Math.max(values.length - 1, 1);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "line" });
  const y = v => H - 2 - (hi > lo ? (v - lo) / (hi - lo) : .5) * (H - 4);
  const points = values.map((v, i) => v === null ? null :
    `${(i / n * (W - 4) + 2).toFixed(1)},${y(v).toFixed(1)}`)
    .filter(p => p !== null).join(" ");
  root.append(svg("polyline", { points, fill: "none", stroke: "#1a73e8", "stroke-width": 1.2 }));
  return root;
}

async function loadGallery(positions) {
  const gallery = document.getElementById("gallery");
  gallery.replaceChildren();
  for (const position of positions) {
    const card = el("div", { class: "card", "data-position": position });
    card.addEventListener("click", () => showDetail(position));
    gallery.append(card);
    api("/api/sample", { i: position }).then(sample => {
      const part = sample.parts[0];
      card.append(drawPart(part, position, false),
        el("div", { class: "label" }, `#${position} ${part.field ? part.field + " " : ""}` +
          (part.shape ? "(" + part.shape.join(", ") + ")" : "")));
    }).catch(e => card.append(el("div", { class: "label" }, e.message)));
  }
}

async function showDetail(position) {
  const detail = document.getElementById("detail");
  let sample;
  try { sample = await api("/api/sample", { i: position }); }
  catch (e) { detail.replaceChildren(el("p", { id: "detail-error" }, e.message)); return; }
  detail.replaceChildren(el("h2", {}, `Sample ${position}`),
    ...sample.parts.map(part => el("div", { class: "part" },
      el("div", { class: "mono" }, (part.field ? part.field + ": " : "") +
        (part.kind === "bytes" || part.type ? `${fmt(part.bytes)} bytes ${part.type || ""}`
          : `${part.dtype} (${part.shape.join(", ")})`)),
      drawPart(part, position, true),
      el("div", { class: "mono stats" }, stats(part.stats)))),
    el("pre", { class: "mono", id: "detail-metadata" }, JSON.stringify(sample.metadata, null, 1)));
  document.querySelectorAll(".selected").forEach(n => n.classList.remove("selected"));
  document.querySelectorAll(`[data-position="${position}"]`).forEach(n => {
    if (n.classList.contains("row") || n.classList.contains("card")) n.classList.add("selected");
  });
}

async function loadHistograms(asked) {
  const box = document.getElementById("histograms");
  document.getElementById("hist-note").textContent = state.filter ? `(where ${state.filter})` : "";
  const charts = await Promise.all(state.summary.columns.map(c =>
    api("/api/histogram", { column: c.name, filter: state.filter })
      .then(histogram).catch(e => el("div", { class: "hist" }, `${c.name}: ${e.message}`))));
  if (asked === state.asked) box.replaceChildren(...charts);
}
function histogram(h) {
  const W = 260, H = 110, counts = h.counts, top = Math.max(1, ...counts);
  const root = svg("svg", { width: W, height: H + 30 });
  const bar = counts.length ? (W - 10) / counts.length : 0;
  counts.forEach((c, i) => {
    const height = c / top * H;
    const rect = svg("rect", { x: 5 + i * bar, y: H - height, width: Math.max(bar - 1, 1),
      height, fill: "#1a73e8" });
    const label = h.values ? `${h.values[i]}: ${c}` : h.kind === "bins"
      ? `${fmt(h.edges[i])} to ${fmt(h.edges[i + 1])}: ${c}` : `${h.labels[i]}: ${c}`;
    const title = svg("title"); title.textContent = label; rect.append(title);
    root.append(rect);
  });
  const axis = svg("text", { x: 5, y: H + 14, "font-size": 11, fill: "#555" });
  axis.textContent = h.values ? `${h.values[0]} ... ${h.values[h.values.length - 1]}`
    : h.kind === "bins"
    ? (h.edges.length ? `${fmt(h.edges[0])} ... ${fmt(h.edges[h.edges.length - 1])}` : "no values")
    : h.labels.slice(0, 4).join(", ") + (h.labels.length > 4 ? ", ..." : "");
  root.append(axis);
  const note = h.kind === "counts"
    ? `${h.distinct} distinct` + (h.other ? `, ${h.other} in others` : "")
    : (h.missing ? `${h.missing} missing` : "");
  return el("div", { class: "hist", "data-column": h.column },
    el("div", { class: "title" }, `${h.column} (${h.type})`), root,
    el("div", { class: "muted" }, `${fmt(h.total)} samples${note ? "; " + note : ""}`));
}

function applyFilter() {
  state.filter = document.getElementById("filter").value.trim();
  state.offset = 0;
  loadRows();
}
document.getElementById("apply").addEventListener("click", applyFilter);
document.getElementById("filter").addEventListener("keydown", e => {
  if (e.key === "Enter") applyFilter();
});
document.getElementById("page-size").addEventListener("change", e => {
  state.limit = Number(e.target.value); state.offset = 0; loadRows();
});
document.getElementById("prev").addEventListener("click", () => {
  if (state.offset > 0) { state.offset = Math.max(0, state.offset - state.limit); loadRows(); }
});
document.getElementById("next").addEventListener("click", () => {
  if (state.offset + state.limit < state.total) { state.offset += state.limit; loadRows(); }
});
loadSummary().then(loadRows).catch(e => {
  document.getElementById("filter-error").textContent = e.message;
});
</script>
</body>
</html>
"""
