//! The allele engine: from a gnomAD/VCF-style `CHROM-POS-REF-ALT` (or a position, reference
//! and ALT on a resolved sequence) to a validated, normalized and identified VRS Allele, exactly
//! as vrs-python's annotator computes it (spec 3.2–3.5). VCF annotation (`crate::vcf`) and the
//! translation of registry definitions (`crate::translate`) both go through [`Annotator`], so
//! a definition and a VCF record of the same variant always get the same allele; computed
//! alleles leave through an [`AlleleSink`] (the registry's bulk loader).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::sequence::{Contig, SequenceReader, SequenceSource};
use crate::vrs::digest::Digest;
use crate::vrs::identify::identify;
use crate::vrs::model::Allele;
use crate::vrs::normalize::{normalize, Reference};

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub assembly: String,
    pub for_ref: bool,
    pub vrs_attributes: bool,
    pub require_validation: bool,
}

/// Per-worker state: sequence reader with its cache, resolved contigs and scratch buffers.
pub struct Annotator<'s> {
    source: &'s SequenceSource,
    options: &'s RecordOptions,
    reader: SequenceReader,
    contigs: HashMap<Vec<u8>, Option<Arc<Contig>>>,
    digest_buf: Vec<u8>,
    slice: Vec<u8>,
    upper: Vec<u8>,
    expr: Vec<u8>,
    entries: Vec<Option<Allele>>,
}

/// What one record's annotation came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// One entry per annotated allele (REF first when `for_ref`), `None` for "no allele".
    Alleles,
    /// The record's single `VRS_Error` message (unescaped).
    Error(String),
}

/// The IUPAC letters vrs-python's gnomAD-style pattern accepts (case-insensitive).
fn is_allele_letter(b: u8) -> bool {
    matches!(
        b.to_ascii_uppercase(),
        b'A' | b'C'
            | b'G'
            | b'T'
            | b'U'
            | b'R'
            | b'Y'
            | b'K'
            | b'M'
            | b'S'
            | b'W'
            | b'B'
            | b'D'
            | b'H'
            | b'V'
            | b'N'
    )
}

/// CHROM, POS, REF and ALT as the pattern captured them.
type Expression<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8]);

/// vrs-python's `(?P<chr>[^-]+)-(?P<pos>\d+)-(?P<ref>[ACGTURYKMSWBDHVN]+)-(?P<alt>[ACGTURYKMSWBDHVN]+)`
/// with `re.match`: anchored at the start only, so anything after the ALT letters is ignored.
/// None of the classes contains `-`, so greedy matching never needs to backtrack.
pub(crate) fn parse_expression(s: &[u8]) -> Option<Expression<'_>> {
    let dash = memchr::memchr(b'-', s)?;
    let (chr, rest) = (&s[..dash], &s[dash + 1..]);
    if chr.is_empty() {
        return None;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b'-') {
        return None;
    }
    let (pos, rest) = (&rest[..digits], &rest[digits + 1..]);
    let letters = rest.iter().take_while(|b| is_allele_letter(**b)).count();
    if letters == 0 || rest.get(letters) != Some(&b'-') {
        return None;
    }
    let (reference, rest) = (&rest[..letters], &rest[letters + 1..]);
    let letters = rest.iter().take_while(|b| is_allele_letter(**b)).count();
    if letters == 0 {
        return None;
    }
    Some((chr, pos, reference, &rest[..letters]))
}

/// Breakend ALTs (`G]chr2:10]`, `[chr2:5[A`, single breakends `G.`/`.G`) are no allele. vrs-python
/// turns those that start with bases into the bases alone (spec 3.8.1); we do not (spec 6.3).
fn is_breakend(alt: &[u8]) -> bool {
    alt.contains(&b'[')
        || alt.contains(&b']')
        || (alt.len() > 1 && (alt[0] == b'.' || alt[alt.len() - 1] == b'.'))
}

