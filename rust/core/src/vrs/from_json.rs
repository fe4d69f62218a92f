//! VRS JSON in: an Allele as a client sends it (`PUT /vrs_variation`), checked and identified.

use std::sync::Arc;

use super::identify::identify;
use super::model::{Allele, NormalizedAllele, State};

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
