//! Translation of the variation definitions AnyVar's registry accepts (gnomAD/VCF-style
//! `19-82664-C-T`, SPDI `NC_000019.10:82663:C:T`, genomic HGVS `NC_000019.10:g.82664C>T`) into
//! normalized, identified Alleles, through the same code path as VCF annotation.

use std::sync::Arc;

use crate::alleles::{parse_expression, Annotator, Checked, RecordOptions};
use crate::copy_number::{self, CopyChange, CopyNumber};
use crate::error::Result;
use crate::sequence::{Contig, SequenceSource};
use crate::vrs::model::Allele;

/// What a definition turned into: an allele, or the reason there is none.
pub type Translation = std::result::Result<Allele, String>;

/// Definitions one worker translates with one sequence reader (its block cache is what makes
/// nearby definitions cheap).
const TRANSLATE_CHUNK: usize = 256;

/// Translates many definitions on `assembly` (a `PUT /variations` batch) in parallel chunks,
/// each with one annotator; the translations in input order. `Err` only when the sequence
/// source fails.
pub fn translate_many(
    source: &SequenceSource,
    definitions: &[String],
    assembly: &str,
) -> Result<Vec<Translation>> {
    use rayon::prelude::*;
    let options = RecordOptions {
        assembly: assembly.to_string(),
        for_ref: false,
        vrs_attributes: false,
        require_validation: true,
    };
    let chunks: Vec<Vec<Translation>> = definitions
        .par_chunks(TRANSLATE_CHUNK)
        .map(|chunk| {
            let mut annotator = Annotator::new(source, &options);
            chunk
                .iter()
                .map(|d| translate(&mut annotator, d))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok(chunks.into_iter().flatten().collect())
}

/// Translates one definition. `Err` is reserved for failures of the sequence source.
pub fn translate(annotator: &mut Annotator, definition: &str) -> Result<Translation> {
    let definition = definition.trim();
    if let Some((chr, pos, reference, alt)) = parse_expression(definition.as_bytes()) {
        // gnomAD/VCF style: exactly the annotator's path (validation included).
        return Ok(match annotator.alt_allele(chr, pos, reference, alt)? {
            Ok(Some(allele)) => Ok(allele),
            Ok(None) => Err("its sequence is not in the sequence source".into()),
            Err(message) => Err(message),
        });
    }
    if let Some((ac, rest)) = definition.split_once(":g.") {
        return hgvs(annotator, ac, rest);
    }
    if let Some(parts) = spdi_parts(definition) {
        return spdi(annotator, parts);
    }
    Ok(Err(
        "not a gnomAD-style (19-82664-C-T), SPDI \
         (NC_000019.10:82663:C:T) or genomic HGVS (NC_000019.10:g.82664C>T) definition"
            .into(),
    ))
}

/// A sequence named by an accession as SPDI and HGVS give it (`NC_000019.10`, `SQ.…`, or
/// `namespace:alias`).
fn resolve(annotator: &Annotator, ac: &str) -> Result<Option<Arc<Contig>>> {
    resolve_in(annotator.source(), ac)
}

fn resolve_in(source: &SequenceSource, ac: &str) -> Result<Option<Arc<Contig>>> {
    if ac.starts_with("SQ.") {
        return source.resolve("ga4gh", ac);
    }
    if let Some(found) = source.resolve("refseq", ac)? {
        return Ok(Some(found));
    }
    source.resolve_name(ac)
}

/// Translates a definition into a copy number as vrs-python's `CnvTranslator` (what AnyVar
/// calls for `input_type` `CopyNumberCount` or `CopyNumberChange`) does: only HGVS `del`/`dup`
/// (see [`copy_number::parse_hgvs_cnv`]; gnomAD-style and SPDI definitions are not copy
/// numbers there), on the interval as written (no normalization). With `copies` the result is
/// a CopyNumberCount, otherwise a CopyNumberChange with `copy_change`, or `loss`/`gain` for a
/// deletion/duplication when that is `None` too. `Err` is reserved for failures of the source.
pub fn translate_copy_number(
    source: &SequenceSource,
    definition: &str,
    copies: Option<i64>,
    copy_change: Option<CopyChange>,
) -> Result<std::result::Result<CopyNumber, String>> {
    let definition = definition.trim();
    let parsed = match copy_number::parse_hgvs_cnv(definition) {
        Ok(p) => p,
        Err(message) => return Ok(Err(message)),
    };
    let Some(contig) = resolve_in(source, parsed.accession)? else {
        return Ok(Err(format!(
            "sequence {:?} is not in the sequence source",
            parsed.accession
        )));
    };
    Ok(Ok(copy_number::from_hgvs(
        &parsed,
        &contig.accession,
        copies,
        copy_change,
    )))
}

fn is_bases(s: &str) -> bool {
    s.bytes().all(|b| {
        matches!(
            b.to_ascii_uppercase(),
            b'A' | b'C' | b'G' | b'T' | b'N' | b'U'
        )
    })
}

struct Spdi<'a> {
    ac: &'a str,
    pos: u64,
    deleted: &'a str,
    inserted: &'a str,
}

fn spdi_parts(definition: &str) -> Option<Spdi<'_>> {
    let mut parts = definition.rsplitn(4, ':').collect::<Vec<_>>();
    if parts.len() != 4 {
        return None;
    }
    parts.reverse();
    let pos = parts[1].parse().ok()?;
    Some(Spdi {
        ac: parts[0],
        pos,
        deleted: parts[2],
        inserted: parts[3],
    })
}

