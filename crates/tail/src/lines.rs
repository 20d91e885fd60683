//! Splitting a byte stream into complete lines: a partial last line waits for its newline,
//! over-long lines are cut and flagged, and NUL padding at a restart point is skipped.

use crate::Line;

/// Line state of one file. Holds at most `max_line_bytes` of the current line.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_line_bytes: usize,
    /// The start of the current line so far.
    buf: Vec<u8>,
    /// Offset of the current line's first byte.
    start: u64,
    /// Offset just past the last byte fed.
    end: u64,
    /// The current line passed `max_line_bytes`; its rest is being skipped.
    truncated: bool,
    /// Skip NUL bytes until the first other byte (after a restart at 0: a writer without
    /// `O_APPEND` leaves a hole of zeros where the truncated data was).
    skip_nul: bool,
}

impl LineSplitter {
    /// A splitter starting at `offset`; `skip_nul` at a restart point.
    pub fn new(max_line_bytes: usize, offset: u64, skip_nul: bool) -> LineSplitter {
        LineSplitter {
            max_line_bytes: max_line_bytes.max(1),
            buf: Vec::new(),
            start: offset,
            end: offset,
            truncated: false,
            skip_nul,
        }
    }

    /// Feeds the bytes that follow those fed before; pushes every line completed to `out`.
    /// Returns the offset just past the last newline, if a line was completed.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Line>) -> Option<u64> {
        let mut completed = None;
        if self.skip_nul {
            let n = data.iter().take_while(|&&b| b == 0).count();
            self.end += n as u64;
            self.start = self.end;
            data = &data[n..];
            if data.is_empty() {
                return None;
            }
            self.skip_nul = false;
        }
        while let Some(newline) = memchr::memchr(b'\n', data) {
            self.push(&data[..newline]);
            self.end += newline as u64 + 1;
            out.push(self.take_line());
            self.start = self.end;
            completed = Some(self.end);
            data = &data[newline + 1..];
        }
        self.push(data);
        self.end += data.len() as u64;
        completed
    }

    /// The partial last line, if any, as a line of its own (its file ended without a newline).
    pub fn flush(&mut self) -> Option<Line> {
        if self.end == self.start {
            return None;
        }
        let line = self.take_line();
        self.start = self.end;
        Some(line)
    }

    /// Offset just past the last byte fed.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Bytes held for the partial line.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes - self.buf.len();
        if bytes.len() > room {
            self.buf.extend_from_slice(&bytes[..room]);
            self.truncated = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    fn take_line(&mut self) -> Line {
        let mut bytes = std::mem::take(&mut self.buf);
        let truncated = std::mem::take(&mut self.truncated);
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line {
            offset: self.start,
            bytes,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<(u64, String, bool)> {
        lines
            .iter()
            .map(|l| {
                (
                    l.offset,
                    String::from_utf8_lossy(&l.bytes).into_owned(),
                    l.truncated,
                )
            })
            .collect()
    }

    #[test]
    fn partial_lines_wait_and_empty_lines_count() {
        let mut s = LineSplitter::new(100, 0, false);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"ab", &mut out), None);
        assert_eq!(s.feed(b"c\n\nd\r\ne", &mut out), Some(8));
        assert_eq!(
            texts(&out),
            [
                (0, "abc".into(), false),
                (4, "".into(), false),
                (5, "d".into(), false)
            ]
        );
        assert_eq!(s.end(), 9);
        assert_eq!(texts(&[s.flush().unwrap()]), [(8, "e".into(), false)]);
        assert_eq!(s.flush(), None);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let mut s = LineSplitter::new(4, 10, false);
        let mut out = Vec::new();
        s.feed(b"abcdef", &mut out);
        assert_eq!(s.buffered(), 4);
        s.feed(b"gh\nxy\n", &mut out);
        assert_eq!(
            texts(&out),
            [(10, "abcd".into(), true), (19, "xy".into(), false)]
        );
    }

    #[test]
    fn nul_padding_is_skipped_at_the_restart_point() {
        let mut s = LineSplitter::new(100, 0, true);
        let mut out = Vec::new();
        assert_eq!(s.feed(&[0, 0, 0], &mut out), None);
        assert_eq!(s.feed(b"\0\0ok\n", &mut out), Some(8));
        assert_eq!(texts(&out), [(5, "ok".into(), false)]);
    }
}
