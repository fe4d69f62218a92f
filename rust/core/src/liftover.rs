//! GRCh37 <-> GRCh38 liftover of Alleles with UCSC chain files, as AnyVar does it.
//!
//! AnyVar (`anyvar.mapping.liftover`) lifts a registered variation with agct, which wraps the
//! `chainfile` crate. This module uses that crate at the release agct 0.2.0 is built on and
//! repeats, step for step:
//!
//! * agct's `Converter.convert_coordinate(chrom, start, end, strand)`: [`ChainFile::convert`];
//! * AnyVar's `_convert_coordinate`, which asks for the zero-length interval `[c, c]` on the
//!   positive strand and takes the one result if it lies on the positive strand:
//!   [`ChainFile::convert_position`];
//! * AnyVar's `get_liftover_variant` (one direction, no normalization):
//!   [`Liftover::lift_once`];
//! * what `add_liftover_mapping` does before storing: lift, lift back, compare the identifiers,
//!   then normalize the lifted allele against the target reference: [`Liftover::lift`].
//!
//! agct finds a sequence's assembly and chromosome in a fixed table of the refget accessions of
//! GRCh37/GRCh38 `chr1`..`chr22`, `chrX`, `chrY`; here the sequence source's aliases
//! (`GRCh38:chr7` <-> `GRCh37:chr7`) answer the same question, so that synthetic references work
//! too. Failures are [`LiftoverError`]s whose text is AnyVar's.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chainfile::liftover::machine::{Builder, Machine};
use omics::coordinate::interbase::Coordinate;
use omics::coordinate::interval::interbase::Interval;
use omics::coordinate::Strand as ChainStrand;

use crate::copy_number::{Bound, CopyNumber, Location};
use crate::error::{Error, Result};
use crate::sequence::{Contig, SequenceSource};
use crate::vrs::identify::identify;
use crate::vrs::model::{Allele, NormalizedAllele, State};
use crate::vrs::normalize::{normalize, Reference};

/// The two assemblies AnyVar lifts between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Assembly {
    GRCh37,
    GRCh38,
}

impl Assembly {
    /// The GRC name, which is also the sequence alias namespace (`GRCh38:chr7`).
    pub fn name(self) -> &'static str {
        match self {
            Assembly::GRCh37 => "GRCh37",
            Assembly::GRCh38 => "GRCh38",
        }
    }

    /// The UCSC name chain files are named by (`hg38ToHg19.over.chain.gz`).
    pub fn ucsc(self) -> &'static str {
        match self {
            Assembly::GRCh37 => "hg19",
            Assembly::GRCh38 => "hg38",
        }
    }

    /// The assembly a liftover from `self` goes to.
    pub fn other(self) -> Assembly {
        match self {
            Assembly::GRCh37 => Assembly::GRCh38,
            Assembly::GRCh38 => Assembly::GRCh37,
        }
    }
}

/// The chromosomes agct's registry knows (its `Chromosome` enum), named as in UCSC chain files.
pub const CHROMOSOMES: [&str; 24] = [
    "chr1", "chr2", "chr3", "chr4", "chr5", "chr6", "chr7", "chr8", "chr9", "chr10", "chr11",
    "chr12", "chr13", "chr14", "chr15", "chr16", "chr17", "chr18", "chr19", "chr20", "chr21",
    "chr22", "chrX", "chrY",
];

/// A failed liftover. The Display text is AnyVar's `LiftoverError.get_error_message()` (and, for
/// a failed round trip, the message `add_liftover_mapping` builds).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiftoverError {
    /// A copy number whose location has no start or no end.
    #[error("Unable to complete liftover: Liftover is unsupported for variants without refget accession, start position, and end position")]
    UnsupportedVariantLocationType,
    /// The allele's sequence is no GRCh37/GRCh38 chromosome of the source.
    #[error("Unable to complete liftover: Could not resolve reference assembly - accession not found in any supported assembly")]
    UnsupportedReferenceAssembly,
    /// The start or end maps nowhere, or only to the negative strand.
    #[error("Unable to complete liftover: Could not convert start and/or end position(s)")]
    CoordinateConversionFailure,
    /// The start or end maps to more than one place.
    #[error("Unable to complete liftover: Start and/or end positions mapped to multiple possible locations")]
    AmbiguousCoordinateConversion,
    /// The other assembly has no sequence for the chromosome.
    #[error("Unable to complete liftover: Could not convert refget accession")]
    AccessionConversion,
    /// Lifting the lifted allele back does not give the original.
    #[error("Unable to complete liftover: Roundtripped lifted-over id `{roundtripped}` does not match initial value of {initial}")]
    RoundtripMismatch {
        roundtripped: String,
        initial: String,
    },
}

/// A strand, as agct reports it (`"+"`, `"-"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strand {
    Positive,
    Negative,
}

impl std::fmt::Display for Strand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strand::Positive => "+",
            Strand::Negative => "-",
        })
    }
}

