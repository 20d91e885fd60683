// threadline web UI: the trace list (landing page), a trace's waterfall with its logs and
// findings, search with a histogram and group-by, "widen" from one attribute, live tail and
// compare. Every view lives in the URL hash (#/traces?..., #/trace/<id>?span=..., #/search?q=...,
// #/related/<id>?attribute=K, #/live?q=..., #/compare?q=...) so a link can be pasted into an
// incident channel.
//
// Log bodies and attributes are attacker-controlled: the DOM is built with createElement and
// text nodes only, never from markup, and every link is an in-page "#/..." route.
"use strict";

/** "1 span", "3 spans". */
function plural(n, noun) {
  return n + " " + noun + (n === 1 ? "" : "s");
}

const TOKEN_KEY = "threadline.read_token";
const SINCE = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 86400e3 };
const SINCE_CHOICES = ["15m", "1h", "6h", "24h", "7d", "all"];
const WINDOWS = ["15m", "1h", "6h", "24h"];
const PAGE = 100;
const LIVE_MAX_ROWS = 500;
/** Example queries; each finds something in `threadline demo`'s data. */
const EXAMPLES = [
  "status = ERROR",
  "level >= warn",
  "span.name = stripe_api_call AND duration > 2s",
  'decline_code = "do_not_honor"',
  "http.response.status_code >= 500",
  "exists(exception.type)",
  "trace(decline_code = do_not_honor) AND kind = log",
  "(span_kind = CLIENT) > (status = ERROR)",
];

let generation = 0; // bumped per navigation, so a slow answer never paints over a newer view
let cleanup = []; // undo functions of the current view (live streams, listeners)

// ---- DOM helpers -------------------------------------------------------------------------

/** el("a", {class: "x", href: "#/..."}, child, "text") -- strings become text nodes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "href") node.href = route(value);
    else if (key === "title") node.title = String(value);
    else if (key === "id") node.id = value;
    else if (key === "type") node.type = value;
    else if (key === "value") node.value = value;
    else if (key === "placeholder") node.placeholder = value;
    else if (key === "name") node.name = value;
    else if (key === "ariaLabel") node.ariaLabel = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else throw new Error("el: unsupported property " + key);
  }
  node.append(...nodes(children));
  return node;
}

/** Nested lists of nodes and strings to nodes; null and false are left out. */
function nodes(children) {
  return children.flat(Infinity).filter((c) => c != null && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

/** Only in-page routes are ever linked: no script URLs, no other origin. */
function route(href) {
  if (typeof href !== "string" || !href.startsWith("#/")) throw new Error("not a route: " + href);
  return href;
}

function setMain(...children) {
  document.getElementById("main").replaceChildren(...nodes(children));
}

/** The overlay panel (search hits, live rows): it covers the page, never squeezes it. */
function setPanel(...children) {
  const panel = document.getElementById("panel");
  panel.replaceChildren(el("button", { class: "close", title: "Close (Esc)", onclick: closePanel }, "\u00d7"), ...nodes(children));
  panel.hidden = false;
  panel.scrollTop = 0;
}

function closePanel() {
  const panel = document.getElementById("panel");
  panel.hidden = true;
  panel.replaceChildren();
  for (const row of document.querySelectorAll(".selected")) row.classList.remove("selected");
  for (const detail of document.querySelectorAll(".detail")) detail.remove();
}

/** A row that opens details on click, or on Enter when focused. */
function clickable(row, open) {
  row.tabIndex = 0;
  row.addEventListener("click", (e) => {
    if (e.target.closest("a, button, input")) return;
    open(e);
  });
  row.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target === row) open(e);
  });
  return row;
}

function table(head, rows, cls) {
  return el("table", { class: cls || null }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

/** A button that copies `text` to the clipboard. */
function copyButton(text, what) {
  const button = el("button", { class: "copy", title: "Copy " + (what || "") }, "copy");
  button.addEventListener("click", async (e) => {
    e.stopPropagation();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "copied";
    } catch (_) {
      // No clipboard (an insecure origin): select the text so Ctrl-C does it.
      const range = document.createRange();
      range.selectNodeContents(button.previousSibling || button);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "selected";
    }
    setTimeout(() => { button.textContent = "copy"; }, 1500);
  });
  return button;
}

function idWithCopy(id, what) {
  return el("span", { class: "id" }, el("code", {}, id), copyButton(id, what));
}

// ---- formatting --------------------------------------------------------------------------

const enc = encodeURIComponent;
const traceHref = (id, extra) => "#/trace/" + enc(id) + (extra ? "?" + extra : "");
const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== "")).toString();
const searchHref = (params) => "#/search?" + query(params);
const relatedHref = (id, attribute, window) => "#/related/" + enc(id) + "?" + query({ attribute, window: window || "1h" });

/** RFC 3339 with up to ns digits -> microseconds since the epoch (exact enough for a waterfall). */
function toUs(text) {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(text || "");
  if (!m) return NaN;
  return Date.parse(m[1] + m[3]) * 1000 + Number((m[2] || "").padEnd(6, "0").slice(0, 6));
}

function fmtDuration(ns) {
  if (ns == null || !isFinite(ns)) return "";
  const abs = Math.abs(ns);
  if (abs === 0) return "0";
  if (abs < 1e3) return Math.round(ns) + "ns";
  if (abs < 1e6) return +(ns / 1e3).toPrecision(3) + "\u00b5s";
  if (abs < 1e9) return +(ns / 1e6).toPrecision(3) + "ms";
  if (abs < 60e9) return +(ns / 1e9).toPrecision(3) + "s";
  const s = Math.round(ns / 1e9);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return (h ? h + "h" : "") + (m ? m + "m" : "") + (sec ? sec + "s" : "");
}

/** "2026-11-20 14:10:00.123" in UTC, the zone the index and the CLI use. */
function fmtTime(text) {
  const us = toUs(text);
  if (!isFinite(us)) return String(text || "");
  return new Date(us / 1000).toISOString().replace("T", " ").replace("Z", "");
}

/** "14:10:05" (UTC) for axis labels. */
function fmtClock(ms, withDate) {
  const iso = new Date(ms).toISOString();
  return withDate ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(11, 19);
}

function fmtValue(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A value as a literal of the query language: numbers and booleans bare, strings quoted. */
function literal(value) {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return '"' + String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

/** Nested attribute maps flattened to dotted keys, sorted; an explicit stack, not recursion. */
function flatten(object) {
  const out = [];
  const stack = [["", object || {}]];
  while (stack.length) {
    const [prefix, value] = stack.pop();
    for (const [key, v] of Object.entries(value)) {
      const path = prefix ? prefix + "." + key : key;
      if (v && typeof v === "object" && !Array.isArray(v) && prefix.split(".").length < 20) stack.push([path, v]);
      else out.push([path, v]);
    }
  }
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

/** A stable colour per service, so one service reads the same everywhere. */
function serviceHue(name) {
  let h = 0;
  for (const c of String(name || "")) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

function serviceTag(name) {
  const tag = el("span", { class: "svc", title: name || null }, name || "?");
  tag.style.borderColor = "hsl(" + serviceHue(name) + ", 55%, 50%)";
  return tag;
}

function levelName(level) {
  const name = String(level || "none").toLowerCase();
  return ["trace", "debug", "info", "warn", "error", "fatal"].includes(name) ? name : "none";
}

function levelTag(level) {
  return el("span", { class: "lvl lvl-" + levelName(level) }, level || "-");
}

/** Tick positions for an axis `width` px wide over [0, span): about one label per 90 px. */
function niceTicks(span, width) {
  const want = Math.max(1, Math.floor(width / 90));
  const raw = span / want;
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let t = 0; t <= span * 1.0001 && ticks.length < 50; t += step) ticks.push(t);
  return ticks;
}

/** A ruler whose labels never overlap: redrawn to the width it gets. */
function ruler(span, format) {
  const node = el("div", { class: "ruler" });
  const draw = () => {
    const width = node.clientWidth;
    if (!width) return;
    node.replaceChildren(...niceTicks(span, width).map((t) => {
      const tick = el("span", { class: "tick" }, format(t));
      const p = span ? (100 * t) / span : 0;
      tick.style.left = p + "%";
      if (p > 92) tick.classList.add("end");
      return tick;
    }));
    // A label pushed past the next one by its own width is dropped.
    let right = -Infinity;
    for (const tick of [...node.children]) {
      const r = tick.getBoundingClientRect();
      if (r.left < right + 4) tick.remove();
      else right = r.right;
    }
  };
  const observer = new ResizeObserver(draw);
  observer.observe(node);
  cleanup.push(() => observer.disconnect());
  return node;
}

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: authHeaders(), credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "network", "cannot reach the server: " + e.message);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.status + " " + response.statusText);
  }
  return body;
}

