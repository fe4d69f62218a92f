//! Checking a whole VCF before it is queued: what an asynchronous run would refuse is refused
//! when it is submitted, with the same message and line as the synchronous path.

use std::io::BufRead;

use super::ingest::DeclaredInfo;
use super::io::{lacks_bgzf_eof, open_input, Input};
use super::range::{Range, Seekable};
use super::{read_header_lines, read_line, record_columns, truncated_bgzf, Limits};
use crate::error::Result;

/// The input's lines, with their positions when it can be sought in.
enum Lines {
    Seekable(Seekable),
    Other(Box<dyn BufRead + Send>),
}

impl Lines {
    fn reader(&mut self) -> &mut dyn BufRead {
        match self {
            Lines::Seekable(s) => s,
            Lines::Other(r) => r,
        }
    }

    fn position(&self) -> Option<u64> {
        match self {
            Lines::Seekable(s) => Some(s.position()),
            Lines::Other(_) => None,
        }
    }
}

/// What a check found: the records, and where to cut the input for workers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    pub records: u64,
    /// Ranges of about `chunk_records` records each, in order and covering every record;
    /// empty when the input has at most one chunk or cannot be sought in (gzip, stdin).
    pub ranges: Vec<Range>,
}

/// Reads all of `input` (decompressing it) and checks its header and the structure of every
/// data line as the annotator does, without reference sequences; with `annotated`, also that
/// the header declares the VRS fields ingestion needs. With `chunk_records`, also cuts the
/// input into ranges of that many records. One line is held in memory at a time.
pub fn check_vcf(
    input: &Input,
    threads: usize,
    annotated: bool,
    chunk_records: u64,
    limits: &Limits,
) -> Result<Checked> {
    let seekable = match input {
        Input::Path(path) if chunk_records > 0 => Seekable::open(path, threads)?,
        _ => None,
    };
    let (mut lines, truncated) = match (seekable, input) {
        (Some(s), Input::Path(path)) => {
            let truncated = matches!(s, Seekable::Bgzf(_)) && lacks_bgzf_eof(path);
            (Lines::Seekable(s), truncated)
        }
        _ => {
            let opened = open_input(input, threads)?;
            (Lines::Other(opened.reader), opened.truncated_bgzf)
        }
    };
    let mut declared = DeclaredInfo::default();
    let (_, mut line_no) = read_header_lines(lines.reader(), limits, |line| declared.see(line))?;
    if annotated {
        declared.require_vrs_annotations()?;
    }
    let mut checked = Checked::default();
    let mut in_range = 0u64;
    let mut line = Vec::new();
    loop {
        let at = lines.position();
        line.clear();
        if read_line(lines.reader(), &mut line, line_no + 1, limits)? == 0 {
            break;
        }
        line_no += 1;
        let text = match line.as_slice() {
            [l @ .., b'\r', b'\n'] | [l @ .., b'\n'] => l,
            l => l,
        };
        if record_columns(text, line_no)?.is_none() {
            continue;
        }
        if let Some(offset) = at {
            if checked.ranges.is_empty() || in_range == chunk_records {
                checked.ranges.push(Range {
                    offset,
                    first_line: line_no,
                    lines: None,
                    header: checked.ranges.is_empty(),
                });
                in_range = 0;
            }
            in_range += 1;
        }
        checked.records += 1;
    }
    if truncated {
        return Err(truncated_bgzf(line_no + 1));
    }
    if checked.ranges.len() < 2 {
        checked.ranges.clear();
    }
    let starts: Vec<u64> = checked.ranges.iter().map(|r| r.first_line).collect();
    for (range, next) in checked.ranges.iter_mut().zip(starts.iter().skip(1)) {
        range.lines = Some(next - range.first_line);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn check(text: &str) -> Result<u64> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        check_vcf(
            &Input::Path(file.path().to_path_buf()),
            1,
            false,
            0,
            &Limits::default(),
        )
        .map(|c| c.records)
    }

    const HEADER: &str = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    const RECORD: &str = "chr1\t11\t.\tA\tG\t.\tPASS\t.\n";

    #[test]
    fn counts_records_and_skips_blank_lines() {
        let text = format!("{HEADER}{RECORD}\n{RECORD}{}", RECORD.trim_end());
        assert_eq!(check(&text).unwrap(), 3);
        assert_eq!(check(HEADER).unwrap(), 0);
    }

    #[test]
    fn refuses_what_the_annotator_refuses_on_the_same_line() {
        let cases = [
            (format!("{HEADER}{RECORD}chr1\t12\t.\tA\n"), 4, "found 4"),
            (
                format!("{HEADER}{}", RECORD.replace("\t11\t", "\tx\t")),
                3,
                "POS \"x\"",
            ),
            (format!("{HEADER}{RECORD}##late\n"), 4, "header line after"),
            ("##fileformat=VCFv4.2\n".to_string(), 2, "no #CHROM line"),
            ("hello\n".to_string(), 1, "not a VCF"),
            (
                "\u{feff}##fileformat=VCFv4.2\n".to_string(),
                1,
                "byte order mark (bytes EF BB BF)",
            ),
        ];
        for (text, line, message) in cases {
            match check(&text) {
                Err(Error::InvalidVcf {
                    line: l,
                    message: m,
                }) => {
                    assert_eq!(l, line, "{m}");
                    assert!(m.contains(message), "{m}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn annotated_input_must_declare_the_vrs_fields() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, format!("{HEADER}{RECORD}").as_bytes()).unwrap();
        let input = Input::Path(file.path().to_path_buf());
        assert!(matches!(
            check_vcf(&input, 1, true, 0, &Limits::default()),
            Err(Error::MissingVrsAnnotations)
        ));
        assert_eq!(
            check_vcf(&input, 1, false, 0, &Limits::default())
                .unwrap()
                .records,
            1
        );
    }
}
