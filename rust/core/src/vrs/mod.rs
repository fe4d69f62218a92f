//! The GA4GH VRS model as AnyVar computes it, and everything that depends on the model alone:
//! its types ([`model`]), the digests ([`digest`], which knows nothing of VRS), the canonical
//! and output serializations ([`serialize`]), identification ([`identify`]), normalization
//! ([`normalize`]) and reading an Allele from VRS JSON ([`from_json`]).
//!
//! The modules depend on each other in one direction only:
//! `digest` ← `model` ← `serialize` ← `identify` ← `from_json`, and `normalize` ← `model`.
//! Copy numbers (`crate::copy_number`) build on `digest` and `serialize` the same way.

pub mod digest;
pub mod from_json;
pub mod identify;
pub mod model;
pub mod normalize;
pub mod serialize;