let openapi = null;

/** Whether this server has a route (an older or newer server may lack one): from its OpenAPI
 *  document, so the page never asks for a route that would answer 404. */
async function hasRoute(path) {
  if (!openapi) openapi = api("/api/v1/openapi.json").catch(() => ({ paths: {} }));
  return Object.prototype.hasOwnProperty.call((await openapi).paths || {}, path);
}

/** Whether a GET route takes a parameter (unknown parameters are ignored, not refused). */
async function hasParam(path, name) {
  if (!(await hasRoute(path))) return false;
  const get = ((await openapi).paths[path] || {}).get || {};
  return (get.parameters || []).some((p) => p.name === name || (p.$ref || "").toLowerCase().endsWith("/" + name));
}

/** An API error as it came; a query error also points at its column; a 401 asks for the token. */
function errorBox(error, q) {
  if (!(error instanceof ApiError)) error = new ApiError(0, "ui", String((error && error.message) || error));
  const box = el("div", { class: "error" }, el("strong", {}, error.code), " ", error.message);
  const column = /column (\d+)/.exec(error.message || "");
  if (q && column && error.status === 400) {
    const at = Math.max(1, Math.min(Number(column[1]), q.length + 1));
    box.append(el("pre", { class: "caret" }, q + "\n" + " ".repeat(at - 1) + "^"));
  }
  if (error.status === 401) {
    const input = el("input", { class: "token", title: "Read token", type: "password", placeholder: "read token" });
    box.append(el("form", {
      onsubmit: (e) => {
        e.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        render();
      },
    }, "This server needs a read token: ", input, " ", el("button", {}, "Use token")));
  }
  return box;
}

/** from/to (RFC 3339) for a `since` choice, or the explicit from/to parameters. */
function timeRange(params) {
  const since = params.get("since") || (params.has("from") || params.has("to") ? "" : "1h");
  if (!since) return { since: "", from: params.get("from") || "", to: params.get("to") || "" };
  const now = Date.now();
  return {
    since,
    from: SINCE[since] ? new Date(now - SINCE[since]).toISOString() : "",
    to: new Date(now + 60e3).toISOString(),
  };
}

/** A bucket size giving ~60 bars over [from, to], as the API writes intervals. */
function autoInterval(fromMs, toMs) {
  const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400].map((s) => s * 1000);
  const span = Math.max(1000, toMs - fromMs);
  const step = steps.find((s) => span / s <= 60) || 86400e3;
  return step % 3600e3 === 0 ? step / 3600e3 + "h" : step % 60e3 === 0 ? step / 60e3 + "m" : step / 1000 + "s";
}

function sinceSelect(value) {
  const select = el("select", { name: "since", ariaLabel: "Time range" },
    SINCE_CHOICES.map((s) => el("option", { value: s }, s === "all" ? "all time" : "last " + s)));
  select.value = value || "1h";
  return select;
}

// ---- routing -----------------------------------------------------------------------------

async function render() {
  const gen = ++generation;
  for (const undo of cleanup.splice(0)) undo();
  closePanel();
  document.title = "threadline";
  const hash = location.hash.replace(/^#\/?/, "");
  const cut = hash.indexOf("?");
  const path = (cut < 0 ? hash : hash.slice(0, cut)).split("/").map(safeDecode);
  const params = new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1));
  const main = document.getElementById("main");
  const view = { trace: "trace", related: "related", search: "search", live: "live", compare: "compare" }[path[0]] || "traces";
  main.dataset.view = view;
  main.dataset.state = "loading";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  try {
    if (view === "trace" && path[1]) await showTrace(gen, path[1], params);
    else if (view === "related" && path[1]) await showRelated(gen, path[1], params);
    else if (view === "search") await showSearch(gen, params);
    else if (view === "live") showLive(gen, params);
    else if (view === "compare") await showCompare(gen, params);
    else await showTraces(gen, params);
  } catch (error) {
    if (gen === generation) setMain(errorBox(error, params.get("q")));
  }
  if (gen === generation) {
    main.dataset.state = "ready";
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  }
}

function safeDecode(part) {
  try { return decodeURIComponent(part); } catch (_) { return part; }
}

// ---- traces (landing page) ---------------------------------------------------------------

/** The filters of the trace list as one query of the query language: the span filters hold for
 *  one span, the free query for any span or log of the same trace (`trace(...)`), so a span
 *  filter and a log line's words find the trace that has both. */
function tracesQuery(params) {
  const parts = [];
  const service = params.get("service");
  const operation = params.get("operation");
  if (service || operation || params.get("min") || params.get("max")) parts.push("kind = span");
  if (service) parts.push("service = " + literal(service));
  if (operation) parts.push("name = " + literal(operation));
  if (params.get("status") === "error") parts.push("status = ERROR");
  if (params.get("min")) parts.push("duration >= " + params.get("min"));
  if (params.get("max")) parts.push("duration <= " + params.get("max"));
  const q = (params.get("q") || "").trim();
  if (q) parts.push(parts.length ? "trace(" + q + ")" : q);
  return parts.join(" AND ");
}

