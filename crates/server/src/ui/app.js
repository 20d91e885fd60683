// threadline web UI: a trace's waterfall with its logs, "widen" from one attribute, and search.
// The state lives in the URL hash (#/trace/<id>, #/search?q=..., #/related/<id>?attribute=K) so
// a link can be pasted into an incident channel.
//
// Log bodies and attributes are attacker-controlled: the DOM is built with createElement and
// text nodes only, never from markup, and every link is an in-page "#/..." route.
"use strict";

const TOKEN_KEY = "threadline.read_token";
const SINCE = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 86400e3 };
const WINDOWS = ["15m", "1h", "6h", "24h"];
const PAGE = 100;

let generation = 0; // bumped per navigation, so a slow answer never paints over a newer view

// ---- DOM helpers -------------------------------------------------------------------------

/** el("a", {class: "x", href: "#/..."}, child, "text") -- strings become text nodes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "href") node.href = route(value);
    else if (key === "title") node.title = String(value);
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
  const main = document.getElementById("main");
  main.replaceChildren(...nodes(children));
}

function setPanel(...children) {
  const panel = document.getElementById("panel");
  panel.replaceChildren(el("button", { class: "close", title: "Close", onclick: closePanel }, "\u00d7"), ...nodes(children));
  panel.hidden = false;
  panel.scrollTop = 0;
}

function closePanel() {
  const panel = document.getElementById("panel");
  panel.hidden = true;
  panel.replaceChildren();
  for (const row of document.querySelectorAll(".selected")) row.classList.remove("selected");
}

/** A row that opens details on click, or on Enter when focused. */
function clickable(row, open) {
  row.tabIndex = 0;
  row.addEventListener("click", open);
  row.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target === row) open(e);
  });
  return row;
}

function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

// ---- formatting --------------------------------------------------------------------------

const enc = encodeURIComponent;
const traceHref = (id, extra) => "#/trace/" + enc(id) + (extra ? "?" + extra : "");
const searchHref = (params) => "#/search?" + new URLSearchParams(params).toString();
const relatedHref = (id, attribute, window) =>
  "#/related/" + enc(id) + "?" + new URLSearchParams({ attribute, window: window || "1h" }).toString();

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
  if (abs < 60e9) return (ns / 1e9).toFixed(2) + "s";
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