fn spdi(annotator: &mut Annotator, s: Spdi<'_>) -> Result<Translation> {
    if !is_bases(s.inserted) {
        return Ok(Err(format!(
            "SPDI inserted sequence {:?} is not a nucleotide sequence",
            s.inserted
        )));
    }
    let Some(contig) = resolve(annotator, s.ac)? else {
        return Ok(Err(format!(
            "sequence {:?} is not in the sequence source",
            s.ac
        )));
    };
    // The deletion is a count or the deleted bases (then they are validated).
    let checked = match s.deleted.parse::<u64>() {
        Ok(n) => Checked::Length(n),
        Err(_) if is_bases(s.deleted) => Checked::Given(s.deleted.as_bytes()),
        Err(_) => {
            return Ok(Err(format!(
                "SPDI deletion {:?} is neither a length nor a sequence",
                s.deleted
            )))
        }
    };
    let name = || s.ac.to_string();
    allele(
        annotator,
        &contig,
        &name,
        s.pos,
        checked,
        s.inserted.as_bytes(),
    )
}

fn allele(
    annotator: &mut Annotator,
    contig: &Contig,
    name: &dyn Fn() -> String,
    start: u64,
    checked: Checked<'_>,
    alt: &[u8],
) -> Result<Translation> {
    Ok(
        match annotator.allele_on(contig, name, start, checked, alt, &mut None)? {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err("no allele".into()),
            Err(message) => Err(message),
        },
    )
}