async function showTraces(gen, params) {
  document.title = "traces \u00b7 threadline";
  const services = (await api("/api/v1/services")).services || [];
  if (gen !== generation) return;
  const range = timeRange(params);
  const serviceSel = el("select", { name: "service", ariaLabel: "Service" }, el("option", { value: "" }, "any service"),
    services.map((s) => el("option", { value: s.name }, s.name)));
  serviceSel.value = params.get("service") || "";
  const operationSel = el("select", { name: "operation", ariaLabel: "Operation" });
  const fillOperations = () => {
    const chosen = services.find((s) => s.name === serviceSel.value);
    const names = chosen ? (chosen.span_names || chosen.operations || []) : [...new Set(services.flatMap((s) => s.span_names || s.operations || []))].sort();
    operationSel.replaceChildren(el("option", { value: "" }, "any operation"),
      names.map((n) => el("option", { value: typeof n === "string" ? n : n.name }, typeof n === "string" ? n : n.name)));
  };
  fillOperations();
  operationSel.value = params.get("operation") || "";
  serviceSel.addEventListener("change", fillOperations);
  const status = el("select", { name: "status", ariaLabel: "Status" }, el("option", { value: "" }, "any status"), el("option", { value: "error" }, "errors only"));
  status.value = params.get("status") || "";
  const min = el("input", { name: "min", placeholder: "min e.g. 500ms", value: params.get("min") || "", ariaLabel: "Min duration" });
  const max = el("input", { name: "max", placeholder: "max e.g. 5s", value: params.get("max") || "", ariaLabel: "Max duration" });
  const q = el("input", { name: "q", class: "q-input", placeholder: "any span or log of the trace, e.g. decline_code = do_not_honor", value: params.get("q") || "", ariaLabel: "Query" });
  const since = sinceSelect(range.since);
  const sort = el("select", { name: "sort", ariaLabel: "Sort" }, [["-time", "newest first"], ["time", "oldest first"], ["-duration", "longest first"], ["duration", "shortest first"]]
    .map(([v, label]) => el("option", { value: v }, label)));
  sort.value = params.get("sort") || "-time";
  const form = el("form", { class: "filters", id: "trace-filters" },
    el("label", {}, "Service", serviceSel), el("label", {}, "Operation", operationSel), el("label", {}, "Status", status),
    el("label", {}, "Duration", el("span", { class: "pair" }, min, max)), el("label", {}, "Time", since),
    el("label", { class: "wide" }, "Query", q), el("label", {}, "Sort", sort),
    el("button", { type: "submit", class: "primary" }, "Find traces"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/traces?" + query({ service: serviceSel.value, operation: operationSel.value, status: status.value,
      min: min.value.trim(), max: max.value.trim(), since: since.value, q: q.value.trim(), sort: sort.value });
  });
  sort.addEventListener("change", () => form.requestSubmit());
  const results = el("div", { class: "results" }, el("p", { class: "muted" }, "Finding traces\u2026"));
  setMain(el("h1", {}, "Traces"), form, results);

  const q2 = tracesQuery(params);
  const request = { q: q2, from: range.from, to: range.to, limit: "200", sort: sort.value };
  let list;
  try {
    list = (await hasRoute("/api/v1/traces")) ? await api("/api/v1/traces?" + query(request)) : await tracesFromSearch(request);
  } catch (error) {
    if (gen === generation) results.replaceChildren(errorBox(error, q2));
    return;
  }
  if (gen !== generation) return;
  const traces = list.traces || [];
  if (!traces.length) {
    results.replaceChildren(el("p", { class: "muted" }, "No traces match. ", el("a", { href: searchHref({ q: q2, since: range.since || "all" }) }, "Search records instead")));
    return;
  }
  results.replaceChildren(
    el("p", { class: "summary" }, (list.total ?? traces.length) + " traces" + (list.total > traces.length ? " (" + traces.length + " shown)" : ""),
      list.note ? el("span", { class: "muted" }, " \u00b7 " + list.note) : null, " \u00b7 ",
      el("a", { href: "#/compare?" + query({ q: q2, since: range.since }) }, "what is different about these?"), " \u00b7 ",
      el("a", { href: searchHref({ q: q2, since: range.since }) }, "as records")),
    scatter(traces),
    traceList(traces));
}

/** Without `GET /api/v1/traces` (an older server): the trace list grouped from search hits. */
async function tracesFromSearch(request) {
  const page = await api("/api/v1/search?" + query({ q: request.q, from: request.from, to: request.to, limit: "1000" }));
  const byTrace = new Map();
  for (const hit of page.hits) {
    if (!hit.trace_id) continue;
    const t = byTrace.get(hit.trace_id) || { trace_id: hit.trace_id, span_count: 0, log_count: 0, error_count: 0, services: [], duration_ns: 0 };
    byTrace.set(hit.trace_id, t);
    const start = hit.kind === "span" ? hit.start : hit.time;
    if (!t.start || toUs(start) < toUs(t.start)) t.start = start;
    if (hit.kind === "span") {
      t.span_count++;
      if (!t.root_name || !hit.parent_span_id) { t.root_name = hit.name; t.root_service = hit.service; }
      t.duration_ns = Math.max(t.duration_ns, hit.duration_ns || 0);
      if ((hit.status || {}).code === "ERROR") t.error_count++;
    } else {
      t.log_count++;
      if (["error", "fatal"].includes(levelName(hit.level))) t.error_count++;
    }
    if (hit.service && !t.services.includes(hit.service)) t.services.push(hit.service);
  }
  const traces = [...byTrace.values()];
  const key = request.sort.replace("-", "");
  const sign = request.sort.startsWith("-") ? -1 : 1;
  traces.sort((a, b) => sign * (key === "duration" ? a.duration_ns - b.duration_ns : toUs(a.start) - toUs(b.start)));
  return { traces, total: traces.length, note: "counts are of matching records" };
}

/** Duration over time, one dot per trace (errors red); a click opens the trace. */
function scatter(traces) {
  const times = traces.map((t) => toUs(t.start) / 1000);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const dmax = Math.max(1, ...traces.map((t) => t.duration_ns || 0));
  const span = Math.max(1, t1 - t0);
  const plot = el("div", { class: "plot" }, traces.map((t, i) => {
    const dot = el("a", { class: "dot" + (t.error_count ? " err" : ""), href: traceHref(t.trace_id),
      title: (t.root_name || "") + " \u00b7 " + fmtDuration(t.duration_ns) + " \u00b7 " + fmtTime(t.start) });
    dot.style.left = (t1 === t0 ? 50 : (100 * (times[i] - t0)) / span) + "%";
    dot.style.bottom = (100 * (t.duration_ns || 0)) / dmax + "%";
    return dot;
  }));
  const withDate = span > 86400e3;
  return el("div", { class: "scatter" },
    el("div", { class: "yaxis muted" }, el("span", {}, fmtDuration(dmax)), el("span", {}, "0")),
    el("div", { class: "plotwrap" }, plot, ruler(span, (ms) => fmtClock(t0 + ms, withDate))));
}

function traceList(traces) {
  return el("div", { class: "trace-list" }, traces.map((t) => el("a", { class: "trace-row" + (t.error_count ? " has-err" : ""), href: traceHref(t.trace_id), dataset: { durationNs: String(t.duration_ns || 0) } },
    el("span", { class: "root" }, serviceTag(t.root_service), " ", el("strong", {}, t.root_name || "(no root span)")),
    el("span", { class: "dur" }, fmtDuration(t.duration_ns)),
    el("span", { class: "counts muted" }, plural(t.span_count, "span") + " \u00b7 " + plural(t.log_count, "log") + " \u00b7 ",
      el("span", { class: t.error_count ? "err-text" : "" }, plural(t.error_count, "error"))),
    el("span", { class: "services" }, (t.services || []).map((s) => [serviceTag(s), " "])),
    el("span", { class: "when muted" }, fmtTime(t.start)),
    el("code", { class: "tid" }, t.trace_id))));
}

// ---- trace -------------------------------------------------------------------------------

