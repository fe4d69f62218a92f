//! The VRS Allele as the annotator produces it: a location on a refget sequence and a state.

use std::sync::Arc;

use crate::digest::{allele_digest, location_digest, Digest};

/// RLE `sequence` is kept only up to this length (vrs-python's `rle_seq_limit`, spec 2.7).
pub const RLE_SEQUENCE_LIMIT: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// LiteralSequenceExpression.
    Literal { sequence: Vec<u8> },
    /// ReferenceLengthExpression; `sequence` is `None` when longer than [`RLE_SEQUENCE_LIMIT`].
    ReferenceLength {
        length: u64,
        repeat_subunit_length: u64,
        sequence: Option<Vec<u8>>,
    },
}

impl State {
    /// An RLE whose `sequence` follows the omission rule.
    pub fn reference_length(length: u64, repeat_subunit_length: u64, sequence: &[u8]) -> State {
        State::ReferenceLength {
            length,
            repeat_subunit_length,
            sequence: (length <= RLE_SEQUENCE_LIMIT).then(|| sequence.to_vec()),
        }
    }

    /// The sequence the annotator writes in `VRS_States` (none for an omitted or empty RLE one).
    pub fn written_sequence(&self) -> Option<&[u8]> {
        match self {
            State::Literal { sequence } => Some(sequence),
            State::ReferenceLength { sequence, .. } => {
                sequence.as_deref().filter(|s| !s.is_empty())
            }
        }
    }
}

/// A normalized allele before identification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedAllele {
    pub start: u64,
    pub end: u64,
    pub state: State,
}

/// An identified allele, as handed to sinks (the storage layer) and written to VCF INFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allele {
    /// Bare digest of the Allele (`ga4gh:VA.<digest>`).
    pub digest: Digest,
    /// Bare digest of its SequenceLocation (`ga4gh:SL.<digest>`).
    pub location_digest: Digest,
    /// Refget accession, `SQ.…`.
    pub accession: Arc<str>,
    pub start: u64,
    pub end: u64,
    pub state: State,
}

impl Allele {
    pub fn id(&self) -> String {
        format!("ga4gh:VA.{}", self.digest)
    }

    pub fn location_id(&self) -> String {
        format!("ga4gh:SL.{}", self.location_digest)
    }

    /// vrs-python's `model_dump_json(exclude_none=True)` of the Allele (spec 1.5): the form the
    /// registry stores and serves.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"id":"ga4gh:VA.{va}","type":"Allele","digest":"{va}","location":{loc},"state":{state}}}"#,
            va = self.digest,
            loc = location_json(&self.location_digest, &self.accession, self.start, self.end),
            state = self.state.to_json(),
        )
    }
}

/// A SequenceLocation as vrs-python dumps it; `digest` is the bare digest (a [`Digest`], or the
/// text after `ga4gh:SL.` of a stored id).
pub fn location_json(
    digest: &impl std::fmt::Display,
    accession: &str,
    start: u64,
    end: u64,
) -> String {
    format!(
        concat!(
            r#"{{"id":"ga4gh:SL.{sl}","type":"SequenceLocation","digest":"{sl}","#,
            r#""sequenceReference":{{"type":"SequenceReference","refgetAccession":"{acc}"}},"#,
            r#""start":{start},"end":{end}}}"#
        ),
        sl = digest,
        acc = accession,
        start = start,
        end = end,
    )
}

impl State {
    /// The state as vrs-python dumps it (what AnyVar stores in `alleles.state`).
    pub fn to_json(&self) -> String {
        let mut json = String::new();
        self.write_json(&mut json);
        json
    }

