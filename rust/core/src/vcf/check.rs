//! Checking a whole VCF before it is queued: what an asynchronous run would refuse is refused
//! when it is submitted, with the same message and line as the synchronous path.

use super::ingest::DeclaredInfo;
use super::io::{open_input, Input};
use super::{read_header_lines, read_line, record_columns, truncated_bgzf};
use crate::error::Result;

/// Reads all of `input` (decompressing it) and checks its header and the structure of every
/// data line as the annotator does, without reference sequences; with `annotated`, also that
/// the header declares the VRS fields ingestion needs. Returns the number of records. One line
/// is held in memory at a time.
pub fn check_vcf(input: &Input, threads: usize, annotated: bool) -> Result<u64> {
    let opened = open_input(input, threads)?;
    let mut reader = opened.reader;
    let mut declared = DeclaredInfo::default();
    let (_, mut line_no) = read_header_lines(&mut *reader, |line| declared.see(line))?;
    if annotated {
        declared.require_vrs_annotations()?;
    }
    let mut records = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut *reader, &mut line, line_no + 1)? == 0 {
            break;
        }
        line_no += 1;
        let text = match line.as_slice() {
            [l @ .., b'\r', b'\n'] | [l @ .., b'\n'] => l,
            l => l,
        };
        if record_columns(text, line_no)?.is_some() {
            records += 1;
        }
    }
    if opened.truncated_bgzf {
        return Err(truncated_bgzf(line_no + 1));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn check(text: &str) -> Result<u64> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        check_vcf(&Input::Path(file.path().to_path_buf()), 1, false)
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
            check_vcf(&input, 1, true),
            Err(Error::MissingVrsAnnotations)
        ));
        assert_eq!(check_vcf(&input, 1, false).unwrap(), 1);
    }
}