impl std::str::FromStr for Strand {
    type Err = Error;
    fn from_str(s: &str) -> Result<Strand> {
        match s {
            "+" => Ok(Strand::Positive),
            "-" => Ok(Strand::Negative),
            other => Err(Error::InvalidArgument(format!(
                "Unrecognized strand value: \"{other}\""
            ))),
        }
    }
}

/// One result of a conversion: agct's `LiftoverResult` (interbase coordinates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    pub chrom: String,
    pub start: u64,
    pub end: u64,
    pub strand: Strand,
}

/// A UCSC chain file, ready to convert coordinates from its reference (`tName`) assembly to its
/// query (`qName`) assembly.
pub struct ChainFile {
    path: PathBuf,
    machine: Machine,
}

impl std::fmt::Debug for ChainFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainFile")
            .field("path", &self.path)
            .finish()
    }
}

impl ChainFile {
    /// Reads a chain file, plain or gzip-compressed (as UCSC ships them).
    pub fn open(path: &Path) -> Result<ChainFile> {
        let bad = |what: &str, e: std::io::Error| Error::ChainFile {
            path: path.to_path_buf(),
            message: format!("cannot {what} the chain file {}: {e}", path.display()),
        };
        let mut magic = [0u8; 2];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| bad("open", e))?;
        let file = File::open(path).map_err(|e| bad("open", e))?;
        if n == 2 && magic == [0x1f, 0x8b] {
            let gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            Self::from_reader(path, BufReader::with_capacity(1 << 20, gz))
        } else {
            Self::from_reader(path, BufReader::with_capacity(1 << 20, file))
        }
    }

    /// Reads chain data from `reader`; `path` names it in errors.
    pub fn from_reader<R: BufRead>(path: &Path, mut reader: R) -> Result<ChainFile> {
        let bad = |message: String| Error::ChainFile {
            path: path.to_path_buf(),
            message: format!("{} is not a valid chain file: {message}", path.display()),
        };
        // Held whole (a few MB at most) so that it can be read twice: the crate asserts (panics)
        // when one chromosome is given two sizes, so the sizes are checked first.
        let mut text = Vec::new();
        reader
            .read_to_end(&mut text)
            .map_err(|e| bad(e.to_string()))?;
        check_chromosome_sizes(&text).map_err(bad)?;
        // Still guarded: a panic elsewhere in the crate must not take the process down either
        // (the fuzz target `chain_file`, whose panic hook aborts, finds any).
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Builder
                .try_build_from(chainfile::Reader::new(&text[..]))
                .map_err(|e| e.to_string())
        }));
        let machine = match built {
            Ok(Ok(machine)) => machine,
            Ok(Err(e)) => return Err(bad(e)),
            Err(_) => return Err(bad("the chain file reader failed".into())),
        };
        Ok(ChainFile {
            path: path.to_path_buf(),
            machine,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// agct's `Converter.convert_coordinate`: every place the interbase interval `[start, end]`
    /// of `chrom` maps to (empty when none). Like agct, refuses `start > end` on the positive
    /// strand and `start < end` on the negative one.
    pub fn convert(
        &self,
        chrom: &str,
        start: u64,
        end: u64,
        strand: Strand,
    ) -> Result<Vec<Converted>> {
        if start < end && strand == Strand::Negative {
            return Err(Error::InvalidArgument(format!(
                "`start` must be less than `end` on the negative strand: start={start}, end={end}"
            )));
        }
        if start > end && strand == Strand::Positive {
            return Err(Error::InvalidArgument(format!(
                "`end` must be less than `start` on the positive strand: start={start}, end={end}"
            )));
        }
        let strand = match strand {
            Strand::Positive => ChainStrand::Positive,
            Strand::Negative => ChainStrand::Negative,
        };
        let from = Coordinate::new(chrom, strand, start);
        let to = Coordinate::new(chrom, strand, end);
        // agct turns an interval the crate refuses, and no liftover at all, into no results.
        let Ok(interval) = Interval::try_new(from, to) else {
            return Ok(Vec::new());
        };
        let pairs = self.machine.liftover(interval).unwrap_or_default();
        Ok(pairs
            .iter()
            .map(|pair| {
                let query = pair.query();
                Converted {
                    chrom: query.contig().to_string(),
                    start: query.start().position().get(),
                    end: query.end().position().get(),
                    strand: match query.strand() {
                        ChainStrand::Positive => Strand::Positive,
                        ChainStrand::Negative => Strand::Negative,
                    },
                }
            })
            .collect())
    }

    /// AnyVar's `_convert_coordinate`: the one positive-strand place `coordinate` maps to.
    pub fn convert_position(
        &self,
        chrom: &str,
        coordinate: u64,
    ) -> std::result::Result<u64, LiftoverError> {
        let converted = self
            .convert(chrom, coordinate, coordinate, Strand::Positive)
            .expect("a zero-length positive-strand interval is always accepted");
        match converted.as_slice() {
            [one] if one.strand == Strand::Positive => Ok(one.start),
            [] | [_] => Err(LiftoverError::CoordinateConversionFailure),
            _ => Err(LiftoverError::AmbiguousCoordinateConversion),
        }
    }
}

/// Refuses a chain file that gives one chromosome two sizes (on the reference side or on the
/// query side), which the crate's builder asserts against. Headers are read by the crate's own
/// line parser, so they are the ones the builder sees; a line it cannot parse is left for the
/// builder to report.
fn check_chromosome_sizes(text: &[u8]) -> std::result::Result<(), String> {
    let mut sizes = [HashMap::new(), HashMap::new()];
    for line in chainfile::Reader::new(text).lines() {
        let header = match line {
            Ok(chainfile::Line::Header(header)) => header,
            Ok(_) => continue,
            Err(_) => break,
        };
        let sides = [header.reference_sequence(), header.query_sequence()];
        for (side, sequence) in sizes.iter_mut().zip(sides) {
            let (name, size) = (sequence.chromosome_name(), sequence.chromosome_size());
            match side.get(name) {
                Some(&known) if known != size => {
                    return Err(format!(
                        "chromosome {name} is given two sizes, {known} and {size}"
                    ))
                }
                Some(_) => {}
                None => {
                    side.insert(name.to_string(), size);
                }
            }
        }
    }
    Ok(())
}

/// The names a chain file from `from` to `from.other()` may have in the chain directory, in the
/// order they are tried: agct's (wags-tails keeps it unpacked), then UCSC's.
pub fn chain_file_names(from: Assembly) -> [String; 3] {
    let (f, t) = (from.ucsc(), from.other().ucsc());
    let title = |s: &str| format!("{}{}", s[..1].to_ascii_uppercase(), &s[1..]);
    [
        format!("chainfile_{f}_to_{t}_.chain"),
        format!("{f}To{}.over.chain.gz", title(t)),
        format!("{f}To{}.over.chain", title(t)),
    ]
}

/// The chain file from `from` in `dir`, or an error naming what was looked for.
pub fn find_chain_file(dir: &Path, from: Assembly) -> Result<PathBuf> {
    let names = chain_file_names(from);
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::ChainFile {
            path: dir.join(&names[1]),
            message: format!(
                "no {} to {} liftover chain file in {}: looked for {}",
                from.ucsc(),
                from.other().ucsc(),
                dir.display(),
                names.join(", ")
            ),
        })
}

