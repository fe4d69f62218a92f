//! Ingesting a VCF that already carries VRS annotations (`PUT /annotated_vcf`): the alleles are
//! rebuilt from the six VRS INFO fields and registered; with validation, each record is also
//! annotated afresh and every id that differs is reported as a conflict.

use std::io::Write;

use super::io::{open_input, Input};
use super::record::{invalid, Columns};
use super::{read_header_lines, read_line, Limits};
use crate::alleles::{AlleleSink, Annotator, Outcome, RecordOptions};
use crate::error::{Error, Result};
use crate::sequence::SequenceSource;
use crate::vrs::identify::identify;
use crate::vrs::model::{Allele, NormalizedAllele, State, RLE_SEQUENCE_LIMIT};

/// The INFO fields an annotated VCF must declare.
pub const REQUIRED: [&str; 6] = [
    "VRS_Allele_IDs",
    "VRS_Starts",
    "VRS_Ends",
    "VRS_States",
    "VRS_Lengths",
    "VRS_RepeatSubunitLengths",
];

/// Header of the conflicts CSV.
pub const CONFLICTS_HEADER: &str = "vrs_id,assembly,chrom,pos,start,end,state,new_vrs_id\n";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub records: u64,
    pub alleles: u64,
    pub conflicts: u64,
}

fn info_value<'a>(info: &'a [u8], key: &str) -> Option<&'a [u8]> {
    info.split(|b| *b == b';').find_map(|entry| {
        let rest = entry.strip_prefix(key.as_bytes())?;
        // A bare key is one empty value: vrs-python 2.2 writes `VRS_States` for [""].
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix(b"=")
        }
    })
}

fn parse_int(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// An allele rebuilt from a record's VRS fields, with the id the file gave it.
type Rebuilt = (Vec<u8>, Allele);

/// Rebuilds the alleles of one record from its VRS fields; `None` entries are `.`.
fn rebuild(
    info: &[u8],
    accession: &std::sync::Arc<str>,
    buf: &mut Vec<u8>,
) -> std::result::Result<Vec<Option<Rebuilt>>, String> {
    let field = |key: &str| -> Vec<&[u8]> {
        info_value(info, key)
            .map(|v| v.split(|b| *b == b',').collect())
            .unwrap_or_default()
    };
    let ids = field("VRS_Allele_IDs");
    let (starts, ends, states, lengths, rsls) = (
        field("VRS_Starts"),
        field("VRS_Ends"),
        field("VRS_States"),
        field("VRS_Lengths"),
        field("VRS_RepeatSubunitLengths"),
    );
    if [
        starts.len(),
        ends.len(),
        states.len(),
        lengths.len(),
        rsls.len(),
    ]
    .iter()
    .any(|n| *n != ids.len())
    {
        return Err("the VRS fields do not all have one value per allele".into());
    }
    let mut out = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        if ids[i] == b"." || ids[i].is_empty() {
            out.push(None);
            continue;
        }
        let bad = |what: &str| format!("allele {}: {what}", i + 1);
        let start = parse_int(starts[i]).ok_or_else(|| bad("VRS_Starts is not a number"))?;
        let end = parse_int(ends[i]).ok_or_else(|| bad("VRS_Ends is not a number"))?;
        // vrs-python 2.2 wrote a missing state as an empty string, 2.3 as `.`.
        let missing_state = states[i] == b"." || states[i].is_empty();
        let state_seq = (!missing_state).then(|| states[i].to_ascii_uppercase());
        let state = if lengths[i] == b"." {
            State::Literal {
                sequence: state_seq.ok_or_else(|| bad("a literal allele needs VRS_States"))?,
            }
        } else {
            let length = parse_int(lengths[i]).ok_or_else(|| bad("VRS_Lengths is not a number"))?;
            let rsl = parse_int(rsls[i])
                .ok_or_else(|| bad("VRS_RepeatSubunitLengths is not a number"))?;
            // `.` stands for both an empty sequence (length 0) and an omitted one (> 50).
            let sequence = match state_seq {
                Some(s) => Some(s),
                None if length == 0 => Some(Vec::new()),
                None if length > RLE_SEQUENCE_LIMIT => None,
                None => {
                    return Err(bad(
                        "VRS_States is missing for a short ReferenceLengthExpression",
                    ))
                }
            };
            State::ReferenceLength {
                length,
                repeat_subunit_length: rsl,
                sequence,
            }
        };
        let allele = identify(
            buf,
            accession,
            NormalizedAllele { start, end, state },
            &mut None,
        );
        out.push(Some((ids[i].to_vec(), allele)));
    }
    Ok(out)
}

/// The INFO fields a header declares.
#[derive(Default)]
pub(super) struct DeclaredInfo(Vec<String>);

