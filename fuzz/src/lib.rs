//! What the fuzz targets share: a tiny FASTA reference written once per process, a scratch
//! file, and the options a target takes from its input's first byte (with the rest of the input).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyvar_core::alleles::RecordOptions;
use anyvar_core::sequence::SequenceSource;

/// 240 bases with runs (a poly-A, a CA and a TTG repeat, a poly-G) for normalization to expand
/// over; 1-based positions 11 and 100 are `A`, as the seeds expect.
const CHR1: &str =
    "GCTAAAGACAATTACATAACATACACGTCATAAAAAAAAATGTTGGCCCAGTGTGAATCGCACACACACAAAGTAAGTG\
TGATGCATACGCCTTTACTTACTGTGTCCACCCCATCGGACTTGTTGTTGTTGTACACTCAGAAACAGAACTCGGGTAATTTTGACAG\
GTCACGCAGAGGCGGGGGCTCCTGAAGTGCGTGGACACTCGCTATGAATCTCTGATTTACCCACTCTGCCAAA";

/// Contigs of the reference: chr1 under its UCSC name (also `1` in GRCh38) and again under its
/// RefSeq name (SPDI and HGVS seeds), and a short, soft-masked contig to run off the end of.
const CONTIGS: [(&str, &str); 3] = [
    ("chr1", CHR1),
    ("NC_000001.11", CHR1),
    ("chrM", "GATCACAGGTctattcacccTATTAACCAC"),
];

const FASTA_LINE: usize = 60;

/// Writes the FASTA and its `.fai` index into a directory of their own, left behind when the
/// process ends: libFuzzer ends it with `exit`, so nothing could remove it then (`fuzz.sh`
/// runs the targets with a `TMPDIR` it removes).
fn write_reference() -> PathBuf {
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let mut fasta = String::new();
    let mut fai = String::new();
    for (name, seq) in CONTIGS {
        fasta.push_str(&format!(">{name}\n"));
        let offset = fasta.len();
        for line in seq.as_bytes().chunks(FASTA_LINE) {
            fasta.push_str(std::str::from_utf8(line).expect("ASCII"));
            fasta.push('\n');
        }
        fai.push_str(&format!(
            "{name}\t{}\t{offset}\t{FASTA_LINE}\t{}\n",
            seq.len(),
            FASTA_LINE + 1
        ));
    }
    let path = dir.join("ref.fa");
    std::fs::write(&path, fasta).expect("write the FASTA");
    std::fs::write(dir.join("ref.fa.fai"), fai).expect("write the index");
    path
}

/// The reference, opened once per process (every execution of a target shares it).
pub fn source() -> &'static SequenceSource {
    static SOURCE: OnceLock<SequenceSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let uri = format!(
            "fasta+file://{}?assembly=GRCh38",
            write_reference().display()
        );
        SequenceSource::open(&uri, None).expect("the fuzz reference opens")
    })
}

/// A target's input cut in two: its first byte, whose bits choose the options, and the rest,
/// with `header` before it when bit 8 is set (so that records are reached without the fuzzer
/// first having to find a header). None for an empty input.
pub fn options_and_file(data: &[u8], header: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (&bits, body) = data.split_first()?;
    let file = if bits & 8 != 0 {
        [header, body].concat()
    } else {
        body.to_vec()
    };
    Some((bits, file))
}

/// Record options from the bits of one byte, so the fuzzer explores every combination.
pub fn record_options(bits: u8) -> RecordOptions {
    RecordOptions {
        assembly: "GRCh38".into(),
        for_ref: bits & 1 != 0,
        vrs_attributes: bits & 2 != 0,
        require_validation: bits & 4 != 0,
    }
}

/// A file for the targets that must hand ingestion a path (it detects gzip and BGZF by
/// content): one per process, rewritten by each execution.
pub fn scratch_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        dir.join("annotated.vcf")
    })
}
