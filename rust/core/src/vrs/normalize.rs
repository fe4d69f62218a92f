//! Fully-justified (VOCA) normalization exactly as vrs-python applies it to VCF alleles
//! (spec section 2). The reference is reached through [`Reference`], so the same code serves the
//! VCF annotator, the vectorised lookups and unit tests over in-memory sequences.

use super::model::{NormalizedAllele, State};
use crate::error::Result;

/// Upper-cased residues of one sequence, read by window.
#[allow(clippy::len_without_is_empty)] // a sequence is never empty here
pub trait Reference {
    /// Length of the whole sequence.
    fn len(&self) -> u64;
    /// Residue at `pos` (< `len()`), upper-case.
    fn base(&mut self, pos: u64) -> Result<u8>;
    /// Appends residues `[start, end)` (both ≤ `len()`), upper-case.
    fn extend(&mut self, start: u64, end: u64, out: &mut Vec<u8>) -> Result<()>;
}

/// A whole sequence held in memory (tests, small references).
impl Reference for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn base(&mut self, pos: u64) -> Result<u8> {
        Ok(self[pos as usize].to_ascii_uppercase())
    }
    fn extend(&mut self, start: u64, end: u64, out: &mut Vec<u8>) -> Result<()> {
        out.extend(
            self[start as usize..end as usize]
                .iter()
                .map(u8::to_ascii_uppercase),
        );
        Ok(())
    }
}