async function showTrace(gen, rawId, params) {
  setMain(el("p", { class: "muted" }, "Loading trace " + rawId + "\u2026"));
  const trace = await api("/api/v1/traces/" + enc(rawId.trim()));
  if (gen !== generation) return;
  // A 64-bit id (a Datadog decimal) finds the trace by its low half: name it by its full id.
  const full = trace.trace_id.startsWith("0000000000000000") &&
    trace.spans.map((s) => s.trace_id).find((id) => id && id.endsWith(trace.trace_id.slice(16)));
  const traceId = full || trace.trace_id;
  if (traceId !== rawId) history.replaceState(null, "", traceHref(traceId, params.toString()));
  document.title = "trace " + traceId.slice(0, 8) + " \u00b7 threadline";

  const s = trace.summary || {};
  const startUs = toUs(s.start);
  const totalNs = Math.max(s.duration_ns || 0, 1);
  const analysis = trace.analysis || {};
  const critical = new Map(); // span id -> critical-path segments
  for (const seg of analysis.critical_path || []) {
    if (!critical.has(seg.span_id)) critical.set(seg.span_id, []);
    critical.get(seg.span_id).push(seg);
  }
  const orphans = new Set(analysis.orphans || []);
  const selfTime = analysis.self_time_ns || {};
  const findings = analysis.findings || [];
  const findingsOf = new Map();
  for (const f of findings) {
    if (!findingsOf.has(f.span_id)) findingsOf.set(f.span_id, []);
    findingsOf.get(f.span_id).push(f);
  }
  const logsBySpan = new Map();
  for (const [index, log] of trace.logs.entries()) {
    const key = log.attached_span_id || null;
    if (!logsBySpan.has(key)) logsBySpan.set(key, []);
    logsBySpan.get(key).push([index, log]);
  }
  const pct = (us) => Math.min(100, Math.max(0, ((us - startUs) * 1000 / totalNs) * 100));
  const offset = (text) => "+" + fmtDuration((toUs(text) - startUs) * 1000);

  // Rows in tree order; each knows its depth, so collapsing hides the run of deeper rows after it.
  const rows = []; // {node, depth, spanId, kind}
  const rowOf = new Map(); // span id -> row record
  const logRowOf = new Map(); // log index -> row record
  const hasChildren = new Set(trace.spans.map((sp) => sp.parent_span_id).filter(Boolean));
  const collapsed = new Set((params.get("collapsed") || "").split(",").filter(Boolean));

  const openDetail = (record, build, param) => {
    const wasOpen = record.node.classList.contains("selected");
    closePanel();
    if (wasOpen) { history.replaceState(null, "", traceHref(traceId)); return; }
    record.node.classList.add("selected");
    const detail = el("div", { class: "detail" }, build());
    record.node.after(detail);
    history.replaceState(null, "", traceHref(traceId, param));
  };

  const logRow = (index, log, depth) => {
    const node = el("div", { class: "row log lvl-row-" + levelName(log.level) },
      el("span", { class: "when" }, offset(log.time)), " ", levelTag(log.level), " ", serviceTag(log.service), " ",
      el("span", { class: "body" }, String(log.body ?? "")));
    node.style.paddingLeft = "calc(0.5em + " + Math.min(depth, 40) + " * var(--indent))";
    const record = { node, depth, kind: "log", text: (String(log.body ?? "") + " " + log.service).toLowerCase() };
    clickable(node, () => openDetail(record, () => logDetail(traceId, log, startUs), "log=" + index));
    logRowOf.set(index, record);
    rows.push(record);
  };

  for (const span of trace.spans) {
    const depth = span.depth || 0;
    const startSpanUs = toUs(span.start);
    const left = pct(startSpanUs);
    const width = Math.max(pct(startSpanUs + span.duration_ns / 1000) - left, 0.2);
    const isError = span.status && span.status.code === "ERROR";
    const bar = el("div", { class: "bar" + (isError ? " err" : "") });
    bar.style.left = left + "%";
    bar.style.width = width + "%";
    if (!isError) bar.style.background = "hsl(" + serviceHue(span.service) + ", 55%, 60%)";
    const segs = (critical.get(span.span_id) || []).map((seg) => {
      const from = pct(seg.start_ns / 1000);
      const band = el("div", { class: "crit", title: "critical path: " + fmtDuration(seg.end_ns - seg.start_ns) });
      band.style.left = from + "%";
      band.style.width = Math.max(pct(seg.end_ns / 1000) - from, 0.2) + "%";
      return band;
    });
    const ownLogs = logsBySpan.get(span.span_id) || [];
    const markers = ownLogs.map(([, log]) => {
      const mark = el("div", { class: "logmark lvl-" + levelName(log.level), title: (log.level || "log") + ": " + String(log.body ?? "").slice(0, 200) });
      mark.style.left = pct(toUs(log.time)) + "%";
      return mark;
    });
    const label = el("span", { class: "dur" }, fmtDuration(span.duration_ns),
      isError ? el("span", { class: "errmsg" }, " \u2717 " + (span.status.message || "ERROR")) : null);
    // After the bar if there is room, else before it, else inside it (the track clips it).
    if (left + width <= 70) label.style.left = "calc(" + (left + width) + "% + 4px)";
    else if (left >= 30) label.style.right = "calc(" + (100 - left) + "% + 4px)";
    else {
      label.classList.add("inside");
      label.style.left = "calc(" + left + "% + 4px)";
      label.style.maxWidth = "calc(" + width + "% - 8px)";
    }
    const toggle = hasChildren.has(span.span_id)
      ? el("button", { class: "toggle", title: "Collapse or expand this subtree", ariaLabel: "Toggle subtree" }, collapsed.has(span.span_id) ? "\u25b8" : "\u25be")
      : el("span", { class: "toggle none" }, "");
    const name = el("div", { class: "name" }, toggle, serviceTag(span.service), " ", el("span", { class: "opname" }, span.name),
      orphans.has(span.span_id) ? el("span", { class: "tag" }, "parent missing") : null,
      (findingsOf.get(span.span_id) || []).map((f) => el("span", { class: "tag finding", title: f.message }, f.kind)),
      ownLogs.length ? el("span", { class: "logcount muted", title: ownLogs.length + " log lines" }, "\u2261" + ownLogs.length) : null);
    // Indentation stops growing past 40 levels: a trace 100,000 spans deep stays readable.
    name.style.paddingLeft = "calc(0.3em + " + Math.min(depth, 40) + " * var(--indent))";
    const node = el("div", { class: "row span" + (isError ? " is-err" : ""), title: span.name, dataset: { spanId: span.span_id || "" } },
      name, el("div", { class: "track" }, bar, segs, markers, label));
    const record = { node, depth, kind: "span", spanId: span.span_id, toggle,
      text: (span.name + " " + span.service + " " + span.span_id + " " + JSON.stringify(span.attributes || {})).toLowerCase() };
    clickable(node, () => openDetail(record, () => spanDetail(traceId, span, selfTime[span.span_id], startUs), "span=" + enc(span.span_id || "")));
    if (toggle.tagName === "BUTTON") {
      toggle.addEventListener("click", (e) => {
        e.stopPropagation();
        if (collapsed.has(span.span_id)) collapsed.delete(span.span_id);
        else collapsed.add(span.span_id);
        applyCollapse();
      });
    }
    rowOf.set(span.span_id, record);
    rows.push(record);
    for (const [index, log] of ownLogs) logRow(index, log, depth + 1);
  }
  const unattached = logsBySpan.get(null) || [];
  const sectionNode = unattached.length ? el("div", { class: "section" }, "Logs of this trace not under a span") : null;
  if (sectionNode) rows.push({ node: sectionNode, depth: -1, kind: "section", text: "" });
  for (const [index, log] of unattached) logRow(index, log, 0);

  /** Hides every row under a collapsed span: one pass, no recursion. */
  function applyCollapse() {
    let hideDeeperThan = Infinity;
    for (const r of rows) {
      if (r.depth <= hideDeeperThan || r.kind === "section") hideDeeperThan = Infinity;
      const hidden = r.depth > hideDeeperThan;
      r.node.hidden = hidden;
      if (hidden && r.node.nextSibling && r.node.nextSibling.classList && r.node.nextSibling.classList.contains("detail")) r.node.nextSibling.remove();
      if (!hidden && r.kind === "span" && collapsed.has(r.spanId)) hideDeeperThan = r.depth;
      if (r.toggle && r.toggle.tagName === "BUTTON") r.toggle.textContent = collapsed.has(r.spanId) ? "\u25b8" : "\u25be";
    }
    const state = new URLSearchParams(location.hash.split("?")[1] || "");
    if (collapsed.size) state.set("collapsed", [...collapsed].join(","));
    else state.delete("collapsed");
    history.replaceState(null, "", traceHref(traceId, state.toString()));
  }

  /** Opens every collapsed ancestor of a span's row (rows are in tree order). */
  function reveal(record) {
    const i = rows.indexOf(record);
    let depth = record.depth;
    for (let j = i - 1; j >= 0 && depth > 0; j--) {
      if (rows[j].kind === "span" && rows[j].depth < depth) {
        collapsed.delete(rows[j].spanId);
        depth = rows[j].depth;
      }
    }
    applyCollapse();
  }

  const jumpTo = (record) => {
    reveal(record);
    if (!record.node.classList.contains("selected")) record.node.click();
    record.node.scrollIntoView({ block: "center" });
    record.node.classList.add("flash");
    setTimeout(() => record.node.classList.remove("flash"), 1200);
  };

  // Find in trace: highlights matching spans and logs.
  const find = el("input", { class: "q-input find", placeholder: "find in trace (name, service, attribute, log text)", ariaLabel: "Find in trace", value: params.get("find") || "" });
  const found = el("span", { class: "muted found" }, "");
  const runFind = () => {
    const needle = find.value.trim().toLowerCase();
    let n = 0;
    let first = null;
    for (const r of rows) {
      const hit = needle !== "" && r.text.includes(needle);
      r.node.classList.toggle("match", hit);
      if (hit) { n++; first = first || r; }
    }
    found.textContent = needle ? n + (n === 1 ? " match" : " matches") : "";
    const state = new URLSearchParams(location.hash.split("?")[1] || "");
    if (needle) state.set("find", find.value.trim());
    else state.delete("find");
    history.replaceState(null, "", traceHref(traceId, state.toString()));
    return first;
  };
  find.addEventListener("input", runFind);
  find.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const first = runFind();
      if (first) jumpTo(first);
    }
  });

  const findingsPanel = findings.length ? el("section", { class: "findings" },
    el("h2", {}, "Findings (" + findings.length + ")"),
    findings.map((f) => {
      const record = rowOf.get(f.span_id);
      return el("div", { class: "finding-row" },
        el("span", { class: "tag finding" }, f.kind), " ", el("span", { class: "msg" }, f.message), " ",
        record ? el("button", { class: "jump", title: "Show the span", onclick: () => jumpTo(record) }, "show span") : null,
        f.linked_trace_id ? [" ", el("a", { class: "linked", href: traceHref(f.linked_trace_id) },
          (f.kind === "detached_root" ? "\u2190 likely parent trace " : "continues in trace \u2192 ") + f.linked_trace_id)] : null);
    })) : null;

  const expandAll = el("button", { onclick: () => { collapsed.clear(); applyCollapse(); } }, "Expand all");
  const collapseAll = el("button", {
    onclick: () => {
      for (const r of rows) if (r.kind === "span" && hasChildren.has(r.spanId) && r.depth >= 1) collapsed.add(r.spanId);
      applyCollapse();
    },
  }, "Collapse all");
  const axis = ruler(totalNs, fmtDuration);
  setMain(
    el("h1", {}, "Trace ", idWithCopy(traceId, "trace id")),
    el("p", { class: "summary" },
      plural(s.span_count, "span") + " \u00b7 " + plural(s.log_count, "log") + " \u00b7 ",
      el("span", { class: s.error_count ? "err-text" : "" }, plural(s.error_count, "error")),
      " \u00b7 " + fmtDuration(s.duration_ns) + " \u00b7 started " + fmtTime(s.start) + " UTC \u00b7 ",
      (s.services || []).map((name) => [serviceTag(name), " "]),
      el("a", { href: searchHref({ q: "trace_id = " + traceId, since: "all" }) }, "as search hits")),
    findingsPanel,
    el("div", { class: "toolbar" }, find, found, expandAll, collapseAll,
      el("span", { class: "legend muted" }, el("span", { class: "crit-key" }), " critical path ", el("span", { class: "logmark-key" }), " log")),
    el("div", { class: "waterfall" },
      el("div", { class: "row head" }, el("div", { class: "name muted" }, "service \u00b7 operation"), el("div", { class: "track" }, axis)),
      rows.map((r) => r.node)),
  );
  applyCollapse();
  if (find.value) runFind();
  // Reopen what the URL selected (a pasted link to one span or log).
  const selected = rowOf.get(params.get("span")) || (params.has("log") ? logRowOf.get(Number(params.get("log"))) : undefined);
  if (selected) jumpTo(selected);
}

