//! One VCF data line: split the columns and rewrite INFO with the VRS alleles the allele engine
//! ([`crate::alleles`]) computed for REF and each ALT (spec 3.2–3.5). Everything but INFO is
//! copied byte for byte.

use memchr::memchr_iter;

use crate::error::Error;
use crate::vcf::MissingString;
use crate::vrs::model::Allele;

/// INFO keys this annotator owns: old values are dropped when a file is annotated again.
pub const VRS_KEYS: [&str; 7] = [
    "VRS_Allele_IDs",
    "VRS_Error",
    "VRS_Starts",
    "VRS_Ends",
    "VRS_States",
    "VRS_Lengths",
    "VRS_RepeatSubunitLengths",
];

/// `%`, `;`, `,`, CR and LF percent-escaped, as vrs-python writes `VRS_Error`.
pub fn escape_error(message: &str, out: &mut Vec<u8>) {
    for b in message.bytes() {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b';' => out.extend_from_slice(b"%3B"),
            b',' => out.extend_from_slice(b"%2C"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
}

/// Appends the VRS INFO entries for `entries` (without a leading `;`).
pub fn write_vrs_info(
    entries: &[Option<Allele>],
    attributes: bool,
    missing_string: MissingString,
    out: &mut Vec<u8>,
) {
    let missing_str: &[u8] = match missing_string {
        MissingString::Dot => b".",
        MissingString::Empty => b"",
    };
    fn list(
        out: &mut Vec<u8>,
        key: &str,
        missing: &[u8],
        entries: &[Option<Allele>],
        f: impl Fn(&Allele, &mut Vec<u8>) -> bool,
    ) {
        out.push(b';');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        let value = out.len();
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let written = match e {
                Some(a) => f(a, out),
                None => false,
            };
            if !written {
                out.extend_from_slice(missing);
            }
        }
        if out.len() == value {
            // One empty entry: htslib (under vrs-python 2.2) writes the bare key.
            out.pop();
        }
    }
    let mark = out.len();
    list(out, "VRS_Allele_IDs", missing_str, entries, |a, out| {
        out.extend_from_slice(b"ga4gh:VA.");
        out.extend_from_slice(&a.digest.0);
        true
    });
    // `list` always starts with `;`; the first key must not.
    out.remove(mark);
    if !attributes {
        return;
    }
    let int =
        |out: &mut Vec<u8>, n: u64| out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    list(out, "VRS_Starts", b".", entries, |a, out| {
        int(out, a.start);
        true
    });
    list(out, "VRS_Ends", b".", entries, |a, out| {
        int(out, a.end);
        true
    });
    list(out, "VRS_States", missing_str, entries, |a, out| {
        match a.state.written_sequence() {
            Some(s) => {
                out.extend_from_slice(s);
                true
            }
            None => false,
        }
    });
    list(out, "VRS_Lengths", b".", entries, |a, out| match a.state {
        crate::vrs::model::State::ReferenceLength { length, .. } => {
            int(out, length);
            true
        }
        _ => false,
    });
    list(
        out,
        "VRS_RepeatSubunitLengths",
        b".",
        entries,
        |a, out| match a.state {
            crate::vrs::model::State::ReferenceLength {
                repeat_subunit_length,
                ..
            } => {
                int(out, repeat_subunit_length);
                true
            }
            _ => false,
        },
    );
}

/// Copies INFO without any VRS entries; returns false when nothing is left (`.` or empty).
pub fn write_info_without_vrs(info: &[u8], out: &mut Vec<u8>) -> bool {
    if info == b"." || info.is_empty() {
        return false;
    }
    let is_vrs = |entry: &[u8]| {
        let key = entry.split(|b| *b == b'=').next().unwrap_or(entry);
        VRS_KEYS.iter().any(|k| k.as_bytes() == key)
    };
    if !info.split(|b| *b == b';').any(is_vrs) {
        out.extend_from_slice(info);
        return true;
    }
    let mut wrote = false;
    for entry in info.split(|b| *b == b';').filter(|e| !is_vrs(e)) {
        if wrote {
            out.push(b';');
        }
        out.extend_from_slice(entry);
        wrote = true;
    }
    wrote
}

/// Column boundaries of a data line: the first eight columns and where the rest begins.
pub struct Columns {
    /// Start and end of columns 1–8.
    pub bounds: [(usize, usize); 8],
}

impl Columns {
    /// Splits `line`; `None` with the number of columns found when there are fewer than eight.
    pub fn split(line: &[u8]) -> std::result::Result<Columns, usize> {
        let mut bounds = [(0usize, 0usize); 8];
        let mut start = 0;
        let mut n = 0;
        for tab in memchr_iter(b'\t', line) {
            bounds[n] = (start, tab);
            n += 1;
            start = tab + 1;
            if n == 7 {
                break;
            }
        }
        if n < 7 {
            return Err(n + 1);
        }
        let end = memchr::memchr(b'\t', &line[start..]).map_or(line.len(), |i| start + i);
        bounds[7] = (start, end);
        Ok(Columns { bounds })
    }

    pub fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        &line[self.bounds[i].0..self.bounds[i].1]
    }
}

