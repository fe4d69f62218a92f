//! The VRS Allele as the annotator produces it: a location on a refget sequence and a state.
//! Only the types live here; their serializations are in [`super::serialize`] and the
//! computation of their identifiers in [`super::identify`].

use std::sync::Arc;

use super::digest::Digest;

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
}