/// Normalizes the allele that replaces `[start, end)` of `reference` by `alt` (upper-case).
/// `reference_slice` holds the residues `[start, end)` (the caller fetched them for validation).
/// Requires `end <= reference.len()`.
pub fn normalize<R: Reference>(
    reference: &mut R,
    start: u64,
    end: u64,
    reference_slice: &[u8],
    alt: &[u8],
) -> Result<NormalizedAllele> {
    // 2.1 identity: the original interval, no trimming or rolling.
    if alt == reference_slice {
        let len = alt.len() as u64;
        return Ok(NormalizedAllele {
            start,
            end,
            state: State::reference_length(len, len, alt),
        });
    }

    // 2.2 trim: common prefix first, then common suffix of what is left.
    let prefix = common_prefix(reference_slice, alt);
    let (r, a) = (&reference_slice[prefix..], &alt[prefix..]);
    let suffix = common_suffix(r, a);
    let (r, a) = (&r[..r.len() - suffix], &a[..a.len() - suffix]);
    let s = start + prefix as u64;
    let e = end - suffix as u64;

    // 2.3 substitution.
    if !r.is_empty() && !a.is_empty() {
        return Ok(NormalizedAllele {
            start: s,
            end: e,
            state: State::Literal {
                sequence: a.to_vec(),
            },
        });
    }

    // 2.4 roll the inserted or deleted bases both ways from the trimmed position.
    let x = if r.is_empty() { a } else { r };
    let k = x.len();
    let mut left = 0u64;
    while left < s && x[(k - 1 - (left as usize % k)) % k] == reference.base(s - 1 - left)? {
        left += 1;
    }
    let len = reference.len();
    let mut right = 0u64;
    while e + right < len && x[right as usize % k] == reference.base(e + right)? {
        right += 1;
    }
    let (s2, e2) = (s - left, e + right);

    // 2.5 (a) an insertion that cannot roll stays a literal at the insertion point.
    if s2 == e2 {
        return Ok(NormalizedAllele {
            start: s,
            end: s,
            state: State::Literal {
                sequence: a.to_vec(),
            },
        });
    }

    let mut expanded = Vec::with_capacity((left + right) as usize + a.len());
    reference.extend(s2, s, &mut expanded)?;
    expanded.extend_from_slice(a);
    reference.extend(e, e2, &mut expanded)?;
    let reference_len = (e2 - s2) as usize;

    // 2.5 (b) deletion: always an RLE, its subunit the number of deleted bases.
    if expanded.len() < reference_len {
        return Ok(NormalizedAllele {
            start: s2,
            end: e2,
            state: State::reference_length(expanded.len() as u64, k as u64, &expanded),
        });
    }

    // 2.5 (c) insertion that rolled: the largest divisor of k whose unit, taken from the end of
    // the expanded reference, repeats through the inserted tail.
    let mut unit = Vec::new();
    for c in (1..=k).rev().filter(|c| k % c == 0 && *c <= reference_len) {
        unit.clear();
        reference.extend(e2 - c as u64, e2, &mut unit)?;
        let tail = &expanded[reference_len..];
        if tail.iter().enumerate().all(|(i, b)| *b == unit[i % c]) {
            return Ok(NormalizedAllele {
                start: s2,
                end: e2,
                state: State::reference_length(expanded.len() as u64, c as u64, &expanded),
            });
        }
    }
    Ok(NormalizedAllele {
        start: s2,
        end: e2,
        state: State::Literal { sequence: expanded },
    })
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(seq: &[u8], pos: u64, r: &str, a: &str) -> NormalizedAllele {
        let start = pos - 1;
        let end = start + r.len() as u64;
        let slice = seq[start as usize..end as usize].to_ascii_uppercase();
        let mut reference: &[u8] = seq;
        normalize(&mut reference, start, end, &slice, a.as_bytes()).unwrap()
    }

    fn rle(start: u64, end: u64, length: u64, rsl: u64) -> (u64, u64, Option<(u64, u64)>) {
        (start, end, Some((length, rsl)))
    }

    fn shape(n: &NormalizedAllele) -> (u64, u64, Option<(u64, u64)>) {
        match &n.state {
            State::Literal { .. } => (n.start, n.end, None),
            State::ReferenceLength {
                length,
                repeat_subunit_length,
                ..
            } => (n.start, n.end, Some((*length, *repeat_subunit_length))),
        }
    }

    #[test]
    fn homopolymer_cases() {
        // 10 A's at [10,20)
        let seq = b"GCTGCTGCTTAAAAAAAAAAGCGCTTTCCG";
        assert_eq!(shape(&norm(seq, 10, "TA", "T")), rle(10, 20, 9, 1));
        assert_eq!(shape(&norm(seq, 15, "AA", "A")), rle(10, 20, 9, 1));
        assert_eq!(shape(&norm(seq, 10, "TAAA", "T")), rle(10, 20, 7, 3));
        assert_eq!(shape(&norm(seq, 10, "T", "TA")), rle(10, 20, 11, 1));
        assert_eq!(shape(&norm(seq, 10, "T", "TAA")), rle(10, 20, 12, 2));
        let whole = norm(seq, 10, "TAAAAAAAAAA", "T");
        assert_eq!(shape(&whole), rle(10, 20, 0, 10));
        assert_eq!(whole.state.written_sequence(), None);
        let long = norm(seq, 10, "T", &format!("T{}", "A".repeat(45)));
        assert_eq!(shape(&long), rle(10, 20, 55, 9));
        assert_eq!(long.state.written_sequence(), None);
    }

    #[test]
    fn identity_keeps_original_interval() {
        let seq = b"GCTGCTGCTTAAAAAAAAAAGCG";
        let n = norm(seq, 12, "AA", "AA");
        assert_eq!(shape(&n), rle(11, 13, 2, 2));
        assert_eq!(n.state.written_sequence(), Some(&b"AA"[..]));
    }

    #[test]
    fn substitution_is_trimmed_literal() {
        let seq = b"ACAGGTTTCC";
        let n = norm(seq, 2, "CAGG", "CGGG");
        assert_eq!(n.start, 2);
        assert_eq!(n.end, 3);
        assert_eq!(
            n.state,
            State::Literal {
                sequence: b"G".to_vec()
            }
        );
    }

    #[test]
    fn insertion_without_roll_is_literal_at_point() {
        let seq = b"ACGTACGT";
        let n = norm(seq, 2, "C", "CTT");
        assert_eq!((n.start, n.end), (2, 2));
        assert_eq!(
            n.state,
            State::Literal {
                sequence: b"TT".to_vec()
            }
        );
    }

    #[test]
    fn insertion_partly_matching_flank_is_expanded_literal() {
        // T>TCAC with flank CA...: rolls right over "CA" but the cycle does not fit a unit.
        let seq = b"GGGTCAGGG";
        let n = norm(seq, 4, "T", "TCAC");
        assert_eq!((n.start, n.end), (4, 6));
        assert_eq!(
            n.state,
            State::Literal {
                sequence: b"CACCA".to_vec()
            }
        );
    }

    #[test]
    fn lower_case_reference_is_upper_cased() {
        let seq = b"ggccttttttttgg";
        let n = norm(seq, 4, "CT", "C");
        assert_eq!(shape(&n), rle(4, 12, 7, 1));
    }

    /// Every allele of the spec's vectors (`alleles.tsv`, produced by vrs-python): location,
    /// state, both serializations and both identifiers.
    #[test]
    fn every_vector_allele() {
        use crate::vrs::identify::identify;
        use crate::vrs::serialize::{serialize_allele, serialize_location};
        use std::collections::HashMap;
        use std::sync::Arc;

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors");
        let Ok(table) = std::fs::read_to_string(dir.join("alleles.tsv")) else {
            panic!("test vectors missing at {}", dir.display());
        };
        let fasta = std::fs::read_to_string(dir.join("ref.fa")).unwrap();
        let mut seqs: HashMap<String, Vec<u8>> = HashMap::new();
        let mut name = String::new();
        for line in fasta.lines() {
            if let Some(h) = line.strip_prefix('>') {
                name = h.split_whitespace().next().unwrap().to_string();
            } else {
                seqs.entry(name.clone())
                    .or_default()
                    .extend_from_slice(line.as_bytes());
            }
        }
        let accessions: HashMap<String, String> =
            std::fs::read_to_string(dir.join("sequences.tsv"))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| {
                    let c: Vec<&str> = l.split('\t').collect();
                    (c[0].to_string(), c[1].to_string())
                })
                .collect();
        let mut checked = 0;
        for line in table.lines().skip(1) {
            let c: Vec<&str> = line.split('\t').collect();
            let coords: Vec<&str> = c[1].split('-').collect();
            let (chr, pos, r, a) = (
                coords[0],
                coords[1].parse::<u64>().unwrap(),
                coords[2],
                coords[3],
            );
            let chr = if chr == "1" { "chr1" } else { chr };
            // vrs-python keeps only the leading letters of ALT (`A]chr2:10]` is `A`).
            let a: String = a.chars().take_while(char::is_ascii_alphabetic).collect();
            let seq = &seqs[chr];
            let got = norm(seq, pos, &r.to_ascii_uppercase(), &a.to_ascii_uppercase());
            let accession: Arc<str> = accessions[chr].as_str().into();
            let mut buf = Vec::new();
            let allele = identify(&mut buf, &accession, got.clone(), &mut None);
            let label = c[0];
            assert_eq!(allele.id(), c[2], "{label} {}", c[1]);
            assert_eq!(allele.location_id(), c[3], "{label}");
            assert_eq!(
                (got.start.to_string(), got.end.to_string()),
                (c[4].to_string(), c[5].to_string()),
                "{label}"
            );
            let (kind, sequence, length, rsl) = match &got.state {
                State::Literal { sequence } => (
                    "LiteralSequenceExpression",
                    Some(sequence.clone()),
                    String::new(),
                    String::new(),
                ),
                State::ReferenceLength {
                    length,
                    repeat_subunit_length,
                    sequence,
                } => (
                    "ReferenceLengthExpression",
                    sequence.clone(),
                    length.to_string(),
                    repeat_subunit_length.to_string(),
                ),
            };
            assert_eq!(kind, c[6], "{label}");
            // The table writes an omitted RLE sequence (length > 50) as `(none)`.
            let sequence = sequence.map_or("(none)".to_string(), |s| String::from_utf8(s).unwrap());
            assert_eq!(sequence, c[7], "{label}");
            assert_eq!((length.as_str(), rsl.as_str()), (c[8], c[9]), "{label}");
            serialize_allele(&mut buf, &allele.location_digest, &got.state);
            assert_eq!(std::str::from_utf8(&buf).unwrap(), c[10], "{label}");
            serialize_location(&mut buf, &accession, got.start, got.end);
            assert_eq!(std::str::from_utf8(&buf).unwrap(), c[11], "{label}");
            checked += 1;
        }
        assert_eq!(checked, 101);
    }
}