function spanDetail(traceId, span, selfNs, startUs) {
  const status = span.status || {};
  const spanStartUs = toUs(span.start);
  return [
    el("div", { class: "detail-head" }, el("strong", {}, span.name), " ", serviceTag(span.service), " " + (span.span_kind || span.kind || ""), " ",
      traceId ? el("a", { href: relatedHref(traceId, "span.name") }, "widen on span.name") : null),
    status.code === "ERROR" ? el("p", { class: "error" }, el("strong", {}, "ERROR"), " ", status.message || "") : null,
    facts([
      ["span id", idWithCopy(span.span_id || "", "span id")],
      ["parent", span.parent_span_id || "(root)"],
      ["start", fmtTime(span.start) + " UTC" + (isFinite(startUs) ? " (+" + fmtDuration((spanStartUs - startUs) * 1000) + ")" : "")],
      ["duration", fmtDuration(span.duration_ns)],
      ["self time", selfNs == null ? null : fmtDuration(selfNs)],
      ["status", status.code],
    ]),
    attributes("Attributes", traceId, span.attributes, ""),
    attributes("Resource", traceId, span.resource, "resource."),
    (span.events || []).length ? el("h3", {}, "Events") : null,
    (span.events || []).map((event) => el("div", { class: "event" + (event.name === "exception" ? " err-text" : "") },
      el("div", {}, el("strong", {}, event.name), " +" + fmtDuration((toUs(event.time) - spanStartUs) * 1000)),
      eventAttributes(event.attributes))),
    (span.links || []).length ? el("h3", {}, "Links") : null,
    (span.links || []).map((link) => el("div", {}, link.trace_id
      ? el("a", { href: traceHref(link.trace_id, link.span_id ? "span=" + enc(link.span_id) : "") }, link.trace_id)
      : "(no trace id)", " ", link.span_id || "")),
  ];
}

function logDetail(traceId, log, startUs) {
  return [
    el("div", { class: "detail-head" }, levelTag(log.level), " log ", serviceTag(log.service)),
    el("pre", { class: "logbody" }, String(log.body ?? "")),
    facts([
      ["time", fmtTime(log.time) + " UTC" + (isFinite(startUs) ? " (+" + fmtDuration((toUs(log.time) - startUs) * 1000) + ")" : "")],
      ["service", log.service],
      ["severity", log.severity_text],
      ["trace", log.trace_id ? [el("a", { href: traceHref(log.trace_id) }, log.trace_id), copyButton(log.trace_id, "trace id")] : null],
      ["span id", log.span_id && log.trace_id ? el("a", { href: traceHref(log.trace_id, "span=" + enc(log.attached_span_id || log.span_id)) }, log.span_id) : log.span_id],
      ["origin", log.origin ? log.origin.source + ":" + log.origin.offset : null],
      ["problems", (log.problems || []).join(", ") || null],
    ]),
    attributes("Attributes", traceId, log.attributes, ""),
    attributes("Resource", traceId, log.resource, "resource."),
  ];
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v != null && v !== "").map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** Names the related API accepts (letters, digits and _ . - : / @). */
const QUERY_NAME = /^[\p{L}_@][\p{L}\p{N}_.\-:/@]*$/u;

