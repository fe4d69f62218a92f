//! Bounds on what one upload may make us hold in memory: the longest line and the whole
//! header. A line is read only up to the bound, so a hostile input (a gzip "bomb" whose one
//! line decompresses to gigabytes) costs at most that much memory and ends as bad input.

use std::io::{self, BufRead};

/// Default bound on one line (a VCF line of 64 MiB is already extraordinary).
pub const DEFAULT_MAX_LINE_BYTES: u64 = 64 << 20;
/// Default bound on the header, all its lines together.
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 64 << 20;

/// The bounds of one run's reads (the settings `ANYVAR_MAX_LINE_BYTES` and
/// `ANYVAR_MAX_HEADER_BYTES`): values in its options, so runs in one process may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_line_bytes: u64,
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// Appends one line (with its `\n`, if any) to `buf`, like `read_until`, but stops as soon as
/// the line passes `max_line_bytes`: then `Ok(None)`, with what was read of it left in `buf`.
/// `Ok(Some(0))` at the end of the input.
pub(crate) fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max_line_bytes: u64,
) -> io::Result<Option<usize>> {
    read_line_capped(
        reader,
        buf,
        usize::try_from(max_line_bytes.max(1)).unwrap_or(usize::MAX),
    )
}

fn read_line_capped(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<usize>> {
    let start = buf.len();
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(Some(buf.len() - start));
        }
        let (complete, used) = match memchr::memchr(b'\n', available) {
            Some(i) => (true, i + 1),
            None => (false, available.len()),
        };
        if buf.len() - start + used > max {
            return Ok(None);
        }
        let needed = buf.len() + used;
        if needed > buf.capacity() {
            // Grown by doubling, as a Vec grows, but never past the bound: a line near it
            // must not cost twice the bound.
            let target = (buf.capacity() * 2).max(needed).min(start + max);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&available[..used]);
        reader.consume(used);
        if complete {
            return Ok(Some(buf.len() - start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounded lines are read as read_until reads them; a longer one stops at the bound.
    #[test]
    fn lines_are_read_up_to_the_bound() {
        let text = b"ab\ncdef\n\nxyz";
        let mut reader: &[u8] = text;
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            match read_line_bounded(&mut reader, &mut buf, 1 << 20).unwrap() {
                Some(0) => break,
                Some(n) => {
                    assert_eq!(n, buf.len());
                    lines.push(String::from_utf8(buf).unwrap());
                }
                None => panic!("no line here is too long"),
            }
        }
        assert_eq!(lines, ["ab\n", "cdef\n", "\n", "xyz"]);

        let mut reader: &[u8] = b"ab\ncdef\n";
        let mut buf = Vec::new();
        assert_eq!(read_line_capped(&mut reader, &mut buf, 4).unwrap(), Some(3));
        assert_eq!(read_line_capped(&mut reader, &mut buf, 4).unwrap(), None);
        assert_eq!(buf, b"ab\n", "nothing of the long line is kept");
    }
}