function fmtValue(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A value as a literal of the query language: numbers and booleans bare, strings quoted. */
function literal(value) {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return '"' + String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

/** Nested attribute maps flattened to dotted keys, sorted. */
function flatten(object, prefix, out) {
  out = out || [];
  for (const [key, value] of Object.entries(object || {})) {
    const path = prefix ? prefix + "." + key : key;
    if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, path, out);
    else out.push([path, value]);
  }
  return prefix ? out : out.sort((a, b) => a[0].localeCompare(b[0]));
}

/** A stable colour per service, so one service reads the same down the waterfall. */
function serviceHue(name) {
  let h = 0;
  for (const c of String(name || "")) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

function serviceTag(name) {
  const tag = el("span", { class: "svc" }, name || "?");
  tag.style.borderColor = "hsl(" + serviceHue(name) + ", 55%, 50%)";
  return tag;
}

function levelTag(level) {
  const name = String(level || "none").toLowerCase();
  const known = ["trace", "debug", "info", "warn", "error", "fatal"].includes(name) ? name : "none";
  return el("span", { class: "lvl lvl-" + known }, level || "-");
}

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  let response;
  try {
    response = await fetch(path, { headers, credentials: "same-origin" });
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

/** An API error as it came (the message names the column); a 401 asks for the read token. */
function errorBox(error) {
  if (!(error instanceof ApiError)) error = new ApiError(0, "ui", String(error && error.message || error));
  const box = el("div", { class: "error" },
    el("strong", {}, error.code), " ", error.message);
  if (error.status === 401) {
    const input = el("input", { class: "token", title: "Read token" });
    input.type = "password";
    input.placeholder = "read token";
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

// ---- views -------------------------------------------------------------------------------

async function render() {
  const gen = ++generation;
  closePanel();
  document.title = "threadline";
  const hash = location.hash.replace(/^#\/?/, "");
  const cut = hash.indexOf("?");
  const path = (cut < 0 ? hash : hash.slice(0, cut)).split("/").map(safeDecode);
  const params = new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1));
  try {
    if (path[0] === "trace" && path[1]) await showTrace(gen, path[1], params);
    else if (path[0] === "related" && path[1]) await showRelated(gen, path[1], params);
    else if (path[0] === "search") await showSearch(gen, params);
    else await showHome(gen);
  } catch (error) {
    if (gen === generation) setMain(errorBox(error));
  }
  if (gen === generation) document.getElementById("main").focus({ preventScroll: true });
}

function safeDecode(part) {
  try { return decodeURIComponent(part); } catch (_) { return part; }
}

async function showHome(gen) {
  setMain(el("p", { class: "muted" }, "Loading services\u2026"));
  const examples = [
    "status = ERROR",
    "level >= warn",
    "span.name = stripe_api_call AND duration > 2s",
    'decline_code = "do_not_honor"',
    "http.status_code >= 500 AND exists(exception.type)",
  ];
  const services = (await api("/api/v1/services")).services || [];
  if (gen !== generation) return;
  setMain(
    el("h1", {}, "Follow one request through every service"),
    el("p", {}, "Paste a trace id above (any spelling found in logs), or search spans and logs."),
    el("h2", {}, "Try"),
    el("ul", { class: "plain" }, examples.map((q) => el("li", {}, el("a", { href: searchHref({ q, since: "24h" }) }, el("code", {}, q))))),
    el("h2", {}, "Services"),
    services.length === 0 ? el("p", { class: "muted" }, "The index is empty.") :
      el("ul", { class: "plain" }, services.map((s) => el("li", {},
        el("a", { href: searchHref({ q: "service = " + literal(s.name), since: "24h" }) }, serviceTag(s.name)),
        " ", el("span", { class: "muted" }, s.records + " records")))),
  );
}

// ---- trace -------------------------------------------------------------------------------

async function showTrace(gen, rawId, params) {
  document.getElementById("trace-input").value = rawId;
  setMain(el("p", { class: "muted" }, "Loading trace " + rawId + "\u2026"));
  const trace = await api("/api/v1/traces/" + enc(rawId.trim()));
  if (gen !== generation) return;
  // A 64-bit id (a Datadog decimal) finds the trace by its low half: name it by its full id.
  const full = trace.trace_id.startsWith("0000000000000000") &&
    trace.spans.map((s) => s.trace_id).find((id) => id && id.endsWith(trace.trace_id.slice(16)));
  const traceId = full || trace.trace_id;
  if (traceId !== rawId) history.replaceState(null, "", traceHref(traceId, params.toString()));
  document.title = "trace " + traceId.slice(0, 8) + " \u00b7 threadline";
  document.getElementById("trace-input").value = traceId;

  const s = trace.summary || {};
  const startUs = toUs(s.start);
  const totalNs = Math.max(s.duration_ns || 0, 1);
  const analysis = trace.analysis || {};
  // Critical-path segments by span id: the stretches the request waited on that span itself.
  const segmentsOf = new Map();
  for (const seg of analysis.critical_path || []) {
    if (!segmentsOf.has(seg.span_id)) segmentsOf.set(seg.span_id, []);
    segmentsOf.get(seg.span_id).push(seg);
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
  for (const log of trace.logs) {
    const key = log.attached_span_id || null;
    if (!logsBySpan.has(key)) logsBySpan.set(key, []);
    logsBySpan.get(key).push(log);
  }
  const pct = (us) => Math.min(100, Math.max(0, ((us - startUs) * 1000 / totalNs) * 100));
  const offset = (text) => "+" + fmtDuration((toUs(text) - startUs) * 1000);

  const select = (row, param, show) => {
    closePanel();
    row.classList.add("selected");
    history.replaceState(null, "", traceHref(traceId, param));
    show();
  };

  const logRow = (log, depth) => {
    const row = el("div", { class: "log", title: "Show details" }, offset(log.time), " ", levelTag(log.level), " ",
      serviceTag(log.service), " ", el("span", { class: "body" }, String(log.body ?? "")));
    row.style.paddingLeft = 0.5 + depth * 1.1 + "em";
    const index = trace.logs.indexOf(log);
    logRowOf.set(index, row);
    clickable(row, () => select(row, "log=" + index, () => logPanel(traceId, log, startUs)));
    return row;
  };

  const rows = [];
  const rowOf = new Map(); // span id -> row
  const logRowOf = new Map(); // index in trace.logs -> row
  for (const span of trace.spans) {
    const startSpanUs = toUs(span.start);
    const left = pct(startSpanUs);
    const width = Math.max(pct(startSpanUs + span.duration_ns / 1000) - left, 0.15);
    const isError = span.status && span.status.code === "ERROR";
    const bar = el("div", { class: "bar" + (isError ? " err" : "") });
    bar.style.left = left + "%";
    bar.style.width = width + "%";
    if (!isError) bar.style.background = "hsl(" + serviceHue(span.service) + ", 55%, 55%)";
    const label = el("span", { class: "dur" }, fmtDuration(span.duration_ns),
      isError ? el("span", { class: "errmsg" }, " \u2717 " + (span.status.message || "ERROR")) : null);
    // After the bar if there is room, else before it, else inside it; cut to the room there is.
    if (left + width <= 65) {
      label.style.left = "calc(" + (left + width) + "% + 4px)";
      label.style.maxWidth = "calc(" + (100 - left - width) + "% + 52px)";
    } else if (left >= 35) {
      label.style.right = "calc(" + (100 - left) + "% + 4px)";
      label.style.maxWidth = "calc(" + left + "% - 4px)";
    } else {
      label.classList.add("inside");
      label.style.right = "calc(" + (100 - left - width) + "% + 4px)";
      label.style.maxWidth = "calc(" + width + "% - 8px)";
    }
    const name = el("div", { class: "name" }, serviceTag(span.service), " ", span.name,
      orphans.has(span.span_id) ? el("span", { class: "tag" }, "parent missing") : null,
      (findingsOf.get(span.span_id) || []).map((f) => el("span", { class: "tag finding", title: f.message }, f.kind)));
    // Indentation stops growing past 40 levels: a trace 100,000 spans deep stays readable.
    name.style.paddingLeft = 0.5 + Math.min(span.depth || 0, 40) * 1.1 + "em";
    const segs = (segmentsOf.get(span.span_id) || []).map((seg) => {
      const from = pct(seg.start_ns / 1000);
      const band = el("div", { class: "crit-seg", title: "critical path: " + fmtDuration(seg.end_ns - seg.start_ns) });
      band.style.left = from + "%";
      band.style.width = Math.max(pct(seg.end_ns / 1000) - from, 0.15) + "%";
      return band;
    });
    const row = el("div", { class: "span" + (isError ? " is-err" : ""), title: span.name }, name, el("div", { class: "track" }, bar, segs, label));
    clickable(row, () => select(row, "span=" + enc(span.span_id || ""),
      () => spanPanel(traceId, span, selfTime[span.span_id], startUs)));
    rowOf.set(span.span_id, row);
    rows.push(row);
    for (const log of logsBySpan.get(span.span_id) || []) rows.push(logRow(log, (span.depth || 0) + 1));
  }
  const unattached = logsBySpan.get(null) || [];
  if (unattached.length) {
    rows.push(el("div", { class: "section" }, "Logs of this trace not under a span"));
    for (const log of unattached) rows.push(logRow(log, 0));
  }

  const ticks = el("div", { class: "track axis" }, [0, 25, 50, 75, 100].map((p) => {
    const tick = el("span", {}, fmtDuration((totalNs * p) / 100));
    tick.style.left = p + "%";
    return tick;
  }));
  // Findings first: each jumps to its span; a lost context links to the other trace.
  const findingsPanel = findings.length ? el("section", { class: "findings" },
    el("h2", {}, "Findings (" + findings.length + ")"),
    findings.map((f) => {
      const item = el("div", { class: "finding-row", title: f.span_id ? "Show the span" : null },
        el("span", { class: "tag finding" }, f.kind), " ", el("span", {}, f.message),
        f.linked_trace_id ? [" ", el("a", { href: traceHref(f.linked_trace_id) },
          (f.kind === "detached_root" ? "\u2190 likely parent trace " : "continues in trace \u2192 ") + f.linked_trace_id.slice(0, 8))] : null);
      const row = rowOf.get(f.span_id);
      if (row) {
        item.classList.add("clickable");
        item.addEventListener("click", (e) => {
          if (e.target.tagName === "A") return;
          row.click();
          row.scrollIntoView({ block: "center" });
        });
      }
      return item;
    })) : null;
  setMain(
    el("h1", {}, "trace ", el("code", {}, traceId)),
    el("p", { class: "summary" },
      s.span_count + " spans \u00b7 " + s.log_count + " logs \u00b7 ",
      el("span", { class: s.error_count ? "err-text" : "" }, s.error_count + " errors"),
      " \u00b7 " + fmtDuration(s.duration_ns) + " \u00b7 started " + fmtTime(s.start) + " UTC \u00b7 ",
      (s.services || []).map((name) => [serviceTag(name), " "]),
      el("a", { href: searchHref({ q: "trace_id = " + traceId, since: "all" }) }, "as search hits")),
    findingsPanel,
    el("div", { class: "waterfall" },
      el("div", { class: "span head" }, el("div", { class: "name muted" }, "service \u00b7 span (dark band: critical path)"), ticks),
      rows),
  );
  // Reopen what the URL selected (a pasted link to one span or log).
  const selected = rowOf.get(params.get("span")) ||
    (params.has("log") ? logRowOf.get(Number(params.get("log"))) : undefined);
  if (selected) {
    selected.click();
    selected.scrollIntoView({ block: "center" });
  }
}

function spanPanel(traceId, span, selfNs, startUs) {
  const status = span.status || {};
  const spanStartUs = toUs(span.start);
  setPanel(
    el("h2", {}, span.name),
    el("p", {}, serviceTag(span.service), " " + (span.span_kind || span.kind || ""), " ",
      traceId ? el("a", { href: relatedHref(traceId, "span.name") }, "widen on span.name") : null),
    status.code === "ERROR" ? el("p", { class: "error" }, el("strong", {}, "ERROR"), " ", status.message || "") : null,
    facts([
      ["span id", span.span_id],
      ["parent", span.parent_span_id || "(root)"],
      ["start", fmtTime(span.start) + " UTC (+" + fmtDuration((spanStartUs - startUs) * 1000) + ")"],
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
  );
}

function logPanel(traceId, log, startUs) {
  setPanel(
    el("h2", {}, levelTag(log.level), " log"),
    el("pre", { class: "logbody" }, String(log.body ?? "")),
    facts([
      ["time", fmtTime(log.time) + " UTC" + (isFinite(startUs) ? " (+" + fmtDuration((toUs(log.time) - startUs) * 1000) + ")" : "")],
      ["service", log.service],
      ["severity", log.severity_text],
      ["trace", log.trace_id ? el("a", { href: traceHref(log.trace_id) }, log.trace_id) : null],
      ["span id", log.span_id && log.trace_id ? el("a", { href: traceHref(log.trace_id, "span=" + enc(log.attached_span_id || log.span_id)) }, log.span_id) : log.span_id],
      ["origin", log.origin ? log.origin.source + ":" + log.origin.offset : null],
      ["problems", (log.problems || []).join(", ") || null],
    ]),
    attributes("Attributes", traceId, log.attributes, ""),
    attributes("Resource", traceId, log.resource, "resource."),
  );
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
      ? el("a", { href: relatedHref(traceId, prefix + key), title: "Every span and log sharing this value, around this trace" }, "widen")
      : null;
    return el("tr", {}, el("td", { class: "key" }, key),
      el("td", {}, text.includes("\n") ? el("pre", {}, text) : text), el("td", {}, widen));
  }))];
}

/** Event attributes (exception.stacktrace as a block); "search" finds the same value anywhere. */
function eventAttributes(object) {
  return table(["key", "value", ""], flatten(object).map(([key, value]) => {
    const text = fmtValue(value);
    const search = QUERY_NAME.test(key) && !text.includes("\n") && text.length < 300
      ? el("a", { href: searchHref({ q: "event." + key + " = " + literal(value), since: "24h" }) }, "search")
      : null;
    return el("tr", {}, el("td", { class: "key" }, key),
      el("td", {}, text.includes("\n") ? el("pre", { class: "stack" }, text) : text), el("td", {}, search));
  }));
}

// ---- widen (related) ---------------------------------------------------------------------

async function showRelated(gen, traceId, params) {
  const attribute = params.get("attribute") || "";
  const window = params.get("window") || "1h";
  document.title = "widen " + attribute + " \u00b7 threadline";
  setMain(el("p", { class: "muted" }, "Widening on " + attribute + "\u2026"));
  const r = await api("/api/v1/traces/" + enc(traceId) + "/related?" +
    new URLSearchParams({ attribute, window, limit: "50" }).toString());
  if (gen !== generation) return;
  const head = [
    el("h1", {}, "Widen on ", el("code", {}, attribute)),
    el("p", {}, "From trace ", el("a", { href: traceHref(r.trace_id) }, el("code", {}, r.trace_id)),
      ", values ", r.values.length ? r.values.map((v, i) => [i ? ", " : "", el("code", {}, fmtValue(v))]) : "(none)",
      ", within \u00b1", window, " of it: ", fmtTime(r.from), " \u2013 ", fmtTime(r.to), " UTC."),
    el("p", { class: "choices" }, "Window: ", WINDOWS.map((w) => w === window ? el("strong", {}, w + " ")
      : [el("a", { href: relatedHref(r.trace_id, attribute, w) }, w), " "])),
  ];
  if (!r.values.length) {
    setMain(head, el("p", { class: "muted" }, "This trace has no value for " + attribute + "."));
    return;
  }
  const countRows = (buckets, label, link) => {
    const max = Math.max(1, ...buckets.map((b) => b.count));
    return table([label, "count", ""], buckets.map((b) => {
      const bar = el("div", { class: "hbar" });
      bar.style.width = (100 * b.count) / max + "%";
      return el("tr", {}, el("td", {}, link(b[label])), el("td", { class: "num" }, String(b.count)), el("td", { class: "barcell" }, bar));
    }));
  };
  const buckets = timeBuckets(r);
  const maxTime = Math.max(1, ...buckets.map((b) => b.count));
  const histogram = el("div", { class: "histogram" }, buckets.map((b) => {
    const column = el("div", { title: fmtTime(b.time) + " UTC: " + b.count });
    column.style.height = (100 * b.count) / maxTime + "%";
    return column;
  }));
  setMain(head,
    el("p", { class: "summary" }, r.total + " matching spans and logs \u00b7 ",
      el("a", { href: searchHref({ q: r.query, from: r.from, to: r.to }) }, "open as a search"),
      " \u00b7 query ", el("code", {}, r.query)),
    el("div", { class: "grid" },
      el("section", {}, el("h2", {}, "By value"), countRows(r.by_value, "value", (v) => el("code", {}, v))),
      el("section", {}, el("h2", {}, "By service"), countRows(r.by_service, "service", (v) => serviceTag(v))),
      el("section", {}, el("h2", {}, "Sample traces"), el("ul", { class: "plain" }, r.sample_trace_ids.map((id) =>
        el("li", {}, el("a", { href: traceHref(id) }, el("code", {}, id)), id === r.trace_id ? " (this one)" : ""))))),
    el("h2", {}, "Over time (", fmtDuration(parseFloat(r.interval) * 1e6), " buckets)"),
    histogram,
    el("div", { class: "axis-labels muted" }, el("span", {}, fmtTime(r.from)), el("span", {}, fmtTime(r.to))),
    el("h2", {}, "Newest hits"),
    hitsTable(r.hits),
  );
}

/** Every bucket from `from` to `to`, empty ones included, so the histogram's x axis is time. */
function timeBuckets(r) {
  const step = parseFloat(r.interval); // "300000ms"
  const from = toUs(r.from) / 1000;
  const to = toUs(r.to) / 1000;
  if (!(step > 0) || !isFinite(from) || !isFinite(to) || (to - from) / step > 1000) return r.by_time;
  const counts = new Map(r.by_time.map((b) => [Math.round(toUs(b.time) / 1000), b.count]));
  const out = [];
  for (let t = Math.floor(from / step) * step; t < to; t += step) {
    out.push({ time: new Date(t).toISOString(), count: counts.get(t) || 0 });
  }
  return out;
}

// ---- search ------------------------------------------------------------------------------

async function showSearch(gen, params) {
  const q = params.get("q") || "";
  const since = params.get("since") || (params.has("from") || params.has("to") ? "" : "1h");
  document.getElementById("search-input").value = q;
  if (since) document.getElementById("search-since").value = since;
  document.title = (q || "search") + " \u00b7 threadline";
  // Absolute times, fixed at the first page, so "load more" pages through the same range.
  const now = Date.now();
  const from = since ? (SINCE[since] ? new Date(now - SINCE[since]).toISOString() : "") : params.get("from") || "";
  const to = since ? new Date(now + 60e3).toISOString() : params.get("to") || "";
  const query = { q, limit: String(PAGE) };
  if (from) query.from = from;
  if (to) query.to = to;
  setMain(el("p", { class: "muted" }, "Searching\u2026"));
  const page = await api("/api/v1/search?" + new URLSearchParams(query).toString());
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
      const next = await api("/api/v1/search?" + new URLSearchParams({ ...query, cursor }).toString());
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
  const permalink = { q };
  if (from) permalink.from = from;
  if (to) permalink.to = to;
  setMain(
    el("p", { class: "summary" }, page.total + " matches in " + page.took_ms + " ms \u00b7 ",
      from ? fmtTime(from) : "the beginning", " \u2013 ", to ? fmtTime(to) + " UTC" : "now", " \u00b7 ",
      el("a", { href: searchHref(permalink), title: "A link to this exact time range" }, "permalink")),
    page.hits.length ? hits : el("p", { class: "muted" }, "Nothing matches."),
    el("p", {}, more, " ", status),
  );
}

function hitsTable(hits) {
  return table(["time (UTC)", "kind", "service", "level / status", "body / name", "trace"], hits.map(hitRow));
}

/** 12 digits of a trace id; of a 64-bit id left-padded with zeros, its significant end. */
function shortId(id) {
  return id.startsWith("0000000000000000") ? "\u2026" + id.slice(-12) : id.slice(0, 12) + "\u2026";
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
    el("td", {}, hit.kind),
    el("td", {}, serviceTag(hit.service)),
    el("td", {}, isSpan ? el("span", { class: status === "ERROR" ? "err-text" : "" }, status || "") : levelTag(hit.level)),
    el("td", { class: "body" }, what),
    el("td", {}, hit.trace_id
      ? el("a", { href: traceHref(hit.trace_id, isSpan && hit.span_id ? "span=" + enc(hit.span_id) : ""), title: hit.trace_id }, el("code", {}, shortId(hit.trace_id)))
      : el("span", { class: "muted" }, "none")));
  clickable(row, (e) => {
    if (e.target.closest("a")) return;
    closePanel();
    row.classList.add("selected");
    if (isSpan) spanPanel(hit.trace_id, hit, null, toUs(hit.start));
    else logPanel(hit.trace_id, hit, NaN);
  });
  return row;
}

// ---- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("trace-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("trace-input").value.trim();
    if (id) location.hash = traceHref(id);
  });
  document.getElementById("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = document.getElementById("search-input").value.trim();
    const since = document.getElementById("search-since").value;
    const next = searchHref({ q, since });
    if (location.hash === next) render(); // same query again: refresh
    else location.hash = next;
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closePanel();
  });
  window.addEventListener("hashchange", render);
  render();
});