/// `S`, `S_E` then the edit: `C>T`, `del`, `delAT`, `dup`, `insAT`, `delinsAT`, `=`.
fn hgvs(annotator: &mut Annotator, ac: &str, rest: &str) -> Result<Translation> {
    let bad = |why: &str| Ok(Err(format!("HGVS {ac}:g.{rest}: {why}")));
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(first) = rest[..digits].parse::<u64>() else {
        return bad("no position");
    };
    let mut edit = &rest[digits..];
    let mut last = first;
    if let Some(after) = edit.strip_prefix('_') {
        let d = after.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(e) = after[..d].parse::<u64>() else {
            return bad("bad range");
        };
        last = e;
        edit = &after[d..];
    }
    if first == 0 || last < first {
        return bad("positions are 1-based and the range must be ascending");
    }
    let Some(contig) = resolve(annotator, ac)? else {
        return Ok(Err(format!(
            "sequence {ac:?} is not in the sequence source"
        )));
    };
    let name = || ac.to_string();
    let (start, end) = (first - 1, last);
    if let Some(seq) = edit.strip_prefix("delins") {
        if seq.is_empty() || !is_bases(seq) {
            return bad("delins needs a sequence");
        }
        return allele(
            annotator,
            &contig,
            &name,
            start,
            Checked::Length(end - start),
            seq.as_bytes(),
        );
    }
    if let Some(seq) = edit.strip_prefix("del") {
        if !is_bases(seq) {
            return bad("del takes an optional sequence");
        }
        let checked = if seq.is_empty() {
            Checked::Length(end - start)
        } else {
            Checked::Given(seq.as_bytes())
        };
        if !seq.is_empty() && seq.len() as u64 != end - start {
            return bad("the deleted sequence does not span the range");
        }
        return allele(annotator, &contig, &name, start, checked, b"");
    }
    if let Some(seq) = edit.strip_prefix("dup") {
        if !is_bases(seq) {
            return bad("dup takes an optional sequence");
        }
        let mut doubled = annotator.residues(&contig, start, end)?;
        doubled.extend_from_within(..);
        return allele(
            annotator,
            &contig,
            &name,
            start,
            Checked::Length(end - start),
            &doubled,
        );
    }
    if let Some(seq) = edit.strip_prefix("ins") {
        if seq.is_empty() || !is_bases(seq) || first.checked_add(1) != Some(last) {
            return bad("ins needs two adjacent positions and a sequence");
        }
        // Between `first` and `first + 1` (1-based): the interbase point `first`.
        return allele(
            annotator,
            &contig,
            &name,
            first,
            Checked::Length(0),
            seq.as_bytes(),
        );
    }
    if edit == "=" {
        let same = annotator.residues(&contig, start, end)?;
        return allele(
            annotator,
            &contig,
            &name,
            start,
            Checked::Length(end - start),
            &same,
        );
    }
    if let Some((r, a)) = edit.split_once('>') {
        if r.is_empty() || a.is_empty() || !is_bases(r) || !is_bases(a) {
            return bad("a substitution is REF>ALT");
        }
        if r.len() as u64 != end - start {
            return bad("the reference does not span the position");
        }
        return allele(
            annotator,
            &contig,
            &name,
            start,
            Checked::Given(r.as_bytes()),
            a.as_bytes(),
        );
    }
    bad("unsupported edit (use >, del, dup, ins, delins or =)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alleles::RecordOptions;
    use crate::sequence::SequenceSource;

    fn grch38() -> RecordOptions {
        RecordOptions {
            assembly: "GRCh38".into(),
            for_ref: false,
            vrs_attributes: false,
            require_validation: true,
        }
    }

    fn source() -> SequenceSource {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/vectors/seqrepo/2024-01-01");
        SequenceSource::open(&format!("seqrepo+file://{}", dir.display()), None).unwrap()
    }

    #[test]
    fn many_at_once_are_each_in_order() {
        let source = source();
        let options = grch38();
        let forms = [
            "chr1-11-A-G",
            "chr1-40-TA-T",
            "chr1-11-C-G",
            "nonsense",
            "chr2-5-A-C",
        ];
        // more than one chunk, so that chunks are put back in order
        let definitions: Vec<String> = (0..3 * TRANSLATE_CHUNK + 7)
            .map(|i| forms[i % forms.len()].to_string())
            .collect();
        let many = translate_many(&source, &definitions, "GRCh38").unwrap();
        let mut a = Annotator::new(&source, &options);
        let one: Vec<_> = (definitions.iter())
            .map(|d| translate(&mut a, d).unwrap().map(|x| x.id()))
            .collect();
        let many: Vec<_> = many.into_iter().map(|t| t.map(|x| x.id())).collect();
        assert_eq!(many, one);
        assert!(many[0].is_ok() && many[2].is_err() && many[3].is_err());
    }

    #[test]
    fn forms_of_one_variant_agree() {
        let source = source();
        let options = grch38();
        let mut a = Annotator::new(&source, &options);
        let mut id = |d: &str| translate(&mut a, d).unwrap().map(|x| x.id());
        // chr1 11 A>G (spec 1.4) and the polyA 1-bp deletion at 40 (TA>T).
        let snv = "ga4gh:VA.Uh1M3DEgTlOIoVZ-FQPuuXUTPnc6Q7zj";
        assert_eq!(id("chr1-11-A-G").unwrap(), snv);
        assert_eq!(id("1-11-A-G").unwrap(), snv);
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:10:A:G").unwrap(),
            snv
        );
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:10:1:G").unwrap(),
            snv
        );
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.11A>G").unwrap(),
            snv
        );
        assert_eq!(id("GRCh38:chr1:g.11A>G").unwrap(), snv);
        let del = "ga4gh:VA.M7cIKmL1Y_6rCw6rjE0FI1gm3Bqu6cOd";
        assert_eq!(id("chr1-40-TA-T").unwrap(), del);
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.41del").unwrap(),
            del
        );
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.50delA").unwrap(),
            del
        );
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.45_46delinsA").unwrap(),
            del
        );
        // dup and ins of one A in the run are the same insertion.
        let ins = id("chr1-40-T-TA").unwrap();
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.45dup").unwrap(),
            ins
        );
        assert_eq!(
            id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.44_45insA").unwrap(),
            ins
        );
        assert!(id("chr1-11-C-G")
            .unwrap_err()
            .starts_with("Reference mismatch"));
        assert!(id("chrX-11-A-G").is_err());
        assert!(id("nonsense").is_err());
        assert!(id("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW:g.11A>").is_err());
    }

    #[test]
    fn positions_near_the_largest_number_are_refused_not_wrapped() {
        // Found by the fuzz target definitions: `start + length` overflowed (a panic in debug
        // builds, an end wrapped round to a small number in release builds).
        let source = source();
        let options = grch38();
        let mut a = Annotator::new(&source, &options);
        let (acc, max) = ("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW", u64::MAX);
        for definition in [
            format!("chr1-{max}-AA-G"),
            format!("{acc}:{max}:AA:G"),
            format!("{acc}:{max}:2:G"),
        ] {
            let e = translate(&mut a, &definition).unwrap().unwrap_err();
            assert!(e.contains("runs past the end"), "{definition}: {e}");
        }
        let e = translate(&mut a, &format!("{acc}:g.{max}_{max}insA"))
            .unwrap()
            .unwrap_err();
        assert!(e.contains("two adjacent positions"), "{e}");
    }

    #[test]
    fn copy_numbers_from_hgvs() {
        let source = source();
        let acc = "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW";
        let cn = |d: &str, copies, change| {
            translate_copy_number(&source, d, copies, change)
                .unwrap()
                .map(|c| c.to_json())
        };
        // No normalization: the interval is the one written, whatever the repeat around it.
        let json = cn(&format!("{acc}:g.41_45del"), None, None).unwrap();
        assert!(
            json.contains(r#""start":40,"end":45},"copyChange":"loss"}"#),
            "{json}"
        );
        let json = cn(&format!("{acc}:g.41dup"), None, None).unwrap();
        assert!(
            json.contains(r#""start":40,"end":41},"copyChange":"gain"}"#),
            "{json}"
        );
        let json = cn(
            &format!("{acc}:g.41dup"),
            None,
            Some(CopyChange::HighLevelGain),
        )
        .unwrap();
        assert!(
            json.ends_with(r#""copyChange":"high-level gain"}"#),
            "{json}"
        );
        let json = cn(
            &format!("{acc}:g.41_45del"),
            Some(0),
            Some(CopyChange::Gain),
        )
        .unwrap();
        assert!(json.starts_with(r#"{"id":"ga4gh:CN."#) && json.ends_with(r#""copies":0}"#));
        assert!(cn("NC_000099.1:g.41del", None, None)
            .unwrap_err()
            .contains("not in the sequence source"));
        assert!(cn("chr1-40-TA-T", Some(1), None).is_err());
        assert!(cn(&format!("{acc}:g.41_45delinsA"), Some(1), None).is_err());
    }
}
