//! The terminal that standard output goes to: whether to color (never when piped, never with
//! `NO_COLOR` set to anything but empty, as no-color.org says) and how wide it is (the
//! terminal's width, or `COLUMNS`; unknown when piped, and then nothing is cut).

use std::io::IsTerminal as _;

/// How to write for standard output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Term {
    pub color: bool,
    /// Columns to fit; `None`: write full lines.
    pub width: Option<usize>,
}

impl Term {
    pub fn stdout() -> Term {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0);
        let width = columns.or_else(|| {
            tty.then(|| terminal_size::terminal_size_of(std::io::stdout()))
                .flatten()
                .map(|(w, _)| usize::from(w.0))
        });
        Term {
            color: tty && !no_color,
            width,
        }
    }
}

/// `s` cut to `width` characters, the last one `…` when something was cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        t.push('…');
    }
    t
}

/// Words of `text` in lines of at most `width` characters (a longer word gets a line of its
/// own and is cut), so a paragraph reads at any width.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let (n_line, n_word) = (line.chars().count(), word.chars().count());
        if n_line > 0 && n_line + 1 + n_word > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&fit(word, width));
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_wrap_keep_to_the_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        let lines = wrap("the failure starts at payment-service stripe_api_call", 20);
        assert_eq!(
            lines,
            [
                "the failure starts",
                "at payment-service",
                "stripe_api_call"
            ]
        );
        assert!(
            wrap(&"x".repeat(50), 10)
                .iter()
                .all(|l| l.chars().count() <= 10)
        );
        assert_eq!(wrap("", 10), [""]);
    }
}