/** Key/value rows; each key that can be queried gets a "widen" link (needs the trace). */
function attributes(title, traceId, object, prefix) {
  const pairs = flatten(object);
  if (!pairs.length) return null;
  return [el("h3", {}, title), table(["key", "value", ""], pairs.map(([key, value]) => {
    const text = fmtValue(value);
    const widen = traceId && QUERY_NAME.test(prefix + key)
      ? el("a", { class: "widen", href: relatedHref(traceId, prefix + key), title: "Every span and log sharing this value, around this trace" }, "widen")
      : null;
    return el("tr", {}, el("td", { class: "key" }, key),
      el("td", {}, text.includes("\n") ? el("pre", {}, text) : text), el("td", { class: "act" }, widen));
  }), "kv")];
}

/** Event attributes (exception.stacktrace as a block); "search" finds the same value anywhere. */
function eventAttributes(object) {
  return table(["key", "value", ""], flatten(object).map(([key, value]) => {
    const text = fmtValue(value);
    const search = QUERY_NAME.test(key) && !text.includes("\n") && text.length < 300
      ? el("a", { href: searchHref({ q: key + " = " + literal(value), since: "24h" }) }, "search")
      : null;
    return el("tr", {}, el("td", { class: "key" }, key),
      el("td", {}, text.includes("\n") ? el("pre", { class: "stack" }, text) : text), el("td", { class: "act" }, search));
  }), "kv");
}

// ---- widen (related) ---------------------------------------------------------------------

async function showRelated(gen, traceId, params) {
  const attribute = params.get("attribute") || "";
  const window = params.get("window") || "1h";
  document.title = "widen " + attribute + " \u00b7 threadline";
  setMain(el("p", { class: "muted" }, "Widening on " + attribute + "\u2026"));
  const r = await api("/api/v1/traces/" + enc(traceId) + "/related?" + query({ attribute, window, limit: "50" }));
  if (gen !== generation) return;
  const head = [
    el("h1", {}, "Widen on ", el("code", {}, attribute)),
    el("p", {}, "From trace ", el("a", { href: traceHref(r.trace_id) }, el("code", {}, r.trace_id)),
      ", value ", r.values.length ? r.values.map((v, i) => [i ? ", " : "", el("code", {}, fmtValue(v))]) : "(none)",
      ", ", fmtTime(r.from), " \u2013 ", fmtTime(r.to), " UTC."),
    el("p", { class: "choices" }, "Window: ", WINDOWS.map((w) => w === window ? el("strong", {}, w + " ")
      : [el("a", { href: relatedHref(r.trace_id, attribute, w) }, w), " "])),
  ];
  if (!r.values.length) {
    setMain(head, el("p", { class: "muted" }, "This trace has no value for " + attribute + "."));
    return;
  }
  const samples = r.sample_traces || (r.sample_trace_ids || []).map((id) => ({ trace_id: id }));
  setMain(head,
    el("p", { class: "summary" }, r.total + " matching spans and logs \u00b7 ",
      el("a", { href: searchHref({ q: r.query, from: r.from, to: r.to }) }, "open as a search"), " \u00b7 ",
      el("a", { href: "#/compare?" + query({ q: r.query, from: r.from, to: r.to }) }, "what is different about these?"),
      " \u00b7 query ", el("code", {}, r.query)),
    el("h2", {}, "Over time"),
    histogram(r.by_time, r.from, r.to, r.interval),
    el("div", { class: "grid" },
      el("section", {}, el("h2", {}, "By value"), bars(r.by_value.map((b) => [el("code", {}, fmtValue(b.value)), b.count]))),
      el("section", {}, el("h2", {}, "By service"), bars(r.by_service.map((b) => [serviceTag(b.service), b.count]))),
      r.by_status ? el("section", {}, el("h2", {}, "By status / level"), bars(r.by_status.map((b) => [b.status, b.count]))) : null,
      el("section", { class: "samples" }, el("h2", {}, "Sample traces"),
        el("p", { class: "muted" }, "errors first, then nearest in time"),
        el("ul", { class: "plain" }, samples.map((t) => el("li", {},
          el("a", { href: traceHref(t.trace_id) }, el("code", {}, t.trace_id)),
          t.error ? el("span", { class: "tag finding" }, "error") : null,
          t.trace_id === r.trace_id ? " (this one)" : "",
          t.start ? el("span", { class: "muted" }, " " + fmtTime(t.start)) : null))))),
    el("h2", {}, "Newest hits"),
    hitsTable(r.hits),
  );
}

/** Label/count rows with bars scaled to the largest count. */
function bars(pairs) {
  const max = Math.max(1, ...pairs.map(([, count]) => count));
  return el("div", { class: "bars" }, pairs.map(([label, count]) => {
    const bar = el("div", { class: "hbar" });
    bar.style.width = (100 * count) / max + "%";
    return el("div", { class: "barrow" }, el("span", { class: "label" }, label), el("span", { class: "num" }, String(count)), el("span", { class: "barcell" }, bar));
  }));
}

/** Counts over time: every bucket from `from` to `to`, empty ones too; a ruler of clock times. */
function histogram(byTime, fromText, toText, interval) {
  const step = parseInterval(interval);
  const from = toUs(fromText) / 1000;
  const to = toUs(toText) / 1000;
  let buckets = byTime.map((b) => ({ t: toUs(b.time) / 1000, count: b.count }));
  if (step > 0 && isFinite(from) && isFinite(to) && (to - from) / step <= 2000) {
    const counts = new Map(buckets.map((b) => [Math.round(b.t), b.count]));
    buckets = [];
    for (let t = Math.floor(from / step) * step; t < to; t += step) buckets.push({ t, count: counts.get(t) || 0 });
  }
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const t0 = buckets.length ? buckets[0].t : from;
  const t1 = buckets.length ? buckets[buckets.length - 1].t + (step || 0) : to;
  const cols = el("div", { class: "histogram" }, buckets.map((b) => {
    const column = el("div", { title: fmtTime(new Date(b.t).toISOString()) + " UTC: " + b.count });
    column.style.height = (100 * b.count) / max + "%";
    return column;
  }));
  return el("div", { class: "hist" }, el("div", { class: "yaxis muted" }, el("span", {}, String(max)), el("span", {}, "0")),
    el("div", { class: "plotwrap" }, cols, ruler(Math.max(1, t1 - t0), (ms) => fmtClock(t0 + ms, t1 - t0 > 86400e3))));
}

function parseInterval(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(String(text || ""));
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
}

// ---- search / explore --------------------------------------------------------------------