/// Errors that stop the whole run because the input is not a VCF.
pub fn invalid(line: u64, message: impl Into<String>) -> Error {
    Error::InvalidVcf {
        line,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrs::digest::Digest;

    #[test]
    fn missing_strings_are_dots_or_empty_and_numbers_always_dots() {
        let deletion = Allele {
            digest: Digest([b'd'; 32]),
            location_digest: Digest([b'l'; 32]),
            accession: "SQ.x".into(),
            start: 4,
            end: 7,
            state: crate::vrs::model::State::ReferenceLength {
                length: 0,
                repeat_subunit_length: 3,
                sequence: Some(Vec::new()),
            },
        };
        let entries = [Some(deletion), None];
        let written = |missing| {
            let mut out = Vec::new();
            write_vrs_info(&entries, true, missing, &mut out);
            String::from_utf8(out).unwrap()
        };
        let id = format!("ga4gh:VA.{}", "d".repeat(32));
        let numbers = "VRS_Starts=4,.;VRS_Ends=7,.";
        let rle = "VRS_Lengths=0,.;VRS_RepeatSubunitLengths=3,.";
        assert_eq!(
            written(MissingString::Dot),
            format!("VRS_Allele_IDs={id},.;{numbers};VRS_States=.,.;{rle}")
        );
        assert_eq!(
            written(MissingString::Empty),
            format!("VRS_Allele_IDs={id},;{numbers};VRS_States=,;{rle}")
        );
        let mut out = Vec::new();
        write_vrs_info(&entries[1..], true, MissingString::Empty, &mut out);
        let none = "VRS_Starts=.;VRS_Ends=.;VRS_States;VRS_Lengths=.;VRS_RepeatSubunitLengths=.";
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("VRS_Allele_IDs;{none}")
        );
    }

    #[test]
    fn error_escaping() {
        let mut out = Vec::new();
        escape_error("a%b;c,d\re\nf g=(h):'i'", &mut out);
        assert_eq!(out, b"a%25b%3Bc%2Cd%0De%0Af g=(h):'i'");
    }

    #[test]
    fn info_rewriting_drops_old_vrs_entries() {
        let mut out = Vec::new();
        assert!(write_info_without_vrs(
            b"DP=3;VRS_Allele_IDs=x,y;AF=0.5;VRS_Error=e",
            &mut out
        ));
        assert_eq!(out, b"DP=3;AF=0.5");
        out.clear();
        assert!(!write_info_without_vrs(b"VRS_Allele_IDs=x", &mut out));
        assert!(!write_info_without_vrs(b".", &mut out));
        assert!(out.is_empty());
        assert!(write_info_without_vrs(b"DB", &mut out));
        assert_eq!(out, b"DB");
    }

    #[test]
    fn column_splitting() {
        let line = b"chr1\t5\t.\tA\tG\t.\tPASS\tDP=1\tGT\t0/1";
        let c = Columns::split(line).unwrap();
        assert_eq!(c.get(line, 7), b"DP=1");
        assert_eq!(c.bounds[7].1, 24);
        let line = b"chr1\t5\t.\tA\tG\t.\tPASS\tDP=1";
        assert_eq!(Columns::split(line).unwrap().get(line, 7), b"DP=1");
        assert_eq!(Columns::split(b"chr1\t5\t.\tA").err(), Some(4));
    }
}