impl<'s> Annotator<'s> {
    pub fn new(source: &'s SequenceSource, options: &'s RecordOptions) -> Self {
        Annotator {
            source,
            options,
            reader: source.reader(),
            contigs: HashMap::new(),
            digest_buf: Vec::with_capacity(256),
            slice: Vec::new(),
            upper: Vec::new(),
            expr: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// The alleles of the last [`Annotator::annotate`] that returned [`Outcome::Alleles`].
    pub fn entries(&self) -> &[Option<Allele>] {
        &self.entries
    }

    /// Moves the alleles of [`Annotator::entries`] out (to a sink), leaving none.
    pub fn take_entries(&mut self) -> impl Iterator<Item = Allele> + '_ {
        self.entries.drain(..).flatten()
    }

    fn contig(&mut self, chr: &[u8]) -> Result<Option<Arc<Contig>>> {
        if let Some(hit) = self.contigs.get(chr) {
            return Ok(hit.clone());
        }
        let found = match std::str::from_utf8(chr) {
            // A `:` in CHROM makes `assembly:CHROM` unparseable for the data proxy.
            Ok(name) if !name.contains(':') => self.source.resolve(&self.options.assembly, name)?,
            _ => None,
        };
        self.contigs.insert(chr.to_vec(), found.clone());
        Ok(found)
    }

    /// Annotates one record given its CHROM, POS (digits), REF and ALT columns.
    /// `Err` is reserved for failures of the sequence source itself (they stop the run).
    pub fn annotate(
        &mut self,
        chrom: &[u8],
        pos: &[u8],
        reference: &[u8],
        alts: &[u8],
    ) -> Result<Outcome> {
        self.entries.clear();
        let mut location: Option<(u64, u64, Digest)> = None;
        if self.options.for_ref {
            match self.allele(chrom, pos, reference, reference, &mut location)? {
                Ok(a) => self.entries.push(a),
                Err(message) => return Ok(Outcome::Error(message)),
            }
        }
        if alts != b"." {
            let star_outside_alts = chrom.contains(&b'*') || reference.contains(&b'*');
            for alt in alts.split(|b| *b == b',') {
                if star_outside_alts || alt.contains(&b'*') || is_breakend(alt) {
                    self.entries.push(None);
                    continue;
                }
                match self.allele(chrom, pos, reference, alt, &mut location)? {
                    Ok(a) => self.entries.push(a),
                    Err(message) => return Ok(Outcome::Error(message)),
                }
            }
        }
        Ok(Outcome::Alleles)
    }

    /// The allele of one ALT (`*`, breakends and unparsable ALTs give `None`), as
    /// vectorised lookups need it. The inner `Err` is the record-level error message.
    pub fn alt_allele(
        &mut self,
        chrom: &[u8],
        pos: &[u8],
        reference: &[u8],
        alt: &[u8],
    ) -> Result<Result<Option<Allele>, String>> {
        if chrom.contains(&b'*')
            || reference.contains(&b'*')
            || alt.contains(&b'*')
            || is_breakend(alt)
        {
            return Ok(Ok(None));
        }
        let mut location = None;
        self.allele(chrom, pos, reference, alt, &mut location)
    }

    /// Builds one allele: parse, resolve, validate, normalize, identify. The inner `Err` is a
    /// record-level error message (the record's `VRS_Error`).
    fn allele(
        &mut self,
        chrom: &[u8],
        pos: &[u8],
        reference: &[u8],
        alt: &[u8],
        location: &mut Option<(u64, u64, Digest)>,
    ) -> Result<Result<Option<Allele>, String>> {
        // Parse the gnomAD-style expression `CHROM-POS-REF-ALT` as vrs-python does.
        let mut expr = std::mem::take(&mut self.expr);
        expr.clear();
        for (i, part) in [chrom, pos, reference, alt].into_iter().enumerate() {
            if i > 0 {
                expr.push(b'-');
            }
            expr.extend_from_slice(part);
        }
        let result = self.allele_from_expression(&expr, location);
        self.expr = expr;
        result
    }

    fn allele_from_expression(
        &mut self,
        expr: &[u8],
        location: &mut Option<(u64, u64, Digest)>,
    ) -> Result<Result<Option<Allele>, String>> {
        let Some((chr, pos, reference, alt)) = parse_expression(expr) else {
            return Ok(Ok(None));
        };
        let Some(contig) = self.contig(chr)? else {
            return Ok(Ok(None));
        };
        let Ok(pos) = std::str::from_utf8(pos).unwrap_or("").parse::<u64>() else {
            return Ok(Ok(None));
        };
        if pos == 0 {
            // The message vrs-python's FASTA reader gives for a negative start.
            return Ok(Err("start out of range (-1)".into()));
        }
        // `options` outlives `self`'s borrow, so the message closure does not hold `self`.
        let options = self.options;
        let name = || format!("{}:{}", options.assembly, String::from_utf8_lossy(chr));
        self.allele_on(
            &contig,
            &name,
            pos - 1,
            Checked::Given(reference),
            alt,
            location,
        )
    }

    /// Validates, normalizes and identifies the allele replacing `[start, start + len)` of
    /// `contig` by `alt`. `name` names the sequence in error messages.
    pub(crate) fn allele_on(
        &mut self,
        contig: &Contig,
        name: &dyn Fn() -> String,
        start: u64,
        reference: Checked<'_>,
        alt: &[u8],
        location: &mut Option<(u64, u64, Digest)>,
    ) -> Result<Result<Option<Allele>, String>> {
        let ref_len = match reference {
            Checked::Given(r) => r.len() as u64,
            Checked::Length(n) => n,
        };
        let length = contig.length;
        // A position near u64::MAX (POS, SPDI and HGVS positions are read as u64) must not wrap
        // round to a small end (found by the fuzz target definitions).
        let Some(end) = start.checked_add(ref_len) else {
            return Ok(Err(format!(
                "Reference allele runs past the end of {} (length {length}) at position {start}",
                name()
            )));
        };
        let mut view = self.reader.view(contig);
        self.slice.clear();
        if start < length {
            view.extend(start, end.min(length), &mut self.slice)?;
        }
        if let Checked::Given(given) = reference {
            self.upper.clear();
            self.upper.extend(given.iter().map(u8::to_ascii_uppercase));
            if self.slice != self.upper && self.options.require_validation {
                return Ok(Err(format!(
                    "Reference mismatch at {} position {start}-{end} (input gave '{}' but correct ref is '{}')",
                    name(),
                    String::from_utf8_lossy(&self.upper),
                    String::from_utf8_lossy(&self.slice),
                )));
            }
        }
        if end > length {
            // vrs-python builds a location past the sequence end here; we refuse (spec 6.6).
            return Ok(Err(format!(
                "Reference allele runs past the end of {} (length {length}) at position {start}-{end}",
                name()
            )));
        }
        let alt_upper: Vec<u8> = alt.iter().map(u8::to_ascii_uppercase).collect();
        let normalized = normalize(&mut view, start, end, &self.slice, &alt_upper)?;
        let allele = identify(
            &mut self.digest_buf,
            &contig.accession,
            normalized,
            location,
        );
        Ok(Ok(Some(allele)))
    }

    /// The reference residues of `[start, end)` (clamped to the contig), upper-case.
    pub(crate) fn residues(&mut self, contig: &Contig, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let end = end.min(contig.length);
        if start < end {
            self.reader.view(contig).extend(start, end, &mut out)?;
        }
        Ok(out)
    }

    pub(crate) fn source(&self) -> &SequenceSource {
        self.source
    }
}

/// What is known of the replaced reference bases.
#[derive(Clone, Copy)]
pub(crate) enum Checked<'a> {
    /// Given by the input: validated when the options ask for it.
    Given(&'a [u8]),
    /// Only a length (HGVS `del`, `dup`, `ins`): nothing to validate.
    Length(u64),
}

/// Receives every computed allele, in input order, in batches (the registry's bulk loader).
/// A batch is handed over, not lent: the loader keeps its alleles without copying them.
pub trait AlleleSink {
    fn put(&mut self, alleles: Vec<Allele>) -> std::result::Result<(), String>;
}

/// One VCF-style variant, as a caller holding columns of them has it: CHROM, POS (1-based; a
/// negative one has no allele), REF, ALT.
#[derive(Clone, Copy, Debug)]
pub struct Variant<'a> {
    pub chrom: &'a str,
    pub pos: i64,
    pub reference: &'a str,
    pub alt: &'a str,
}