async function showSearch(gen, params) {
  const q = params.get("q") || "";
  const range = timeRange(params);
  const by = params.get("by") || "";
  const count = params.get("count") || "records";
  document.title = (q || "search") + " \u00b7 threadline";
  const input = el("input", { name: "q", class: "q-input", value: q, placeholder: "service = payment-service AND level >= warn", ariaLabel: "Query" });
  input.spellcheck = false;
  const since = sinceSelect(range.since || "1h");
  const byInput = el("input", { name: "by", value: by, placeholder: "group by, e.g. decline_code,card.bin", ariaLabel: "Group by" });
  const countSel = el("select", { name: "count", ariaLabel: "Count" }, el("option", { value: "records" }, "count records"), el("option", { value: "traces" }, "count traces"));
  countSel.value = count;
  const form = el("form", { class: "filters", id: "search-form" },
    el("label", { class: "wide" }, "Query", input), el("label", {}, "Time", since),
    el("label", {}, "Group by", byInput), el("label", {}, "Count", countSel),
    el("button", { type: "submit", class: "primary" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = searchHref({ q: input.value.trim(), since: since.value, by: byInput.value.replace(/\s+/g, ""), count: countSel.value === "records" ? "" : countSel.value });
    if (location.hash === next) render();
    else location.hash = next;
  });
  const presets = el("p", { class: "presets muted" }, "Try: ",
    el("a", { href: searchHref({ q: "kind = span AND exists(decline_code)", by: "decline_code,card.bin", count: "traces", since: "24h" }) }, "declines by code and BIN"), " \u00b7 ",
    el("a", { href: searchHref({ q: "status = ERROR", by: "service", since: "24h" }) }, "errors by service"), " \u00b7 ",
    EXAMPLES.map((ex, i) => [i ? " \u00b7 " : "", el("a", { href: searchHref({ q: ex, since: "24h" }) }, el("code", {}, ex))]));
  const results = el("div", { class: "results" }, el("p", { class: "muted" }, "Searching\u2026"));
  setMain(el("h1", {}, "Search"), form, presets, results);

  const base = { q };
  if (range.from) base.from = range.from;
  if (range.to) base.to = range.to;
  let page;
  try {
    page = await api("/api/v1/search?" + query({ ...base, limit: String(PAGE) }));
  } catch (error) {
    if (gen === generation) results.replaceChildren(errorBox(error, q));
    return;
  }
  if (gen !== generation) return;
  // The histogram's range: the chosen range, or (all time) the hits' own span.
  const fromMs = range.from ? toUs(range.from) / 1000 : Math.min(...page.hits.map((h) => toUs(h.start || h.time) / 1000), Date.now() - 3600e3);
  const toMs = range.to ? toUs(range.to) / 1000 : Date.now();
  const interval = autoInterval(fromMs, toMs);
  const histFrom = new Date(fromMs).toISOString();
  const histTo = new Date(toMs).toISOString();
  const histBox = el("div", { class: "histbox" });
  const groupBox = el("div", { class: "groupbox" });
  api("/api/v1/aggregate?" + query({ q, from: histFrom, to: histTo, interval })).then((agg) => {
    if (gen !== generation) return;
    histBox.replaceChildren(el("h2", {}, "Over time (" + interval + " buckets)"),
      histogram(agg.buckets.map((b) => ({ time: b.key.time, count: b.count })), histFrom, histTo, interval));
  }, (error) => histBox.replaceChildren(errorBox(error, q)));
  if (by) groupBox.replaceChildren(await groupBy(gen, base, by, count));
  if (gen !== generation) return;

  const hits = hitsTable(page.hits);
  let cursor = page.cursor;
  let shown = page.hits.length;
  const status = el("span", {}, "");
  const more = el("button", { class: "more" }, "Load more");
  const update = () => {
    status.textContent = shown + " of " + page.total + " shown";
    more.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    if (!cursor) return;
    more.disabled = true;
    try {
      const next = await api("/api/v1/search?" + query({ ...base, limit: String(PAGE), cursor }));
      if (gen !== generation) return;
      hits.querySelector("tbody").append(...next.hits.map(hitRow));
      shown += next.hits.length;
      cursor = next.cursor;
      update();
    } catch (error) {
      more.after(errorBox(error));
    } finally {
      more.disabled = false;
    }
  });
  update();
  results.replaceChildren(
    el("p", { class: "summary" }, page.total + " matches in " + page.took_ms + " ms \u00b7 ",
      range.from ? fmtTime(range.from) : "the beginning", " \u2013 ", range.to ? fmtTime(range.to) + " UTC" : "now", " \u00b7 ",
      el("a", { href: searchHref({ ...base, by, count: count === "records" ? "" : count }), title: "A link to this exact time range" }, "permalink"), " \u00b7 ",
      el("a", { href: "#/traces?" + query({ q, since: range.since }) }, "as traces"), " \u00b7 ",
      el("a", { href: "#/live?" + query({ q }) }, "follow live"), " \u00b7 ",
      el("a", { href: "#/compare?" + query({ ...base }) }, "compare")),
    histBox, groupBox,
    el("h2", {}, "Hits"),
    page.hits.length ? hits : el("p", { class: "muted" }, "Nothing matches."),
    el("p", {}, more, " ", status));
}

/** Counts by one or two fields, as bars; two fields nest the second under the first. */
async function groupBy(gen, base, by, count) {
  const fields = by.split(",").filter(Boolean).slice(0, 2);
  let agg;
  // A server without count=traces would ignore it and count records: say so, not "traces".
  const traces = count === "traces" && (await hasParam("/api/v1/aggregate", "count"));
  const note = count === "traces" && !traces ? "this server counts records only (no count=traces yet)" : null;
  try {
    agg = await api("/api/v1/aggregate?" + query({ ...base, by: fields.join(","), size: "20", count: traces ? "traces" : "" }));
  } catch (error) {
    return errorBox(error, base.q);
  }
  if (gen !== generation) return el("div");
  const what = count === "traces" && !note ? "traces" : "records";
  const keyOf = (b, f) => fmtValue(b.key[f] ?? "(none)");
  let body;
  if (fields.length === 1) {
    body = bars(agg.buckets.map((b) => [el("a", { href: searchHref({ q: andQuery(base.q, fields[0], b.key[fields[0]]), from: base.from, to: base.to }) }, keyOf(b, fields[0])), b.count]));
  } else {
    const groups = new Map();
    for (const b of agg.buckets) {
      const k = keyOf(b, fields[0]);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(b);
    }
    const max = Math.max(1, ...agg.buckets.map((b) => b.count));
    body = el("div", { class: "bars nested" }, [...groups.entries()].map(([k, list]) => el("div", { class: "group" },
      el("div", { class: "group-head" }, el("code", {}, k), el("span", { class: "muted" }, " " + list.reduce((n, b) => n + b.count, 0))),
      list.map((b) => {
        const bar = el("div", { class: "hbar" });
        bar.style.width = (100 * b.count) / max + "%";
        return el("div", { class: "barrow" }, el("span", { class: "label" }, el("code", {}, keyOf(b, fields[1]))), el("span", { class: "num" }, String(b.count)), el("span", { class: "barcell" }, bar));
      }))));
  }
  return el("section", { class: "groupby" }, el("h2", {}, "Count of " + what + " by " + fields.join(" and ")),
    note ? el("p", { class: "muted" }, note) : null,
    agg.buckets.length ? body : el("p", { class: "muted" }, "No values."));
}

function andQuery(q, field, value) {
  const clause = field + " = " + literal(value);
  return q ? "(" + q + ") AND " + clause : clause;
}

function hitsTable(hits) {
  return table(["time (UTC)", "kind", "service", "level / status", "body / name", "trace"], hits.map(hitRow), "hits");
}

function hitRow(hit) {
  const isSpan = hit.kind === "span";
  const status = (hit.status || {}).code;
  const what = isSpan
    ? [hit.name, " ", el("span", { class: "muted" }, fmtDuration(hit.duration_ns)),
      status === "ERROR" && hit.status.message ? el("span", { class: "err-text" }, " \u2717 " + hit.status.message) : null]
    : String(hit.body ?? "");
  const row = el("tr", { class: "hit", title: "Show details" },
    el("td", { class: "time" }, fmtTime(isSpan ? hit.start : hit.time)),
    el("td", { class: "kind" }, hit.kind),
    el("td", {}, serviceTag(hit.service)),
    el("td", {}, isSpan ? el("span", { class: status === "ERROR" ? "err-text" : "" }, status || "") : levelTag(hit.level)),
    el("td", { class: "body" }, what),
    el("td", { class: "tid" }, hit.trace_id
      ? el("a", { href: traceHref(hit.trace_id, isSpan && hit.span_id ? "span=" + enc(hit.span_id) : ""), title: hit.trace_id }, el("code", {}, hit.trace_id))
      : el("span", { class: "muted" }, "none")));
  clickable(row, () => {
    closePanel();
    row.classList.add("selected");
    if (isSpan) setPanel(spanDetail(hit.trace_id, hit, null, NaN));
    else setPanel(logDetail(hit.trace_id, hit, NaN));
  });
  return row;
}

