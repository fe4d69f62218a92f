//! Identification: an object's identifier is the `sha512t24u` digest of its canonical
//! serialization (spec section 1.4); an Allele's names its location's digest, so a location is
//! identified first.

use std::sync::Arc;

use super::digest::{sha512t24u, Digest};
use super::model::{Allele, NormalizedAllele, State};
use super::serialize::{serialize_allele, serialize_location};

/// The digest of the SequenceLocation; `buf` is a scratch buffer, left holding the
/// serialization.
pub fn location_digest(buf: &mut Vec<u8>, accession: &str, start: u64, end: u64) -> Digest {
    serialize_location(buf, accession, start, end);
    sha512t24u(buf)
}

/// The digest of the Allele on the location of digest `location`; `buf` as for
/// [`location_digest`].
pub fn allele_digest(buf: &mut Vec<u8>, location: &Digest, state: &State) -> Digest {
    serialize_allele(buf, location, state);
    sha512t24u(buf)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_snv() {
        let mut buf = Vec::new();
        let sl = location_digest(&mut buf, "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW", 10, 11);
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            r#"{"end":11,"sequenceReference":{"refgetAccession":"SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW","type":"SequenceReference"},"start":10,"type":"SequenceLocation"}"#
        );
        assert_eq!(sl.as_str(), "RxpTN6MR1fv0HRwID_f502wwIASuwBSa");
        let va = allele_digest(
            &mut buf,
            &sl,
            &State::Literal {
                sequence: b"G".to_vec(),
            },
        );
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            r#"{"location":"RxpTN6MR1fv0HRwID_f502wwIASuwBSa","state":{"sequence":"G","type":"LiteralSequenceExpression"},"type":"Allele"}"#
        );
        assert_eq!(va.as_str(), "Uh1M3DEgTlOIoVZ-FQPuuXUTPnc6Q7zj");
    }

    #[test]
    fn worked_example_rle_and_grch38() {
        let mut buf = Vec::new();
        let sl = location_digest(&mut buf, "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW", 40, 50);
        assert_eq!(sl.as_str(), "D-Fs7b4wI5ToBtM-ANTQ2oQxV7zHUS2i");
        let rle = State::ReferenceLength {
            length: 9,
            repeat_subunit_length: 1,
            sequence: Some(b"AAAAAAAAA".to_vec()),
        };
        assert_eq!(
            allele_digest(&mut buf, &sl, &rle).as_str(),
            "M7cIKmL1Y_6rCw6rjE0FI1gm3Bqu6cOd"
        );
        let sl = location_digest(
            &mut buf,
            "SQ.F-LrLMe1SRpfUZHkQmvkVKFEGaoDeHul",
            44908821,
            44908822,
        );
        assert_eq!(sl.as_str(), "4t6JnYWqHwYw9WzBT_lmWBb3tLQNalkT");
        let sl = location_digest(
            &mut buf,
            "SQ.IIB53T8CNeJJdUqzn9V_JnRtQadwWCbl",
            82663,
            82664,
        );
        assert_eq!(sl.as_str(), "sXl66xA1nei_abGw9YmGkiAS-C9l3nUH");
        let alt = State::Literal {
            sequence: b"T".to_vec(),
        };
        assert_eq!(
            allele_digest(&mut buf, &sl, &alt).as_str(),
            "b9AIUegs1SOYO7nKY8l01yllkyUns-u4"
        );
        let reference = State::ReferenceLength {
            length: 1,
            repeat_subunit_length: 1,
            sequence: Some(b"C".to_vec()),
        };
        assert_eq!(
            allele_digest(&mut buf, &sl, &reference).as_str(),
            "esmv8nARRRdSysDFuIErJxRAdUSVsWNE"
        );
    }
}
