//! GA4GH `sha512t24u` digests and the canonical serializations of the VRS objects we identify
//! (spec section 1). Serializations are written by hand into a reused buffer: the identifying
//! keys of each type are few and fixed, and this runs three times per VCF record.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest as _, Sha512};

use crate::allele::State;

/// A bare 32-character digest (no `ga4gh:` / type prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn as_str(&self) -> &str {
        // base64url output is ASCII, so this cannot fail.
        std::str::from_utf8(&self.0).expect("base64url is ASCII")
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SHA-512 truncated to 24 bytes, base64url-encoded (32 characters, never padded).
pub fn sha512t24u(data: &[u8]) -> Digest {
    let hash = Sha512::digest(data);
    let mut out = [0u8; 32];
    URL_SAFE_NO_PAD
        .encode_slice(&hash[..24], &mut out)
        .expect("24 bytes encode to exactly 32");
    Digest(out)
}

/// Digest of a sequence's residues as a refget accession would have it (`SQ.` not included).
/// The caller hands in upper-cased residues, or uses [`RefgetHasher`] for streams.
pub struct RefgetHasher(Sha512);

impl Default for RefgetHasher {
    fn default() -> Self {
        RefgetHasher(Sha512::new())
    }
}

impl RefgetHasher {
    /// Feeds residues; they are upper-cased here because SeqRepo upper-cases before hashing.
    pub fn update(&mut self, residues: &[u8]) {
        let mut upper = [0u8; 4096];
        for piece in residues.chunks(upper.len()) {
            let out = &mut upper[..piece.len()];
            out.copy_from_slice(piece);
            out.make_ascii_uppercase();
            self.0.update(out);
        }
    }

    pub fn finish(self) -> Digest {
        let hash = self.0.finalize();
        let mut out = [0u8; 32];
        URL_SAFE_NO_PAD
            .encode_slice(&hash[..24], &mut out)
            .expect("24 bytes encode to exactly 32");
        Digest(out)
    }
}

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

pub fn location_digest(buf: &mut Vec<u8>, accession: &str, start: u64, end: u64) -> Digest {
    serialize_location(buf, accession, start, end);
    sha512t24u(buf)
}

pub fn allele_digest(buf: &mut Vec<u8>, location: &Digest, state: &State) -> Digest {
    serialize_allele(buf, location, state);
    sha512t24u(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512t24u_matches_spec_examples() {
        assert_eq!(sha512t24u(b"").as_str(), "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXc");
        assert_eq!(
            sha512t24u(b"ACGT").as_str(),
            "aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2"
        );
    }

    #[test]
    fn refget_hasher_uppercases_and_streams() {
        let mut h = RefgetHasher::default();
        h.update(b"ac");
        h.update(b"Gt");
        assert_eq!(h.finish(), sha512t24u(b"ACGT"));
    }

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
