//! Ingestion of an annotated VCF (`PUT /annotated_vcf`): the header check, the records and the
//! six VRS INFO fields they carry. Any bytes, plain or compressed, are ingested or refused with an
//! `Err`, never a panic; the sink gets every allele counted, and the conflicts CSV has one row
//! per conflict counted.
#![no_main]

use anyvar_core::alleles::AlleleSink;
use anyvar_core::vcf::{ingest_annotated_vcf, Input, Limits};
use anyvar_core::vrs::model::Allele;
use anyvar_fuzz::{options_and_file, record_options, scratch_file, source};
use libfuzzer_sys::fuzz_target;

/// Prepended when the input asks for it, so that most inputs reach the records.
const HEADER: &[u8] = b"##fileformat=VCFv4.2\n\
##INFO=<ID=VRS_Allele_IDs,Number=R,Type=String,Description=\"\">\n\
##INFO=<ID=VRS_Starts,Number=R,Type=Integer,Description=\"\">\n\
##INFO=<ID=VRS_Ends,Number=R,Type=Integer,Description=\"\">\n\
##INFO=<ID=VRS_States,Number=R,Type=String,Description=\"\">\n\
##INFO=<ID=VRS_Lengths,Number=R,Type=Integer,Description=\"\">\n\
##INFO=<ID=VRS_RepeatSubunitLengths,Number=R,Type=Integer,Description=\"\">\n\
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

struct Count(u64);

impl AlleleSink for Count {
    fn put(&mut self, alleles: Vec<Allele>) -> Result<(), String> {
        self.0 += alleles.len() as u64;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the options: bits 1, 2 and 4 the record options (only validation
    // matters here), 8 the fixed header before the rest, 16 re-annotation with a conflicts CSV.
    let Some((bits, file)) = options_and_file(data, HEADER) else {
        return;
    };
    std::fs::write(scratch_file(), file).expect("write the scratch file");
    let options = record_options(bits);
    let mut sink = Count(0);
    let mut csv = Vec::new();
    let with_conflicts = bits & 16 != 0;
    let Ok(summary) = ingest_annotated_vcf(
        source(),
        &Input::Path(scratch_file().clone()),
        &options,
        &Limits::default(),
        &mut sink,
        with_conflicts.then_some(&mut csv as &mut dyn std::io::Write),
        &mut |_| Ok(()),
    ) else {
        return;
    };
    assert_eq!(
        sink.0, summary.alleles,
        "every allele counted is handed over"
    );
    if with_conflicts {
        let rows = csv.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(
            rows as u64,
            summary.conflicts + 1,
            "a CSV header, then a row per conflict"
        );
    } else {
        assert_eq!(summary.conflicts, 0);
    }
});