// ---- live --------------------------------------------------------------------------------

function showLive(gen, params) {
  const q = params.get("q") || "";
  document.title = "live " + q + " \u00b7 threadline";
  const input = el("input", { name: "q", class: "q-input", value: q, placeholder: "follow a query, e.g. level >= warn (empty: everything)", ariaLabel: "Query" });
  const form = el("form", { class: "filters", id: "live-form" }, el("label", { class: "wide" }, "Query", input), el("button", { type: "submit", class: "primary" }, "Follow"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/live?" + query({ q: input.value.trim() });
  });
  const status = el("span", { class: "live-status" }, "connecting\u2026");
  const counter = el("span", { class: "muted" }, "");
  const pause = el("button", { class: "pause" }, "Pause");
  const body = el("tbody", {});
  const list = el("table", { class: "hits" }, el("thead", {}, el("tr", {}, ["time (UTC)", "kind", "service", "level / status", "body / name", "trace"].map((h) => el("th", {}, h)))), body);
  setMain(el("h1", {}, "Live"), form, el("p", { class: "toolbar" }, status, " ", pause, " ", counter),
    el("p", { class: "muted empty" }, "Records matching the query appear here as they are indexed, newest on top."), list);
  let controller = null;
  let lastId = null;
  let received = 0;
  let paused = false;
  const onRecord = (data, id) => {
    lastId = id || lastId;
    let hit;
    try { hit = JSON.parse(data); } catch (_) { return; }
    received++;
    counter.textContent = received + " received";
    body.prepend(hitRow(hit));
    while (body.children.length > LIVE_MAX_ROWS) body.lastChild.remove();
  };
  const setStatus = (text, on) => {
    status.textContent = text;
    status.className = "live-status" + (on ? " on" : "");
  };
  // A fetch stream rather than EventSource, which cannot send the read token. It resumes after
  // the last record it got (`after`), so a reconnect loses nothing and repeats nothing.
  const follow = async () => {
    while (!paused && gen === generation) {
      controller = new AbortController();
      const signal = controller.signal;
      try {
        await tailStream(q, lastId, signal, () => setStatus("live", true), (event, data, id) => {
          if (event === "error") {
            let message = data;
            try { message = JSON.parse(data).error.message; } catch (_) { /* the raw text */ }
            setStatus("error: " + message, false);
          } else {
            onRecord(data, id);
          }
        });
        if (signal.aborted) return;
        setStatus("reconnecting\u2026", false);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
          setStatus("stopped", false);
          list.before(errorBox(error, q));
          return;
        }
        setStatus("reconnecting\u2026", false);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  const stop = () => { if (controller) controller.abort(); };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      stop();
      setStatus("paused", false);
    } else {
      follow();
    }
  });
  cleanup.push(() => { paused = true; stop(); });
  if (gen === generation) follow();
}

/** Reads the live-tail stream (server-sent events) until it ends, calling `onEvent(event, data,
 *  id)` per event; `onOpen` once the server accepted it. Throws an ApiError on a refusal. */
async function tailStream(q, after, signal, onOpen, onEvent) {
  const response = await fetch("/api/v1/tail?" + query({ q, after }),
    { headers: { ...authHeaders(), Accept: "text/event-stream" }, credentials: "same-origin", signal });
  if (!response.ok) {
    const error = ((await response.json().catch(() => null)) || {}).error || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || String(response.status));
  }
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
        else if (field === "id") id = text;
      }
      if (data.length) onEvent(event, data.join("\n"), id);
    }
    // One event is one record: far below this.
    if (buffer.length > 16 << 20) throw new ApiError(0, "ui", "the live stream sent an event over 16 MiB");
  }
}

// ---- compare -----------------------------------------------------------------------------

async function showCompare(gen, params) {
  const q = params.get("q") || "";
  const baseline = params.get("baseline") || "";
  const range = timeRange(params);
  document.title = "compare " + q + " \u00b7 threadline";
  const input = el("input", { name: "q", class: "q-input", value: q, placeholder: "selection, e.g. status = ERROR AND service = payment-service", ariaLabel: "Selection" });
  const base = el("input", { name: "baseline", value: baseline, placeholder: "baseline (empty: everything else)", ariaLabel: "Baseline" });
  const since = sinceSelect(range.since || "1h");
  const form = el("form", { class: "filters", id: "compare-form" }, el("label", { class: "wide" }, "Selection", input),
    el("label", { class: "wide" }, "Baseline", base), el("label", {}, "Time", since), el("button", { type: "submit", class: "primary" }, "Compare"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/compare?" + query({ q: input.value.trim(), baseline: base.value.trim(), since: since.value });
  });
  const results = el("div", { class: "results" });
  setMain(el("h1", {}, "What is different?"), form, results);
  if (!q) {
    results.replaceChildren(el("p", { class: "muted" }, "Give a selection (e.g. ", el("a", { href: "#/compare?" + query({ q: 'decline_code = "do_not_honor"', since: "24h" }) }, el("code", {}, 'decline_code = "do_not_honor"')), ") to see which attribute values are over-represented in it."));
    return;
  }
  results.replaceChildren(el("p", { class: "muted" }, "Comparing\u2026"));
  if (!(await hasRoute("/api/v1/compare"))) {
    if (gen === generation) results.replaceChildren(el("p", { class: "error" }, "This server has no compare endpoint (GET /api/v1/compare)."));
    return;
  }
  let c;
  try {
    c = await api("/api/v1/compare?" + query({ q, baseline, from: range.from, to: range.to, limit: "30" }));
  } catch (error) {
    if (gen === generation) results.replaceChildren(errorBox(error, q));
    return;
  }
  if (gen !== generation) return;
  const pctText = (x) => (100 * (x || 0)).toFixed(1) + "%";
  const shareBar = (share, cls) => {
    const bar = el("div", { class: "hbar " + cls });
    bar.style.width = 100 * Math.min(1, share || 0) + "%";
    return bar;
  };
  results.replaceChildren(
    el("p", { class: "summary" }, "selection: " + (c.selection || {}).traces + " traces / " + (c.selection || {}).records + " records \u00b7 baseline: " +
      (c.baseline || {}).traces + " traces / " + (c.baseline || {}).records + " records \u00b7 ",
      el("span", { class: "key-sel" }), " share in the selection ", el("span", { class: "key-base" }), " in the baseline"),
    (c.results || []).length ? el("div", { class: "compare" }, (c.results || []).map((r) => el("div", { class: "cmprow" },
      el("a", { class: "label", href: searchHref({ q: "(" + q + ") AND " + r.field + " = " + literal(r.value), since: range.since }) },
        el("code", {}, r.field + " = " + fmtValue(r.value))),
      el("span", { class: "num" }, pctText(r.selection_share) + " vs " + pctText(r.baseline_share)),
      el("span", { class: "barcell" }, shareBar(r.selection_share, "sel"), shareBar(r.baseline_share, "base"))))) :
      el("p", { class: "muted" }, "Nothing stands out."));
}

// ---- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("trace-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("trace-input").value.trim();
    if (id) location.hash = traceHref(id);
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, select, textarea");
    if (e.key === "Escape") {
      closePanel();
      if (typing) e.target.blur();
    } else if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const input = document.querySelector("#main .q-input") || document.getElementById("trace-input");
      e.preventDefault();
      input.focus();
      input.select();
    }
  });
  window.addEventListener("hashchange", render);
  render();
});