    /// Appends [`State::to_json`] to `out` (the registry writes millions into one buffer).
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        let written = match self {
            State::Literal { sequence } => write!(
                out,
                r#"{{"type":"LiteralSequenceExpression","sequence":"{}"}}"#,
                ascii(sequence)
            ),
            State::ReferenceLength {
                length,
                repeat_subunit_length,
                sequence,
            } => {
                let sequence = sequence.as_deref().map(ascii);
                write!(
                    out,
                    r#"{{"type":"ReferenceLengthExpression","length":{length}"#
                )
                .and_then(|()| match sequence {
                    Some(s) => write!(out, r#","sequence":"{s}""#),
                    None => Ok(()),
                })
                .and_then(|()| write!(out, r#","repeatSubunitLength":{repeat_subunit_length}}}"#))
            }
        };
        written.expect("writing to a String");
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // Sequences are validated IUPAC letters before they get here.
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Computes the identifiers of a normalized allele. `buf` is a scratch buffer reused across calls;
/// `cached_location` lets the caller reuse the SequenceLocation digest of the previous allele of
/// the same record when the interval is the same (REF and SNV ALT share one).
pub fn identify(
    buf: &mut Vec<u8>,
    accession: &Arc<str>,
    allele: NormalizedAllele,
    cached_location: &mut Option<(u64, u64, Digest)>,
) -> Allele {
    let location = match cached_location {
        Some((s, e, d)) if *s == allele.start && *e == allele.end => *d,
        _ => {
            let d = location_digest(buf, accession, allele.start, allele.end);
            *cached_location = Some((allele.start, allele.end, d));
            d
        }
    };
    let digest = allele_digest(buf, &location, &allele.state);
    Allele {
        digest,
        location_digest: location,
        accession: accession.clone(),
        start: allele.start,
        end: allele.end,
        state: allele.state,
    }
}

/// An Allele given as VRS JSON (`PUT /vrs_variation`): identifiers are computed here, whatever
/// `id`/`digest` fields it carries. The allele is taken as given (not re-normalized).
pub fn allele_from_json(text: &str) -> std::result::Result<Allele, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v["type"] != "Allele" {
        return Err("only VRS Alleles (\"type\": \"Allele\") are supported".into());
    }
    let loc = &v["location"];
    let accession = loc["sequenceReference"]["refgetAccession"]
        .as_str()
        .filter(|a| a.starts_with("SQ."))
        .ok_or("location.sequenceReference.refgetAccession must be an SQ. accession")?;
    let coordinate = |key: &str| {
        loc[key]
            .as_u64()
            .ok_or(format!("location.{key} must be a non-negative integer"))
    };
    let (start, end) = (coordinate("start")?, coordinate("end")?);
    if end < start {
        return Err("location.end is before location.start".into());
    }
    let state = &v["state"];
    let sequence = |required: bool| -> std::result::Result<Option<Vec<u8>>, String> {
        match state["sequence"].as_str() {
            Some(s) if s.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Ok(Some(s.to_ascii_uppercase().into_bytes()))
            }
            Some(_) => Err("state.sequence must be letters".into()),
            None if required => Err("state.sequence is required".into()),
            None => Ok(None),
        }
    };
    let state = match state["type"].as_str() {
        Some("LiteralSequenceExpression") => State::Literal {
            sequence: sequence(true)?.unwrap_or_default(),
        },
        Some("ReferenceLengthExpression") => State::ReferenceLength {
            length: state["length"]
                .as_u64()
                .ok_or("state.length must be a non-negative integer")?,
            repeat_subunit_length: state["repeatSubunitLength"]
                .as_u64()
                .ok_or("state.repeatSubunitLength must be a non-negative integer")?,
            sequence: sequence(false)?,
        },
        _ => {
            return Err(
                "state.type must be LiteralSequenceExpression or ReferenceLengthExpression".into(),
            )
        }
    };
    let mut buf = Vec::new();
    let accession: Arc<str> = accession.into();
    Ok(identify(
        &mut buf,
        &accession,
        NormalizedAllele { start, end, state },
        &mut None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_matches_vrs_python_dump() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/vectors/alleles.ndjson");
        let text = std::fs::read_to_string(path).expect("test vectors");
        for line in text.lines() {
            let allele = allele_from_json(line).unwrap();
            assert_eq!(allele.to_json(), line);
        }
        assert!(allele_from_json("{}").is_err());
        assert!(allele_from_json(r#"{"type":"Allele","location":{"sequenceReference":{"refgetAccession":"SQ.x"},"start":5,"end":4},"state":{"type":"LiteralSequenceExpression","sequence":"A"}}"#).is_err());
    }
}
