//! AnyVar's core: GA4GH VRS normalization and identifiers, reference sequence access, and
//! streaming VCF annotation. No Python here; `rust/python` binds it.

pub mod alleles;
mod compression;
pub mod copy_number;
pub mod error;
pub mod liftover;
pub mod sequence;
pub mod storage;
pub mod translate;
pub mod vcf;
pub mod vrs;

pub use error::{Error, Result};