/// The sequence an assembly's chromosome is in `source`: `chr7`, else `7`.
fn chromosome(
    source: &SequenceSource,
    assembly: Assembly,
    chrom: &str,
) -> Result<Option<Arc<Contig>>> {
    if let Some(c) = source.resolve(assembly.name(), chrom)? {
        return Ok(Some(c));
    }
    match chrom.strip_prefix("chr") {
        Some(bare) => source.resolve(assembly.name(), bare),
        None => Ok(None),
    }
}

/// agct's `get_seqinfo_from_refget_id`, answered by the source's aliases: the assembly and
/// chromosome of the sequence `accession`, GRCh38 first.
pub fn locate(
    source: &SequenceSource,
    accession: &str,
) -> Result<Option<(Assembly, &'static str)>> {
    for assembly in [Assembly::GRCh38, Assembly::GRCh37] {
        for chrom in CHROMOSOMES {
            if let Some(c) = chromosome(source, assembly, chrom)? {
                if &*c.accession == accession {
                    return Ok(Some((assembly, chrom)));
                }
            }
        }
    }
    Ok(None)
}

/// Both chain files, GRCh38 -> GRCh37 and GRCh37 -> GRCh38.
#[derive(Debug)]
pub struct Liftover {
    from_grch38: ChainFile,
    from_grch37: ChainFile,
}

/// What one liftover step gives besides the allele: the target sequence (to normalize on).
struct Lifted {
    allele: Allele,
    contig: Arc<Contig>,
}

impl Liftover {
    /// Reads both chain files from `dir` (see [`chain_file_names`]). Nothing is downloaded.
    pub fn open(dir: &Path) -> Result<Liftover> {
        let to_37 = find_chain_file(dir, Assembly::GRCh38)?;
        let to_38 = find_chain_file(dir, Assembly::GRCh37)?;
        Ok(Liftover::new(
            ChainFile::open(&to_37)?,
            ChainFile::open(&to_38)?,
        ))
    }

    pub fn new(grch38_to_grch37: ChainFile, grch37_to_grch38: ChainFile) -> Liftover {
        Liftover {
            from_grch38: grch38_to_grch37,
            from_grch37: grch37_to_grch38,
        }
    }

    /// The chain file that lifts from `from`.
    pub fn chain(&self, from: Assembly) -> &ChainFile {
        match from {
            Assembly::GRCh38 => &self.from_grch38,
            Assembly::GRCh37 => &self.from_grch37,
        }
    }