/// The Allele id the annotator computes for each variant's ALT, in order; None where there is
/// none (unknown contig, symbolic, `*` or breakend ALT, a REF that does not match with
/// validation). Over `threads` threads, 4,096 variants per task, each task with its own
/// annotator (sequence cache and scratch buffers).
pub fn allele_ids(
    source: &SequenceSource,
    variants: &[Variant<'_>],
    options: &RecordOptions,
    threads: usize,
) -> Result<Vec<Option<String>>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("anyvar-ids-{i}"))
        .build()
        .map_err(|e| crate::Error::InvalidArgument(e.to_string()))?;
    pool.install(|| {
        variants
            .par_chunks(4096)
            .map(|chunk| {
                let mut annotator = Annotator::new(source, options);
                chunk
                    .iter()
                    .map(|v| {
                        if v.pos < 0 {
                            return Ok(None);
                        }
                        let pos = v.pos.to_string();
                        let allele = annotator.alt_allele(
                            v.chrom.as_bytes(),
                            pos.as_bytes(),
                            v.reference.as_bytes(),
                            v.alt.as_bytes(),
                        )?;
                        Ok(allele.ok().flatten().map(|a| a.id()))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<Vec<_>>>>()
            .map(|parts| parts.into_iter().flatten().collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids of the spec's vector alleles (vrs-python's, in alleles.tsv) from columns, in
    /// order, on one thread and on three; variants without an allele give None in place.
    #[test]
    fn allele_ids_of_columns_are_vrs_pythons() {
        let vectors =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors");
        let uri = format!(
            "seqrepo+file://{}",
            vectors.join("seqrepo/2024-01-01").display()
        );
        let source = SequenceSource::open(&uri, None).unwrap();
        let table = std::fs::read_to_string(vectors.join("alleles.tsv")).unwrap();
        let mut expected: Vec<(Vec<String>, Option<String>)> = table
            .lines()
            .skip(1)
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                (
                    cols[1]
                        .splitn(4, '-')
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                    Some(cols[2].to_string()),
                )
            })
            // ALTs only; a breakend ALT has no id in an annotated VCF (vrs-python's annotator
            // writes `.`), though its expression translates: checked as None below.
            .filter(|(c, _)| c[2] != c[3] && !c[3].contains(['[', ']']))
            .collect();
        expected.push((
            ["chr1", "273", "A", "A]chr2:10]"]
                .map(str::to_string)
                .to_vec(),
            None,
        ));
        expected.push((["chr1", "-1", "A", "G"].map(str::to_string).to_vec(), None));
        expected.push((
            ["chrNope", "5", "A", "G"].map(str::to_string).to_vec(),
            None,
        ));
        expected.push((
            ["chr1", "11", "A", "<DEL>"].map(str::to_string).to_vec(),
            None,
        ));
        let variants: Vec<Variant<'_>> = expected
            .iter()
            .map(|(c, _)| Variant {
                chrom: &c[0],
                pos: c[1].parse().unwrap(),
                reference: &c[2],
                alt: &c[3],
            })
            .collect();
        let options = RecordOptions {
            assembly: "GRCh38".into(),
            for_ref: false,
            vrs_attributes: false,
            require_validation: false,
        };
        let want: Vec<Option<String>> = expected.iter().map(|(_, id)| id.clone()).collect();
        assert!(want.len() > 10);
        for threads in [1, 3] {
            assert_eq!(
                allele_ids(&source, &variants, &options, threads).unwrap(),
                want
            );
        }
    }

    #[test]
    fn expression_parsing_follows_the_gnomad_pattern() {
        assert_eq!(
            parse_expression(b"chr1-11-A-G"),
            Some((&b"chr1"[..], &b"11"[..], &b"A"[..], &b"G"[..]))
        );
        // Anchored at the start only: trailing text after the ALT letters is ignored.
        assert_eq!(parse_expression(b"chr1-273-A-A]chr2:10]").unwrap().3, b"A");
        assert_eq!(parse_expression(b"chr1-1-a-g").unwrap().2, b"a");
        assert!(parse_expression(b"chr1-1-A-<DEL>").is_none());
        assert!(parse_expression(b"chr1-1-X-A").is_none());
        assert!(parse_expression(b"chr1-1-A-.").is_none());
        assert!(parse_expression(b"HLA-A-5-A-G").is_none());
        assert!(parse_expression(b"-1-A-G").is_none());
    }

    #[test]
    fn breakends() {
        assert!(is_breakend(b"A]chr2:10]"));
        assert!(is_breakend(b"[chr2:5[A"));
        assert!(is_breakend(b"G."));
        assert!(is_breakend(b".G"));
        assert!(!is_breakend(b"G"));
        assert!(!is_breakend(b"."));
    }
}