impl DeclaredInfo {
    /// Takes note of a `##` header line.
    pub(super) fn see(&mut self, line: &[u8]) {
        if let Some(rest) = line.strip_prefix(b"##INFO=<ID=") {
            let id = rest
                .split(|b| *b == b',' || *b == b'>')
                .next()
                .unwrap_or(b"");
            self.0.push(String::from_utf8_lossy(id).into_owned());
        }
    }

    /// Ingestion needs all six VRS fields declared.
    pub(super) fn require_vrs_annotations(&self) -> Result<()> {
        if REQUIRED.iter().any(|k| !self.0.iter().any(|d| d == k)) {
            return Err(Error::MissingVrsAnnotations);
        }
        Ok(())
    }
}

/// Records between two calls of an ingestion's `progress`.
const PROGRESS_EVERY: u64 = 4096;

/// Registers the alleles of an annotated VCF through `sink`, reading within `limits`; with
/// `conflicts`, re-annotates each record and writes a CSV row for every id that differs from
/// the file's. `progress` is called with the records read every few thousand records; an
/// error it returns ends the ingestion with that error.
pub fn ingest_annotated_vcf(
    source: &SequenceSource,
    input: &Input,
    options: &RecordOptions,
    limits: &Limits,
    sink: &mut dyn AlleleSink,
    mut conflicts: Option<&mut dyn Write>,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<IngestSummary> {
    let mut reader = open_input(input, 1)?.reader;
    let mut declared = DeclaredInfo::default();
    let (_, mut line_no) = read_header_lines(&mut *reader, limits, |line| declared.see(line))?;
    declared.require_vrs_annotations()?;
    let write_err = |e| Error::io("writing the conflicts", e);
    if let Some(w) = conflicts.as_mut() {
        w.write_all(CONFLICTS_HEADER.as_bytes())
            .map_err(write_err)?;
    }
    let validate = RecordOptions {
        for_ref: true,
        ..options.clone()
    };
    let mut annotator = Annotator::new(source, &validate);
    let mut summary = IngestSummary::default();
    let mut batch: Vec<Allele> = Vec::new();
    let mut buf = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        line_no += 1;
        let n = read_line(&mut *reader, &mut line, line_no, limits)?;
        if n == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let cols = Columns::split(&line).map_err(|found| {
            invalid(
                line_no,
                format!("expected at least 8 tab-separated columns, found {found}"),
            )
        })?;
        summary.records += 1;
        if summary.records % PROGRESS_EVERY == 0 {
            progress(summary.records)?; // where a caller may stop the run (Error::Cancelled)
        }
        let (chrom, pos, reference, alts, info) = (
            cols.get(&line, 0),
            cols.get(&line, 1),
            cols.get(&line, 3),
            cols.get(&line, 4),
            cols.get(&line, 7),
        );
        if info_value(info, "VRS_Allele_IDs").is_none() {
            continue; // an erroring or unannotated record: nothing to register
        }
        let Some(contig) = std::str::from_utf8(chrom)
            .ok()
            .map(|c| source.resolve(&options.assembly, c))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let rebuilt =
            rebuild(info, &contig.accession, &mut buf).map_err(|m| invalid(line_no, m))?;
        let fresh = match conflicts {
            Some(_) => match annotator.annotate(chrom, pos, reference, alts)? {
                Outcome::Alleles => Some(annotator.entries().to_vec()),
                Outcome::Error(_) => Some(Vec::new()),
            },
            None => None,
        };
        // The file may annotate REF and ALTs, or ALTs only.
        let offset = match &fresh {
            Some(f) if f.len() == rebuilt.len() + 1 => 1,
            _ => 0,
        };
        for (i, entry) in rebuilt.into_iter().enumerate() {
            let Some((given_id, allele)) = entry else {
                continue;
            };
            if let (Some(w), Some(fresh)) = (conflicts.as_mut(), &fresh) {
                let new_id = fresh
                    .get(i + offset)
                    .and_then(|a| a.as_ref())
                    .map(|a| a.id())
                    .unwrap_or_default();
                if new_id.as_bytes() != given_id.as_slice() {
                    summary.conflicts += 1;
                    let state = match &allele.state {
                        State::Literal { sequence } => {
                            String::from_utf8_lossy(sequence).into_owned()
                        }
                        State::ReferenceLength {
                            sequence, length, ..
                        } => sequence
                            .as_ref()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .unwrap_or_else(|| format!("length={length}")),
                    };
                    writeln!(
                        w,
                        "{},{},{},{},{},{},{},{}",
                        String::from_utf8_lossy(&given_id),
                        options.assembly,
                        String::from_utf8_lossy(chrom),
                        String::from_utf8_lossy(pos),
                        allele.start,
                        allele.end,
                        state,
                        new_id
                    )
                    .map_err(write_err)?;
                }
            }
            summary.alleles += 1;
            batch.push(allele);
        }
        if batch.len() >= 10_000 {
            sink.put(std::mem::take(&mut batch)).map_err(Error::Sink)?;
        }
    }
    if !batch.is_empty() {
        sink.put(batch).map_err(Error::Sink)?;
    }
    Ok(summary)
}
