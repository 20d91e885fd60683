//! The terminal waterfall for `threadline trace`: the span tree with bars to scale, and each log
//! line under the span that wrote it. Renders from the Trace JSON contract (DESIGN.md), so it
//! shows exactly what `--json` and the HTTP API return.

use std::collections::HashMap;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use crate::term::{Term, fit, wrap};

/// Columns of the bars and of the labels (indentation, service, span name) when the width is
/// not known (piped output) or is wide enough.
const BAR_WIDTH: usize = 40;
const LABEL_WIDTH: usize = 52;
/// Below this width, labels and bars shrink so a line fits.
const FULL_LAYOUT_WIDTH: usize = 140;

/// Renders a trace: ANSI styles when `term.color`, every line within `term.width` when known.
pub fn render(trace: &Value, term: Term) -> String {
    let paint = Painter { color: term.color };
    let spans: Vec<&Value> = trace["spans"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let logs: Vec<&Value> = trace["logs"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let summary = &trace["summary"];

    let start_ns = spans.iter().filter_map(|s| time_ns(&s["start"])).min();
    let end_ns = spans
        .iter()
        .filter_map(|s| Some(time_ns(&s["start"])? + s["duration_ns"].as_i64()?))
        .max();
    let (t0, total_ns) = match (start_ns, end_ns) {
        (Some(a), Some(b)) => (a, (b - a).max(1)),
        _ => (
            logs.iter()
                .filter_map(|l| time_ns(&l["time"]))
                .min()
                .unwrap_or(0),
            1,
        ),
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        paint.bold("trace"),
        trace["trace_id"].as_str().unwrap_or("?")
    );
    let services: Vec<&str> = summary["services"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let facts = format!(
        "{} · {} · {} · {} · services: {}",
        plural(
            summary["span_count"].as_u64().unwrap_or(spans.len() as u64),
            "span"
        ),
        plural(
            summary["log_count"].as_u64().unwrap_or(logs.len() as u64),
            "log"
        ),
        plural(summary["error_count"].as_u64().unwrap_or(0), "error"),
        format_duration(summary["duration_ns"].as_i64().unwrap_or(total_ns)),
        services.join(", ")
    );
    match term.width {
        Some(width) => {
            for line in wrap(&facts, width) {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
        None => {
            let _ = writeln!(out, "{facts}\n");
        }
    }

    // Children by parent; roots are spans whose parent is absent or not in this trace.
    let ids: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s["span_id"].as_str()?, i)))
        .collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span["parent_span_id"]
            .as_str()
            .filter(|p| ids.contains_key(p))
        {
            Some(parent) => children.entry(parent).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start =
        |list: &mut Vec<usize>| list.sort_by_key(|&i| time_ns(&spans[i]["start"]).unwrap_or(0));
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    let mut critical: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for segment in trace["analysis"]["critical_path"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(id), Some(start), Some(end)) = (
            segment["span_id"].as_str(),
            segment["start_ns"].as_i64(),
            segment["end_ns"].as_i64(),
        ) {
            critical.entry(id).or_default().push((start, end));
        }
    }
    let mut logs_by_span: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut trace_logs = Vec::new();
    for log in &logs {
        match log["span_id"].as_str().filter(|id| ids.contains_key(id)) {
            Some(id) => logs_by_span.entry(id).or_default().push(log),
            None => trace_logs.push(*log),
        }
    }

    let (label_width, bar_width) = match term.width {
        Some(width) if width < FULL_LAYOUT_WIDTH => {
            // Room is kept for the duration (10) and the start of an error mark (~20).
            let label = (width * 9 / 20).clamp(20, LABEL_WIDTH);
            let bar = width
                .saturating_sub(label + 1 + 10 + 20)
                .clamp(8, BAR_WIDTH);
            (label, bar)
        }
        _ => (LABEL_WIDTH, BAR_WIDTH),
    };
    let view = View {
        spans: &spans,
        label_width,
        bar_width,
        width: term.width,
        children: &children,
        logs_by_span: &logs_by_span,
        critical: (!critical.is_empty()).then_some(&critical),
        t0,
        total_ns,
        paint,
    };
    // Spans in a parent cycle are reachable from no root: they are drawn as roots after the
    // others, so every span shows exactly once.
    let mut drawn = vec![false; spans.len()];
    for (n, &root) in roots.iter().enumerate() {
        view.tree(&mut out, root, n + 1 == roots.len(), &mut drawn);
    }
    for i in 0..spans.len() {
        if !drawn[i] {
            view.tree(&mut out, i, true, &mut drawn);
        }
    }
    if !trace_logs.is_empty() {
        let _ = writeln!(out, "\n{}", paint.bold("logs not attached to a span"));
        for log in trace_logs {
            view.log_line(&mut out, log, "  ");
        }
    }
    if view.critical.is_some() {
        let legend = match term.width {
            Some(width) if width < 90 => "█ critical path (what the request waited for)  ░ off it",
            _ => {
                "█ on the critical path (what the request waited for)   ░ waiting on a child or off the path"
            }
        };
        let _ = writeln!(out, "\n{}", paint.dim(legend));
    }
    out.push_str(&render_findings(trace, term, false));
    out
}

/// The findings block: one line each (kind, span, message); with `evidence`, the evidence
/// under each as indented JSON.
pub fn render_findings(trace: &Value, term: Term, evidence: bool) -> String {
    let paint = Painter { color: term.color };
    let mut out = String::new();
    let findings = trace["analysis"]["findings"].as_array();
    let Some(findings) = findings.filter(|f| !f.is_empty()) else {
        if evidence {
            let _ = writeln!(
                out,
                "no findings for trace {}",
                trace["trace_id"].as_str().unwrap_or("?")
            );
        }
        return out;
    };
    let _ = writeln!(out, "\n{} ({})", paint.bold("findings"), findings.len());
    for f in findings {
        let kind = f["kind"].as_str().unwrap_or("?");
        let styled = match kind {
            "error_origin" => paint.style(AnsiColor::Red, kind),
            "slow_span" | "n_plus_one" | "sequential_siblings" => {
                paint.style(AnsiColor::Yellow, kind)
            }
            _ => paint.style(AnsiColor::Magenta, kind),
        };
        let message: String = f["message"]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        // The kind's column is 2 + 20 + 1 wide; the message wraps beside it.
        let lines = match term.width {
            Some(width) => wrap(&message, width.saturating_sub(23)),
            None => vec![message],
        };
        for (n, line) in lines.iter().enumerate() {
            if n == 0 {
                let pad = " ".repeat(20usize.saturating_sub(kind.chars().count()));
                let _ = writeln!(out, "  {styled}{pad} {line}");
            } else {
                let _ = writeln!(out, "  {:<20} {line}", "");
            }
        }
        let span = f["span_id"].as_str().map(|s| format!("span {s}"));
        let linked = f["linked_trace_id"]
            .as_str()
            .map(|t| format!("continues in trace {t}"));
        let refs: Vec<String> = span.into_iter().chain(linked).collect();
        let joined = refs.join(" · ");
        let fits = term.width.is_none_or(|w| joined.chars().count() + 23 <= w);
        if !refs.is_empty() && fits {
            let _ = writeln!(out, "  {:<20} {}", "", paint.dim(&joined));
        } else {
            // Too wide for one line: one reference a line.
            for r in &refs {
                let _ = writeln!(out, "  {:<20} {}", "", paint.dim(r));
            }
        }
        if evidence {
            let text = serde_json::to_string_pretty(&f["evidence"]).unwrap_or_default();
            for line in text.lines() {
                let line: String = line.chars().filter(|c| !c.is_control()).collect();
                let line = match term.width {
                    Some(width) => fit(&line, width.saturating_sub(6)),
                    None => line,
                };
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    out
}

struct View<'a> {
    spans: &'a [&'a Value],
    label_width: usize,
    bar_width: usize,
    /// Lines are cut to this many characters when known.
    width: Option<usize>,
    children: &'a HashMap<&'a str, Vec<usize>>,
    logs_by_span: &'a HashMap<&'a str, Vec<&'a Value>>,
    /// Critical-path segments by span id, when the trace has an analysis.
    critical: Option<&'a HashMap<&'a str, Vec<(i64, i64)>>>,
    t0: i64,
    total_ns: i64,
    paint: Painter,
}

/// Indentation stops growing past this many characters: the label is cut at [`LABEL_WIDTH`]
/// anyway, and a chain 100,000 spans deep must not cost 100,000 columns a line.
const MAX_PREFIX_CHARS: usize = 30;

impl View<'_> {
    /// Draws the subtree under `root` depth-first with an explicit stack (a span tree is
    /// whatever a client sent), each span at most once.
    fn tree(&self, out: &mut String, root: usize, last: bool, drawn: &mut [bool]) {
        let mut stack = vec![(root, String::new(), last, true)];
        while let Some((i, prefix, last, is_root)) = stack.pop() {
            if std::mem::replace(&mut drawn[i], true) {
                continue;
            }
            let child_prefix = self.span(out, i, &prefix, last, is_root);
            let id = self.spans[i]["span_id"].as_str().unwrap_or("");
            let kids: Vec<usize> = self
                .children
                .get(id)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .copied()
                .filter(|&c| !drawn[c])
                .collect();
            for (n, &child) in kids.iter().enumerate().rev() {
                stack.push((child, child_prefix.clone(), n + 1 == kids.len(), false));
            }
        }
    }

    /// One span's line and its logs; returns the prefix for its children.
    fn span(&self, out: &mut String, i: usize, prefix: &str, last: bool, root: bool) -> String {
        let span = self.spans[i];
        let branch = if root {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let service = span["service"].as_str().unwrap_or("?");
        let name = span["name"].as_str().unwrap_or("?");
        let is_error = span["status"]["code"].as_str() == Some("ERROR");
        let label_width = self.label_width;
        let label = fit(&format!("{prefix}{branch}{service}  {name}"), label_width);
        let start = time_ns(&span["start"]).unwrap_or(self.t0);
        let duration = span["duration_ns"].as_i64().unwrap_or(0);
        let id = span["span_id"].as_str().unwrap_or("");
        let bar = self.bar(start - self.t0, duration, id);
        let mark = if is_error {
            let message: String = span["status"]["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            let mark = format!(" ✗ ERROR {message}");
            let mark = match self.width {
                Some(width) => fit(
                    &mark,
                    width.saturating_sub(label_width + self.bar_width + 11),
                ),
                None => mark,
            };
            self.paint.style(AnsiColor::Red, &mark)
        } else {
            String::new()
        };
        let bar = if is_error {
            self.paint.style(AnsiColor::Red, &bar)
        } else {
            self.paint.style(AnsiColor::Cyan, &bar)
        };
        let _ = writeln!(
            out,
            "{label:<label_width$} {bar} {:>9}{mark}",
            format_duration(duration)
        );
        let child_prefix = if root || prefix.chars().count() >= MAX_PREFIX_CHARS {
            prefix.to_owned()
        } else {
            format!("{prefix}{}", if last { "   " } else { "│  " })
        };
        for log in self.logs_by_span.get(id).into_iter().flatten() {
            self.log_line(out, log, &format!("{child_prefix}  ┆ "));
        }
        child_prefix
    }

    fn log_line(&self, out: &mut String, log: &Value, prefix: &str) {
        let level = log["level"].as_str().unwrap_or("-");
        // Relative to the trace's start; a log written before its first span shows as -1.2s.
        let offset = time_ns(&log["time"]).map(|t| {
            let sign = if t >= self.t0 { "+" } else { "" };
            format!("{sign}{}", format_duration(t - self.t0))
        });
        let body: String = log["body"]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(160)
            .collect();
        let level_text = format!("{level:<5}");
        let level_text = match level {
            "error" | "fatal" => self.paint.style(AnsiColor::Red, &level_text),
            "warn" => self.paint.style(AnsiColor::Yellow, &level_text),
            _ => self.paint.dim(&level_text),
        };
        let service = log["service"].as_str().unwrap_or("?");
        let body = match self.width {
            // prefix, offset (9), level (5), "service: ", with their spaces.
            Some(width) => {
                let used = prefix.chars().count() + 9 + 1 + 5 + 1 + service.chars().count() + 2;
                fit(&body, width.saturating_sub(used).max(8))
            }
            None => body,
        };
        let _ = writeln!(
            out,
            "{prefix}{} {level_text} {service}: {body}",
            self.paint
                .dim(&format!("{:>9}", offset.unwrap_or_default())),
        );
    }

    /// The span's bar; with an analysis, cells on its critical segments are solid and the
    /// rest shaded.
    fn bar(&self, offset_ns: i64, duration_ns: i64, span_id: &str) -> String {
        let bar_width = self.bar_width;
        let scale = |ns: i64| (ns.max(0) as f64 / self.total_ns as f64 * bar_width as f64) as usize;
        let begin = scale(offset_ns).min(bar_width - 1);
        let len = scale(duration_ns).max(1).min(bar_width - begin);
        let segments = self
            .critical
            .map(|c| c.get(span_id).map(Vec::as_slice).unwrap_or(&[]));
        let body: String = (begin..begin + len)
            .map(|cell| match segments {
                None => '█',
                Some(segments) => {
                    // The time span of this cell.
                    let from =
                        self.t0 + (cell as f64 * self.total_ns as f64 / bar_width as f64) as i64;
                    let to = self.t0
                        + ((cell + 1) as f64 * self.total_ns as f64 / bar_width as f64) as i64;
                    if segments.iter().any(|&(s, e)| s < to && e > from) {
                        '█'
                    } else {
                        '░'
                    }
                }
            })
            .collect();
        format!(
            "{}{body}{}",
            " ".repeat(begin),
            " ".repeat(bar_width - begin - len)
        )
    }
}

#[derive(Clone, Copy)]
struct Painter {
    color: bool,
}

impl Painter {
    fn style(self, color: AnsiColor, text: &str) -> String {
        self.apply(Style::new().fg_color(Some(color.into())), text)
    }

    fn bold(self, text: &str) -> String {
        self.apply(Style::new().bold(), text)
    }

    fn dim(self, text: &str) -> String {
        self.apply(Style::new().dimmed(), text)
    }

    fn apply(self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
}

/// `1.2s`, `430ms`, `12.5µs`, `800ns`.
pub fn format_duration(ns: i64) -> String {
    let abs = ns.unsigned_abs() as f64;
    let sign = if ns < 0 { "-" } else { "" };
    if abs >= 1e9 {
        format!("{sign}{:.2}s", abs / 1e9)
    } else if abs >= 1e6 {
        format!("{sign}{:.1}ms", abs / 1e6)
    } else if abs >= 1e3 {
        format!("{sign}{:.1}µs", abs / 1e3)
    } else {
        format!("{sign}{abs}ns")
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn time_ns(v: &Value) -> Option<i64> {
    decode::time::parse_datetime(v.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use index::testing::{chain, graph_trace as random_trace, parent_graphs as graphs};

    #[test]
    fn critical_segments_are_solid_and_findings_are_listed() {
        // Root 0..1s waits on its child 0.5..1s: the root's bar is solid in its first half only.
        let t0 = 1_795_183_800_000_000_000i64;
        let trace = json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spans": [
                {"span_id": "a000000000000001", "parent_span_id": null, "service": "gw", "name": "POST /checkout",
                 "start": "2026-11-20T14:10:00Z", "duration_ns": 1_000_000_000i64, "status": {"code": "UNSET"}},
                {"span_id": "a000000000000002", "parent_span_id": "a000000000000001", "service": "pay", "name": "charge",
                 "start": "2026-11-20T14:10:00.500Z", "duration_ns": 500_000_000i64, "status": {"code": "UNSET"}}
            ],
            "logs": [],
            "summary": {"span_count": 2, "log_count": 0, "error_count": 0, "services": ["gw", "pay"], "duration_ns": 1_000_000_000i64},
            "analysis": {
                "critical_path": [
                    {"span_id": "a000000000000001", "start_ns": t0, "end_ns": t0 + 500_000_000},
                    {"span_id": "a000000000000002", "start_ns": t0 + 500_000_000, "end_ns": t0 + 1_000_000_000i64}
                ],
                "findings": [{"kind": "slow_span", "span_id": "a000000000000002", "message": "pay \"charge\" took 500.0 ms\u{1b}[2J",
                              "evidence": {"duration_ns": 500_000_000}, "linked_trace_id": "5b8efff798038103d269b633813fc60c"}]
            }
        });
        let text = render(&trace, Term::default());
        let root = text.lines().find(|l| l.contains("POST /checkout")).unwrap();
        assert!(
            root.contains(&format!("{}{}", "█".repeat(20), "░".repeat(20))),
            "{root}"
        );
        let child = text
            .lines()
            .find(|l| l.contains("charge") && l.contains('█'))
            .unwrap();
        assert!(
            child.contains(&"█".repeat(20)) && !child.contains('░'),
            "{child}"
        );
        assert!(text.contains("findings (1)"));
        assert!(
            text.contains("slow_span")
                && text.contains("continues in trace 5b8efff798038103d269b633813fc60c")
        );
        assert!(
            !text.contains('\u{1b}'),
            "control characters of a message are not printed"
        );
        // explain: the evidence too.
        let explained = render_findings(&trace, Term::default(), true);
        assert!(
            explained.contains("\"duration_ns\": 500000000"),
            "{explained}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_parent_graph_renders_every_span_once(graph in graphs()) {
            let trace = random_trace(&graph).to_json();
            let n = trace["spans"].as_array().unwrap().len();
            let text = render(&trace, Term::default());
            let drawn = text.lines().filter(|l| l.contains("  op ")).count();
            proptest::prop_assert_eq!(drawn, n);
        }
    }

    #[test]
    fn a_chain_100_000_spans_deep_renders_on_a_small_stack() {
        let trace = random_trace(&chain(100_000)).to_json();
        let text = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || render(&trace, Term::default()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            text.lines().filter(|l| l.contains("  op ")).count(),
            100_000
        );
        // Indentation stops growing: no line is wider than the label, bar and duration.
        assert!(text.lines().all(|l| l.chars().count() < 200));
    }

    #[test]
    fn renders_tree_bars_and_logs_without_color() {
        let trace = json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spans": [
                {"span_id": "a000000000000001", "parent_span_id": null, "service": "api-gateway", "name": "POST /checkout",
                 "start": "2026-11-20T14:10:00Z", "duration_ns": 1_000_000_000i64, "status": {"code": "UNSET", "message": ""}},
                {"span_id": "a000000000000002", "parent_span_id": "a000000000000001", "service": "payment-service", "name": "charge",
                 "start": "2026-11-20T14:10:00.500Z", "duration_ns": 500_000_000i64, "status": {"code": "ERROR", "message": "declined"}}
            ],
            "logs": [
                {"time": "2026-11-20T14:10:00.600Z", "service": "payment-service", "level": "error", "body": "card declined\u{1b}[2J", "span_id": "a000000000000002"},
                {"time": "2026-11-20T14:10:00.700Z", "service": "edge", "level": "info", "body": "unattached", "span_id": null}
            ],
            "summary": {"span_count": 2, "log_count": 2, "error_count": 1, "services": ["api-gateway", "payment-service"], "duration_ns": 1_000_000_000i64}
        });
        let text = render(&trace, Term::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(lines[1].starts_with("2 spans · 2 logs · 1 error · 1.00s"));
        let root = lines.iter().find(|l| l.contains("POST /checkout")).unwrap();
        assert!(root.contains(&"█".repeat(BAR_WIDTH)));
        let child = lines
            .iter()
            .find(|l| l.contains("└─ payment-service  charge"))
            .unwrap();
        assert!(child.contains(&format!("{}{}", " ".repeat(20), "█".repeat(20))));
        assert!(child.contains("✗ ERROR declined"));
        // The log sits under its span, and control characters from the body are not printed.
        let log = lines
            .iter()
            .position(|l| l.contains("card declined"))
            .unwrap();
        assert!(log > lines.iter().position(|l| l.contains("charge")).unwrap());
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("logs not attached to a span"));
        assert!(format_duration(430_000_000) == "430.0ms");
    }
}
