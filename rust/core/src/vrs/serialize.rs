//! Every serialization of the VRS objects we identify, in one place: the canonical forms their
//! digests are computed from (spec section 1: identifying keys only, sorted, compact), and the
//! JSON vrs-python's `model_dump_json(exclude_none=True)` gives (spec 1.5), which the registry
//! stores and serves, whether the object was just computed ([`Allele::to_json`]) or read back
//! from a database (`stored_allele_json`). Both are written by hand: the keys of each type are
//! few and fixed, and the canonical forms are written three times per VCF record into a reused
//! buffer.

use std::fmt::{Display, Write as _};

use super::digest::Digest;
use super::model::{Allele, State};

// --- Canonical serializations (what digests are computed from) --------------------------------

fn push_int(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `{"end":E,"sequenceReference":{"refgetAccession":"SQ.…","type":"SequenceReference"},"start":S,"type":"SequenceLocation"}`
pub fn serialize_location(buf: &mut Vec<u8>, accession: &str, start: u64, end: u64) {
    buf.clear();
    buf.extend_from_slice(b"{\"end\":");
    push_int(buf, end);
    buf.extend_from_slice(b",\"sequenceReference\":{\"refgetAccession\":\"");
    buf.extend_from_slice(accession.as_bytes());
    buf.extend_from_slice(b"\",\"type\":\"SequenceReference\"},\"start\":");
    push_int(buf, start);
    buf.extend_from_slice(b",\"type\":\"SequenceLocation\"}");
}

/// `{"location":"<SL digest>","state":{…identifying keys…},"type":"Allele"}`
pub fn serialize_allele(buf: &mut Vec<u8>, location: &Digest, state: &State) {
    buf.clear();
    buf.extend_from_slice(b"{\"location\":\"");
    buf.extend_from_slice(&location.0);
    buf.extend_from_slice(b"\",\"state\":{");
    match state {
        State::Literal { sequence } => {
            buf.extend_from_slice(b"\"sequence\":\"");
            buf.extend_from_slice(sequence);
            buf.extend_from_slice(b"\",\"type\":\"LiteralSequenceExpression\"}");
        }
        State::ReferenceLength {
            length,
            repeat_subunit_length,
            ..
        } => {
            buf.extend_from_slice(b"\"length\":");
            push_int(buf, *length);
            buf.extend_from_slice(b",\"repeatSubunitLength\":");
            push_int(buf, *repeat_subunit_length);
            buf.extend_from_slice(b",\"type\":\"ReferenceLengthExpression\"}");
        }
    }
    buf.extend_from_slice(b",\"type\":\"Allele\"}");
}

// --- JSON as vrs-python dumps it ----------------------------------------------------------------

impl Allele {
    /// vrs-python's `model_dump_json(exclude_none=True)` of the Allele (spec 1.5): the form the
    /// registry stores and serves.
    pub fn to_json(&self) -> String {
        allele_json(
            format_args!("ga4gh:VA.{}", self.digest),
            &self.digest,
            &location_json(&self.location_digest, &self.accession, self.start, self.end),
            &self.state.to_json(),
        )
    }
}

/// An Allele's JSON from its parts: `location` and `state` are JSON already.
fn allele_json(id: impl Display, digest: &impl Display, location: &str, state: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"Allele","digest":"{digest}","location":{location},"state":{state}}}"#
    )
}

/// A SequenceLocation as vrs-python dumps it; `digest` is the bare digest (a [`Digest`], or the
/// text after `ga4gh:SL.` of a stored id).
pub fn location_json(digest: &impl Display, accession: &str, start: u64, end: u64) -> String {
    let mut json = String::new();
    write_location_head(&mut json, digest, accession);
    write!(json, r#","start":{start},"end":{end}}}"#).expect("writing to a String");
    json
}

/// A SequenceLocation's JSON up to its `sequenceReference` (no closing brace): what follows,
/// `start` and `end`, is numbers for an Allele's location and possibly ranges or absent for a
/// copy number's.
pub(crate) fn write_location_head(out: &mut String, digest: &impl Display, accession: &str) {
    write!(
        out,
        r#"{{"id":"ga4gh:SL.{digest}","type":"SequenceLocation","digest":"{digest}","sequenceReference":"#
    )
    .expect("writing to a String");
    write_sequence_reference(out, accession);
}

fn write_sequence_reference(out: &mut String, accession: &str) {
    write!(
        out,
        r#"{{"type":"SequenceReference","refgetAccession":"{accession}"}}"#
    )
    .expect("writing to a String");
}

/// A SequenceReference as vrs-python dumps it.
pub(crate) fn sequence_reference_json(accession: &str) -> String {
    let mut json = String::new();
    write_sequence_reference(&mut json, accession);
    json
}

/// The API's JSON of a stored SequenceLocation.
pub(crate) fn stored_location_json(id: &str, accession: &str, start: i64, end: i64) -> String {
    let digest = id.strip_prefix("ga4gh:SL.").unwrap_or(id);
    location_json(&digest, accession, start as u64, end as u64)
}

/// The API's JSON of a stored Allele and its location (`state` is the stored JSON, as written
/// by [`State::write_json`]).
pub(crate) fn stored_allele_json(
    id: &str,
    state: &str,
    location_id: &str,
    accession: &str,
    start: i64,
    end: i64,
) -> String {
    let digest = id.strip_prefix("ga4gh:VA.").unwrap_or(id);
    allele_json(
        id,
        &digest,
        &stored_location_json(location_id, accession, start, end),
        state,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrs::from_json::allele_from_json;

    /// What a database gives back is what was computed, byte for byte, for every vector allele.
    #[test]
    fn stored_json_is_the_computed_json() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/vectors/alleles.ndjson");
        let text = std::fs::read_to_string(path).expect("test vectors");
        for line in text.lines() {
            let a = allele_from_json(line).unwrap();
            let stored = stored_allele_json(
                &a.id(),
                &a.state.to_json(),
                &a.location_id(),
                &a.accession,
                a.start as i64,
                a.end as i64,
            );
            assert_eq!(stored, line);
            assert_eq!(
                sequence_reference_json(&a.accession),
                format!(
                    r#"{{"type":"SequenceReference","refgetAccession":"{}"}}"#,
                    a.accession
                )
            );
        }
    }
}