    /// AnyVar's `get_liftover_variant`: the allele moved to the other assembly, its state kept
    /// and its identifiers recomputed (not normalized, no round trip).
    pub fn lift_once(
        &self,
        source: &SequenceSource,
        allele: &Allele,
    ) -> Result<std::result::Result<Allele, LiftoverError>> {
        Ok(self.step(source, allele)?.map(|l| l.allele))
    }

    fn step(
        &self,
        source: &SequenceSource,
        allele: &Allele,
    ) -> Result<std::result::Result<Lifted, LiftoverError>> {
        let Some((from, chrom)) = locate(source, &allele.accession)? else {
            return Ok(Err(LiftoverError::UnsupportedReferenceAssembly));
        };
        let chain = self.chain(from);
        let start = match chain.convert_position(chrom, allele.start) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let end = match chain.convert_position(chrom, allele.end) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let Some(contig) = chromosome(source, from.other(), chrom)? else {
            return Ok(Err(LiftoverError::AccessionConversion));
        };
        let mut buf = Vec::new();
        let lifted = identify(
            &mut buf,
            &contig.accession,
            NormalizedAllele {
                start,
                end,
                state: allele.state.clone(),
            },
            &mut None,
        );
        Ok(Ok(Lifted {
            allele: lifted,
            contig,
        }))
    }

    /// What AnyVar's `add_liftover_mapping` registers: the allele lifted to the other assembly,
    /// lifted back to check that it returns to the same identifier, then normalized on the
    /// target reference as vrs-python's `normalize` does (a LiteralSequenceExpression state is
    /// normalized; a ReferenceLengthExpression one is kept as lifted).
    ///
    /// Unlike AnyVar, whose stored object keeps the identifier of the allele before
    /// normalization (vrs-python's `normalize` does not recompute it), the result is identified
    /// after normalization. A lifted interval that is inverted or runs past the end of the
    /// target sequence (chain and reference disagree) is a
    /// [`LiftoverError::CoordinateConversionFailure`].
    pub fn lift(
        &self,
        source: &SequenceSource,
        allele: &Allele,
    ) -> Result<std::result::Result<Allele, LiftoverError>> {
        let lifted = match self.step(source, allele)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let back = match self.step(source, &lifted.allele)? {
            Ok(b) => b.allele,
            Err(e) => return Ok(Err(e)),
        };
        if back.digest != allele.digest {
            return Ok(Err(LiftoverError::RoundtripMismatch {
                roundtripped: back.id(),
                initial: allele.id(),
            }));
        }
        let Lifted {
            allele: lifted,
            contig,
        } = lifted;
        let State::Literal { sequence } = &lifted.state else {
            return Ok(Ok(lifted));
        };
        if lifted.start > lifted.end || lifted.end > contig.length {
            return Ok(Err(LiftoverError::CoordinateConversionFailure));
        }
        let mut reader = source.reader();
        let mut view = reader.view(&contig);
        let mut slice = Vec::with_capacity((lifted.end - lifted.start) as usize);
        view.extend(lifted.start, lifted.end, &mut slice)?;
        let alt = sequence.to_ascii_uppercase();
        let normalized = normalize(&mut view, lifted.start, lifted.end, &slice, &alt)?;
        let mut buf = Vec::new();
        Ok(Ok(identify(
            &mut buf,
            &contig.accession,
            normalized,
            &mut None,
        )))
    }
}

impl Liftover {
    /// [`Liftover::lift`] of each allele (a registration batch), in parallel, in order.
    pub fn lift_many(
        &self,
        source: &SequenceSource,
        alleles: &[Allele],
    ) -> Result<Vec<std::result::Result<Allele, LiftoverError>>> {
        use rayon::prelude::*;
        alleles.par_iter().map(|a| self.lift(source, a)).collect()
    }

    /// AnyVar's liftover of a copy number (`get_liftover_variant` and `add_liftover_mapping`):
    /// each bound of start and end converted as a position is (a range's open side stays
    /// open), the location moved to the other assembly and identified anew, checked by lifting
    /// it back; copy numbers are not normalized.
    pub fn lift_copy_number(
        &self,
        source: &SequenceSource,
        cn: &CopyNumber,
    ) -> Result<std::result::Result<CopyNumber, LiftoverError>> {
        let lifted = match self.step_copy_number(source, cn)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let back = match self.step_copy_number(source, &lifted)? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        if back.digest != cn.digest {
            return Ok(Err(LiftoverError::RoundtripMismatch {
                roundtripped: back.id(),
                initial: cn.id(),
            }));
        }
        Ok(Ok(lifted))
    }

