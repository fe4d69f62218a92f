//! The VCF header and record parser and the annotated-line writer: any input is annotated or
//! refused with an `Err`, never a panic. What is written is checked three ways: every column but
//! INFO is copied byte for byte; annotating the output again gives the output (old VRS entries
//! are replaced by the same ones); and with the VRS attributes, ingesting the output rebuilds
//! exactly the alleles the annotator computed, with no conflict when re-annotated.
#![no_main]

use anyvar_core::alleles::{AlleleSink, Annotator};
use anyvar_core::vcf::{
    annotate_in_memory, ingest_annotated_vcf, AnnotateOptions, Compression, Input, Limits,
    MissingString,
};
use anyvar_core::vrs::model::Allele;
use anyvar_fuzz::{options_and_file, record_options, scratch_file, source};
use libfuzzer_sys::fuzz_target;

/// Prepended when the input asks for it, so that most inputs reach the records.
const HEADER: &[u8] = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

struct Collect(Vec<Allele>);

impl AlleleSink for Collect {
    fn put(&mut self, alleles: Vec<Allele>) -> Result<(), String> {
        self.0.extend(alleles);
        Ok(())
    }
}

/// The data lines: after the `#CHROM` line, without their line ending, blank lines left out.
/// A last line that ends in a bare CR is written with CRLF: the CR is taken as its ending too.
fn data_lines(vcf: &[u8]) -> Vec<&[u8]> {
    let mut lines = vcf.split_inclusive(|b| *b == b'\n');
    for line in lines.by_ref() {
        if line.starts_with(b"#CHROM") {
            break;
        }
    }
    lines
        .map(|raw| {
            let line = raw.strip_suffix(b"\n").unwrap_or(raw);
            line.strip_suffix(b"\r").unwrap_or(line)
        })
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the options: bits 1, 2 and 4 the record options (REF too, VRS
    // attributes, validation), 8 the fixed header before the rest, 16 empty missing strings.
    let Some((bits, vcf)) = options_and_file(data, HEADER) else {
        return;
    };
    let options = AnnotateOptions {
        record: record_options(bits),
        threads: 1,
        compression: Compression::Plain,
        tabix: false,
        producer: "AnyVar fuzz".into(),
        range: None,
        missing_string: if bits & 16 != 0 {
            MissingString::Empty
        } else {
            MissingString::Dot
        },
        limits: Limits::default(),
    };
    let source = source();
    let mut annotator = Annotator::new(source, &options.record);
    let Ok((annotated, alleles)) = annotate_in_memory(&mut annotator, &vcf, &options) else {
        return;
    };

    let (given, written) = (data_lines(&vcf), data_lines(&annotated));
    assert_eq!(given.len(), written.len(), "one line out per record in");
    for (given, written) in given.iter().zip(&written) {
        let given: Vec<&[u8]> = given.split(|b| *b == b'\t').collect();
        let written: Vec<&[u8]> = written.split(|b| *b == b'\t').collect();
        assert_eq!(given.len(), written.len(), "the columns of a record");
        for (i, (g, w)) in given.iter().zip(&written).enumerate() {
            if i != 7 {
                assert_eq!(g, w, "column {} is copied as it was", i + 1);
            }
        }
    }

    let again = annotate_in_memory(&mut annotator, &annotated, &options)
        .expect("the annotator's output is a VCF it reads");
    assert!(
        again.0 == annotated,
        "annotating again changes the output:\n{}\n{}",
        String::from_utf8_lossy(&annotated),
        String::from_utf8_lossy(&again.0)
    );
    assert_eq!(again.1, alleles);

    if options.record.vrs_attributes {
        std::fs::write(scratch_file(), &annotated).expect("write the scratch file");
        let mut sink = Collect(Vec::new());
        let mut conflicts = Vec::new();
        let summary = ingest_annotated_vcf(
            source,
            &Input::Path(scratch_file().clone()),
            &options.record,
            &options.limits,
            &mut sink,
            Some(&mut conflicts),
            &mut |_| Ok(()),
        )
        .unwrap_or_else(|e| {
            panic!(
                "ingesting the annotator's output fails: {e}\n{}",
                String::from_utf8_lossy(&annotated)
            )
        });
        assert_eq!(
            summary.conflicts,
            0,
            "{}",
            String::from_utf8_lossy(&conflicts)
        );
        assert_eq!(sink.0, alleles, "ingestion rebuilds the annotated alleles");
    }
});
