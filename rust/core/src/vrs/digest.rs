//! GA4GH `sha512t24u` digests (spec section 1.4) and refget sequence digests: bytes in, digest
//! out. It knows nothing of VRS objects (their serializations are in [`super::serialize`]), so
//! anything may use it without a circle.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest as _, Sha512};

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
}