    fn step_copy_number(
        &self,
        source: &SequenceSource,
        cn: &CopyNumber,
    ) -> Result<std::result::Result<CopyNumber, LiftoverError>> {
        let location = &cn.location;
        let (Some(start), Some(end)) = (&location.start, &location.end) else {
            return Ok(Err(LiftoverError::UnsupportedVariantLocationType));
        };
        let Some((from, chrom)) = locate(source, &location.accession)? else {
            return Ok(Err(LiftoverError::UnsupportedReferenceAssembly));
        };
        let chain = self.chain(from);
        let position = |p: &Option<u64>| p.map(|p| chain.convert_position(chrom, p)).transpose();
        let bound = |b: &Bound<u64>| match b {
            Bound::Number(p) => chain.convert_position(chrom, *p).map(Bound::Number),
            Bound::Range(low, high) => Ok(Bound::Range(position(low)?, position(high)?)),
        };
        let (start, end) = match (bound(start), bound(end)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let Some(contig) = chromosome(source, from.other(), chrom)? else {
            return Ok(Err(LiftoverError::AccessionConversion));
        };
        let moved = Location {
            accession: contig.accession.to_string(),
            start: Some(start),
            end: Some(end),
        };
        Ok(Ok(CopyNumber::new(moved, cn.kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain from `a` (100 bp) to `b` (120 bp): `a[10,40)` -> `b[20,50)`, a 5-bp gap on `a`
    /// and 15 on `b`, then `a[45,60)` -> `b[65,80)`; and `a[70,90)` -> `b` reversed.
    const CHAIN: &str = "\
chain 1000 a 100 + 10 60 b 120 + 20 80 1
30\t5\t15
15

chain 500 a 100 + 70 90 b 120 - 0 20 2
20

";

    fn chain(text: &str) -> ChainFile {
        ChainFile::from_reader(Path::new("test.chain"), text.as_bytes()).unwrap()
    }

    #[test]
    fn points_inside_blocks_convert_and_block_starts_do_not() {
        let c = chain(CHAIN);
        // chainfile finds blocks with start < c < end, so a block's first boundary converts
        // only when another block ends after it.
        assert_eq!(
            c.convert_position("a", 10),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        assert_eq!(c.convert_position("a", 11), Ok(21));
        assert_eq!(c.convert_position("a", 39), Ok(49));
        assert_eq!(
            c.convert_position("a", 40),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        assert_eq!(
            c.convert_position("a", 42),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        assert_eq!(c.convert_position("a", 46), Ok(66));
        assert_eq!(c.convert_position("a", 59), Ok(79));
        assert_eq!(
            c.convert_position("a", 60),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        assert_eq!(
            c.convert_position("zz", 20),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        // Maps only to the negative strand: AnyVar's open issue #197, a failure.
        assert_eq!(
            c.convert_position("a", 75),
            Err(LiftoverError::CoordinateConversionFailure)
        );
        assert_eq!(
            c.convert("a", 75, 75, Strand::Positive).unwrap(),
            vec![Converted {
                chrom: "b".into(),
                start: 115,
                end: 115,
                strand: Strand::Negative
            }]
        );
    }

    #[test]
    fn intervals_and_argument_checks_follow_agct() {
        let c = chain(CHAIN);
        assert_eq!(
            c.convert("a", 15, 50, Strand::Positive).unwrap(),
            vec![
                Converted {
                    chrom: "b".into(),
                    start: 25,
                    end: 50,
                    strand: Strand::Positive
                },
                Converted {
                    chrom: "b".into(),
                    start: 65,
                    end: 70,
                    strand: Strand::Positive
                },
            ]
        );
        assert!(c.convert("a", 20, 10, Strand::Positive).is_err());
        assert!(c.convert("a", 10, 20, Strand::Negative).is_err());
        assert!(c.convert("a", 20, 10, Strand::Negative).unwrap().is_empty());
    }

    #[test]
    fn overlapping_chains_are_ambiguous() {
        let text = "chain 10 a 100 + 0 50 b 100 + 0 50 1\n50\n\nchain 5 a 100 + 20 40 c 100 + 0 20 2\n20\n\n";
        let c = chain(text);
        assert_eq!(
            c.convert_position("a", 30),
            Err(LiftoverError::AmbiguousCoordinateConversion)
        );
        assert_eq!(c.convert_position("a", 10), Ok(10));
        // Only the other chain's inside: the boundary 20 is inside the first chain only.
        assert_eq!(c.convert_position("a", 20), Ok(20));
    }

    #[test]
    fn gzip_and_bad_files() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.chain.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(CHAIN.as_bytes()).unwrap();
        enc.finish().unwrap();
        assert_eq!(
            ChainFile::open(&gz).unwrap().convert_position("a", 11),
            Ok(21)
        );

        let bad = dir.path().join("bad.chain");
        std::fs::write(&bad, "chain x\n").unwrap();
        let e = ChainFile::open(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.chain is not a valid chain file: "), "{e}");
        assert!(e.contains("expected 13 fields, found 2 fields"), "{e}");
        let sizes = "chain 1 a 100 + 0 10 b 100 + 0 10 1\n10\n\nchain 1 a 90 + 20 30 b 100 + 20 30 2\n10\n\n";
        std::fs::write(&bad, sizes).unwrap();
        // Refused before the crate's builder, which would assert (found by the fuzz target).
        let e = ChainFile::open(&bad).unwrap_err().to_string();
        assert!(
            e.contains("chromosome a is given two sizes, 100 and 90"),
            "{e}"
        );
        let e = ChainFile::open(&dir.path().join("none.chain"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.chain"), "{e}");
    }

    #[test]
    fn two_sizes_of_one_query_chromosome_are_an_error_not_a_panic() {
        // Found by the fuzz target chain_file: the crate's builder asserted.
        let text = CHAIN.replacen("b 120", "b 102", 1);
        let e = ChainFile::from_reader(Path::new("t.chain"), text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("chromosome b is given two sizes, 102 and 120"),
            "{e}"
        );
    }

    #[test]
    fn chain_directory_names() {
        assert_eq!(
            chain_file_names(Assembly::GRCh38),
            [
                "chainfile_hg38_to_hg19_.chain".to_string(),
                "hg38ToHg19.over.chain.gz".into(),
                "hg38ToHg19.over.chain".into()
            ]
        );
        assert_eq!(
            chain_file_names(Assembly::GRCh37)[1],
            "hg19ToHg38.over.chain.gz"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = Liftover::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("hg38ToHg19.over.chain.gz"), "{e}");
        assert!(e.contains("chainfile_hg38_to_hg19_.chain"), "{e}");
        std::fs::write(dir.path().join("chainfile_hg38_to_hg19_.chain"), CHAIN).unwrap();
        let e = Liftover::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("no hg19 to hg38 liftover chain file in "),
            "{e}"
        );
        std::fs::write(dir.path().join("hg19ToHg38.over.chain"), CHAIN).unwrap();
        assert!(Liftover::open(dir.path()).is_ok());
    }

    #[test]
    fn messages_are_anyvars() {
        assert_eq!(
            LiftoverError::CoordinateConversionFailure.to_string(),
            "Unable to complete liftover: Could not convert start and/or end position(s)"
        );
        assert_eq!(
            LiftoverError::RoundtripMismatch {
                roundtripped: "ga4gh:VA.x".into(),
                initial: "ga4gh:VA.y".into()
            }
            .to_string(),
            "Unable to complete liftover: Roundtripped lifted-over id `ga4gh:VA.x` does not match initial value of ga4gh:VA.y"
        );
    }

    /// A SeqRepo instance (the two tables and one plain indexed FASTA) holding `seqs` as
    /// `(assembly, alias, residues)`.
    fn seqrepo(dir: &Path, seqs: &[(&str, &str, &[u8])]) -> SequenceSource {
        let instance = dir.join("instance");
        let sequences = instance.join("sequences");
        std::fs::create_dir_all(&sequences).unwrap();
        let aliases = rusqlite::Connection::open(instance.join("aliases.sqlite3")).unwrap();
        aliases
            .execute_batch("CREATE TABLE seqalias (seq_id TEXT, namespace TEXT, alias TEXT, is_current INTEGER)")
            .unwrap();
        let info = rusqlite::Connection::open(sequences.join("db.sqlite3")).unwrap();
        info.execute_batch(
            "CREATE TABLE seqinfo (seq_id TEXT, len INTEGER, relpath TEXT, added TEXT)",
        )
        .unwrap();
        let (mut fasta, mut fai) = (String::new(), String::new());
        for (assembly, alias, residues) in seqs {
            let id = crate::vrs::digest::sha512t24u(residues).to_string();
            aliases
                .execute(
                    "INSERT INTO seqalias VALUES (?1, ?2, ?3, 1)",
                    (&id, assembly, alias),
                )
                .unwrap();
            let len = residues.len();
            info.execute(
                "INSERT INTO seqinfo VALUES (?1, ?2, 'all.fa', '2024-01-01')",
                (&id, len as i64),
            )
            .unwrap();
            let header = format!(">{id}\n");
            let offset = fasta.len() + header.len();
            fasta.push_str(&header);
            fasta.push_str(std::str::from_utf8(residues).unwrap());
            fasta.push('\n');
            fai.push_str(&format!("{id}\t{len}\t{offset}\t{len}\t{}\n", len + 1));
        }
        std::fs::write(sequences.join("all.fa"), fasta).unwrap();
        std::fs::write(sequences.join("all.fa.fai"), fai).unwrap();
        SequenceSource::open(&format!("seqrepo+file://{}", instance.display()), None).unwrap()
    }

    /// Pseudo-random residues without long repeats.
    fn residues(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b"ACGT"[(x >> 33) as usize % 4]
            })
            .collect()
    }

    struct Genome {
        _dir: tempfile::TempDir,
        source: SequenceSource,
        liftover: Liftover,
        chr1_38: Vec<u8>,
    }

    /// GRCh38 and GRCh37 of a small synthetic genome, and chains between them:
    /// * chr1: GRCh37 has 10 extra bases at 100, and `TAAAG` at [58,63) where GRCh38 has `TCAGG`;
    ///   GRCh37's chr1 is known by the bare alias `1` only;
    /// * chr2: GRCh38 only (the chain maps it, the source has no GRCh37 chr2);
    /// * chr3: [0,50) maps to two places of GRCh37 chr3;
    /// * chr4: GRCh37 -> GRCh38 is not the inverse of GRCh38 -> GRCh37 (off by 5);
    /// * chr5: maps to the negative strand.
    fn genome() -> Genome {
        let mut chr1_38 = residues(200, 1);
        chr1_38[58..63].copy_from_slice(b"TCAGG");
        let mut chr1_37 = [&chr1_38[..100], b"GATTACAGAT", &chr1_38[100..]].concat();
        chr1_37[59..62].copy_from_slice(b"AAA");
        let (chr2, chr3, chr4_38, chr4_37, chr5) = (
            residues(50, 2),
            residues(60, 3),
            residues(110, 4),
            residues(100, 5),
            residues(40, 6),
        );
        let dir = tempfile::tempdir().unwrap();
        let source = seqrepo(
            dir.path(),
            &[
                ("GRCh38", "chr1", &chr1_38),
                ("GRCh37", "1", &chr1_37),
                ("GRCh38", "chr2", &chr2),
                ("GRCh38", "chr3", &chr3),
                ("GRCh37", "chr3", &residues(120, 7)),
                ("GRCh38", "chr4", &chr4_38),
                ("GRCh37", "chr4", &chr4_37),
                ("GRCh38", "chr5", &chr5),
                ("GRCh37", "chr5", &residues(40, 8)),
            ],
        );
        let to_37 = "\
chain 10 chr1 200 + 0 200 chr1 210 + 0 210 1
100\t0\t10
100

chain 10 chr2 50 + 0 50 chr2 50 + 0 50 2
50

chain 10 chr3 60 + 0 50 chr3 120 + 0 50 3
50

chain 9 chr3 60 + 0 50 chr3 120 + 60 110 4
50

chain 10 chr4 110 + 0 100 chr4 100 + 0 100 5
100

chain 10 chr5 40 + 0 40 chr5 40 - 0 40 6
40

";
        let to_38 = "\
chain 10 chr1 210 + 0 210 chr1 200 + 0 200 1
100\t10\t0
100

chain 10 chr4 100 + 0 100 chr4 110 + 5 105 2
100

";
        let liftover = Liftover::new(chain(to_37), chain(to_38));
        Genome {
            _dir: dir,
            source,
            liftover,
            chr1_38,
        }
    }

    fn allele(
        source: &SequenceSource,
        asm: &str,
        chrom: &str,
        start: u64,
        end: u64,
        state: State,
    ) -> Allele {
        let contig = source.resolve(asm, chrom).unwrap().unwrap();
        identify(
            &mut Vec::new(),
            &contig.accession,
            NormalizedAllele { start, end, state },
            &mut None,
        )
    }

    fn literal(s: &str) -> State {
        State::Literal {
            sequence: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn alleles_lift_both_ways_and_back() {
        let g = genome();
        let chr1_37 = g.source.resolve("GRCh37", "1").unwrap().unwrap();
        let other = |b: &u8| match b {
            b'A' => 'C',
            _ => 'A',
        };
        let alt: String = g.chr1_38[150..151].iter().map(other).collect();
        let snv = allele(&g.source, "GRCh38", "chr1", 150, 151, literal(&alt));
        let lifted = g.liftover.lift(&g.source, &snv).unwrap().unwrap();
        assert_eq!(
            (&*lifted.accession, lifted.start, lifted.end),
            (&*chr1_37.accession, 160, 161)
        );
        assert_eq!(lifted.state, snv.state);
        assert_eq!(
            lifted,
            g.liftover.lift_once(&g.source, &snv).unwrap().unwrap()
        );
        // And from GRCh37 back to GRCh38.
        let down = g.liftover.lift(&g.source, &lifted).unwrap().unwrap();
        assert_eq!(down, snv);
        // Before the inserted bases, coordinates are kept.
        let alt: String = g.chr1_38[20..22].iter().map(other).collect();
        let early = allele(&g.source, "GRCh38", "chr1", 20, 22, literal(&alt));
        let lifted = g.liftover.lift(&g.source, &early).unwrap().unwrap();
        assert_eq!((lifted.start, lifted.end), (20, 22));
        // A ReferenceLengthExpression is lifted as it is, not normalized again.
        let rle = allele(
            &g.source,
            "GRCh38",
            "chr1",
            170,
            172,
            State::reference_length(4, 2, &g.chr1_38[170..172].repeat(2)),
        );
        let lifted = g.liftover.lift(&g.source, &rle).unwrap().unwrap();
        assert_eq!(
            (lifted.start, lifted.end, &lifted.state),
            (180, 182, &rle.state)
        );
        // Many at once: each as one at a time, in order.
        let batch = [snv.clone(), early.clone(), rle.clone()];
        let one: Vec<_> = (batch.iter())
            .map(|a| g.liftover.lift(&g.source, a).unwrap())
            .collect();
        assert_eq!(g.liftover.lift_many(&g.source, &batch).unwrap(), one);
    }

    #[test]
    fn copy_numbers_lift_bound_by_bound() {
        use crate::copy_number::{CopyChange, Kind};
        let g = genome();
        let chr1_38 = g.source.resolve("GRCh38", "chr1").unwrap().unwrap();
        let chr1_37 = g.source.resolve("GRCh37", "1").unwrap().unwrap();
        let at = |accession: &str, start, end| Location {
            accession: accession.to_string(),
            start: Some(start),
            end: Some(end),
        };
        // Past the 10 inserted bases: +10 on GRCh37; a range keeps its open side open.
        let count = CopyNumber::new(
            at(
                &chr1_38.accession,
                Bound::Range(None, Some(150)),
                Bound::Number(160),
            ),
            Kind::Count(Bound::Number(3)),
        );
        let lifted = g
            .liftover
            .lift_copy_number(&g.source, &count)
            .unwrap()
            .unwrap();
        assert_eq!(
            lifted.location,
            at(
                &chr1_37.accession,
                Bound::Range(None, Some(160)),
                Bound::Number(170)
            )
        );
        assert_eq!(lifted.kind, count.kind);
        assert_ne!(lifted.digest, count.digest);
        let back = g
            .liftover
            .lift_copy_number(&g.source, &lifted)
            .unwrap()
            .unwrap();
        assert_eq!(back, count);
        // No end: AnyVar's unsupported location; an unknown sequence: its unsupported assembly.
        let loss = Kind::Change(CopyChange::parse("complete genomic loss").unwrap());
        let open = CopyNumber::new(
            Location {
                end: None,
                ..at(&chr1_38.accession, Bound::Number(5), Bound::Number(6))
            },
            loss,
        );
        assert_eq!(
            g.liftover.lift_copy_number(&g.source, &open).unwrap(),
            Err(LiftoverError::UnsupportedVariantLocationType)
        );
        let elsewhere = CopyNumber::new(at("SQ.nowhere", Bound::Number(5), Bound::Number(6)), loss);
        assert_eq!(
            g.liftover.lift_copy_number(&g.source, &elsewhere).unwrap(),
            Err(LiftoverError::UnsupportedReferenceAssembly)
        );
    }

    #[test]
    fn lifted_alleles_are_normalized_on_the_target_reference() {
        let g = genome();
        // Deleting the A of GRCh38's CAG is, on GRCh37's AAA, a deletion in a homopolymer.
        let deletion = allele(&g.source, "GRCh38", "chr1", 60, 61, literal(""));
        let once = g.liftover.lift_once(&g.source, &deletion).unwrap().unwrap();
        assert_eq!((once.start, once.end, &once.state), (60, 61, &literal("")));
        let lifted = g.liftover.lift(&g.source, &deletion).unwrap().unwrap();
        assert_eq!(
            (lifted.start, lifted.end, &lifted.state),
            (59, 62, &State::reference_length(2, 1, b"AA"))
        );
        assert_ne!(lifted.digest, once.digest);
    }

    #[test]
    fn each_failure_is_anyvars() {
        let g = genome();
        let lift = |a: &Allele| g.liftover.lift(&g.source, a).unwrap().unwrap_err();
        // Block boundaries: 100 ends one block and starts the next, 0 starts the chain.
        for (s, e) in [(100, 101), (99, 100), (0, 1)] {
            let a = allele(&g.source, "GRCh38", "chr1", s, e, literal("T"));
            assert_eq!(
                lift(&a),
                LiftoverError::CoordinateConversionFailure,
                "{s}-{e}"
            );
        }
        let a = allele(&g.source, "GRCh38", "chr2", 10, 11, literal("T"));
        assert_eq!(lift(&a), LiftoverError::AccessionConversion);
        let a = allele(&g.source, "GRCh38", "chr3", 10, 11, literal("T"));
        assert_eq!(lift(&a), LiftoverError::AmbiguousCoordinateConversion);
        let a = allele(&g.source, "GRCh38", "chr3", 55, 56, literal("T"));
        assert_eq!(lift(&a), LiftoverError::CoordinateConversionFailure);
        let a = allele(&g.source, "GRCh38", "chr5", 10, 11, literal("T"));
        assert_eq!(lift(&a), LiftoverError::CoordinateConversionFailure);
        let a = allele(&g.source, "GRCh38", "chr4", 10, 11, literal("T"));
        let lifted = g.liftover.lift_once(&g.source, &a).unwrap().unwrap();
        let back = g.liftover.lift_once(&g.source, &lifted).unwrap().unwrap();
        assert_eq!(back.start, 15);
        assert_eq!(
            lift(&a),
            LiftoverError::RoundtripMismatch {
                roundtripped: back.id(),
                initial: a.id()
            }
        );
        let mut unknown = a.clone();
        unknown.accession = "SQ.0123456789abcdefghijklmnopqrstuv".into();
        assert_eq!(lift(&unknown), LiftoverError::UnsupportedReferenceAssembly);
    }
}
