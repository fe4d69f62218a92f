//! The definitions the registry translates (gnomAD-style `1-100-A-G`, SPDI
//! `NC_000001.11:99:A:G`, genomic HGVS `NC_000001.11:g.100A>G`, and HGVS `del`/`dup` as copy
//! numbers): any text is translated or refused with a message, never a panic. An allele, written
//! back as SPDI on its own sequence and interval, translates to itself: normalization is
//! idempotent.
#![no_main]

use std::sync::OnceLock;

use anyvar_core::alleles::{Annotator, RecordOptions};
use anyvar_core::translate::{translate, translate_copy_number};
use anyvar_core::vrs::model::{Allele, State};
use anyvar_fuzz::{record_options, source};
use libfuzzer_sys::fuzz_target;

/// As `translate_many` translates a `PUT /variations` batch: ALT only, REF validated.
fn options() -> &'static RecordOptions {
    static OPTIONS: OnceLock<RecordOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| record_options(4))
}

/// The allele as SPDI (interval and replacement sequence), when its state has a sequence SPDI
/// can carry.
fn as_spdi(allele: &Allele) -> Option<String> {
    let sequence = match &allele.state {
        State::Literal { sequence } => sequence,
        State::ReferenceLength { sequence, .. } => sequence.as_ref()?,
    };
    let bases = sequence
        .iter()
        .all(|b| matches!(b, b'A' | b'C' | b'G' | b'T' | b'N' | b'U'));
    bases.then(|| {
        format!(
            "{}:{}:{}:{}",
            allele.accession,
            allele.start,
            allele.end - allele.start,
            String::from_utf8_lossy(sequence)
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let definition = String::from_utf8_lossy(data);
    let mut annotator = Annotator::new(source(), options());
    let translated = translate(&mut annotator, &definition).expect("the reference reads");
    if let Ok(allele) = translated {
        assert!(allele.start <= allele.end, "{allele:?}");
        let _ = allele.to_json();
        if let Some(spdi) = as_spdi(&allele) {
            let again = translate(&mut annotator, &spdi).expect("the reference reads");
            assert_eq!(again.as_ref(), Ok(&allele), "{definition:?} then {spdi:?}");
        }
    }
    if let Ok(copy_number) =
        translate_copy_number(source(), &definition, None, None).expect("the reference reads")
    {
        let _ = copy_number.to_json();
    }
});
