//! `threadline compare`: what is different about a selection — the ranked table with bars (80
//! columns, colour unless NO_COLOR or not a terminal), or the Compare JSON.

use std::path::Path;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use anyhow::Context as _;
use index::{CompareRequest, CompareResponse, CompareUnit};

use crate::{CompareArgs, commands, timespec};

/// Width of the table.
const WIDTH: usize = 80;
/// Width of the `field = value` column.
const PAIR_WIDTH: usize = 38;

pub fn command(index_dir: &Path, args: CompareArgs) -> anyhow::Result<ExitCode> {
    let index = commands::open_existing(index_dir)?;
    let now_ns = timespec::now_ns();
    let range = args.range.resolve(now_ns)?;
    let count: index::CountMode = args.count.parse().context("--count")?;
    let response = index.compare(&CompareRequest {
        query: &args.query,
        baseline: args.baseline.as_deref(),
        from_ns: range.from_ns,
        to_ns: range.to_ns,
        limit: args.limit,
        count: CompareUnit::from_count(count),
        now_ns: Some(now_ns),
    })?;
    if args.json {
        commands::print_json(&response.to_json());
    } else {
        let color = crate::term::Term::stdout().color;
        let unit = match count {
            index::CountMode::Traces => "traces",
            index::CountMode::Records => "records",
        };
        print!("{}", render(&response, unit, color));
    }
    Ok(commands::found(!response.results.is_empty()))
}

/// The table: a header naming both sides, then one line per result, best first.
pub fn render(response: &CompareResponse, unit: &str, color: bool) -> String {
    let count_of = |s: &index::SideTotals| match unit {
        "traces" => s.traces,
        _ => s.records,
    };
    let sampled = |s: &index::SideTotals| {
        if s.sample_rate < 1.0 {
            format!(" (sampled {:.1}%)", s.sample_rate * 100.0)
        } else {
            String::new()
        }
    };
    let mut out = format!(
        "selection: {} {unit}{}   baseline: {} {unit}{}\n",
        count_of(&response.selection),
        sampled(&response.selection),
        count_of(&response.baseline),
        sampled(&response.baseline),
    );
    if response.results.is_empty() {
        out.push_str("nothing is over-represented in the selection\n");
        return out;
    }
    // pair(38) sel(6) base(6) score(6) + 4 spaces + bar.
    let bar_width = WIDTH - PAIR_WIDTH - 6 - 6 - 6 - 4;
    out.push_str(&format!(
        "{:<PAIR_WIDTH$} {:>6} {:>6} {:>6}\n",
        "field = value", "sel", "base", "score"
    ));
    let max = response
        .results
        .iter()
        .map(|r| r.score)
        .fold(0.0_f64, f64::max);
    for r in &response.results {
        let pair = fit(&format!("{} = {}", r.field, r.value), PAIR_WIDTH);
        let cells = (r.score / max * bar_width as f64).round().max(1.0) as usize;
        let bar = "█".repeat(cells.min(bar_width));
        let bar = if color {
            let style = Style::new().fg_color(Some(AnsiColor::Green.into()));
            format!("{style}{bar}{style:#}")
        } else {
            bar
        };
        out.push_str(&format!(
            "{pair:<PAIR_WIDTH$} {:>6} {:>6} {:>6.2} {bar}\n",
            percent(r.selection_share),
            percent(r.baseline_share),
            r.score,
        ));
    }
    out
}

/// A share as `62%` (`<1%` for a small non-zero one).
fn percent(share: f64) -> String {
    if share > 0.0 && share < 0.005 {
        "<1%".into()
    } else {
        format!("{:.0}%", share * 100.0)
    }
}

/// At most `width` characters, control characters dropped, an ellipsis where cut.
fn fit(text: &str, width: usize) -> String {
    let clean: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
    if clean.len() <= width {
        return clean.into_iter().collect();
    }
    let mut cut: String = clean[..width - 1].iter().collect();
    cut.push('…');
    cut
}
