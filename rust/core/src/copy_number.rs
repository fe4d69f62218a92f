//! VRS systemic variation: `CopyNumberCount` (`ga4gh:CN.`) and `CopyNumberChange`
//! (`ga4gh:CX.`), on a SequenceLocation whose ends may be ranges (`[null, 29652251]`).
//!
//! The serializations are vrs-python 2.x's (`ga4gh_serialize` + canonical JSON):
//! `{"copies":C,"location":"<SL digest>","type":"CopyNumberCount"}`,
//! `{"copyChange":"loss","location":"<SL digest>","type":"CopyNumberChange"}`, the location as
//! for an Allele but with each end a number, `[a,b]` (either may be `null`) or `null`.
//! The JSON out is vrs-python's `model_dump_json(exclude_none=True)`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::vrs::digest::{sha512t24u, Digest};
use crate::vrs::serialize::write_location_head;

/// A number or an inclusive range with one open end at most (VRS `Range | int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bound<T> {
    Number(T),
    Range(Option<T>, Option<T>),
}

impl<T: std::fmt::Display> Bound<T> {
    /// The canonical (and pydantic's compact) JSON: `5`, `[null,5]`, `[3,5]`.
    fn write(&self, out: &mut String) {
        let one = |out: &mut String, v: &Option<T>| match v {
            Some(v) => write!(out, "{v}"),
            None => out.write_str("null"),
        };
        match self {
            Bound::Number(n) => write!(out, "{n}"),
            Bound::Range(a, b) => out
                .write_str("[")
                .and_then(|()| one(out, a))
                .and_then(|()| out.write_str(","))
                .and_then(|()| one(out, b))
                .and_then(|()| out.write_str("]")),
        }
        .expect("writing to a String");
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// vrs-python's `CopyChange` values (the VRS 2 names of the EFO terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyChange {
    CompleteGenomicLoss,
    HighLevelLoss,
    LowLevelLoss,
    Loss,
    RegionalBasePloidy,
    Gain,
    LowLevelGain,
    HighLevelGain,
}

/// pydantic's message for a value that is not a `CopyChange` (what AnyVar answers with 422).
pub const COPY_CHANGE_ERROR: &str = "Input should be 'complete genomic loss', 'high-level loss', \
     'low-level loss', 'loss', 'regional base ploidy', 'gain', 'low-level gain' or \
     'high-level gain'";

impl CopyChange {
    pub const ALL: [CopyChange; 8] = [
        CopyChange::CompleteGenomicLoss,
        CopyChange::HighLevelLoss,
        CopyChange::LowLevelLoss,
        CopyChange::Loss,
        CopyChange::RegionalBasePloidy,
        CopyChange::Gain,
        CopyChange::LowLevelGain,
        CopyChange::HighLevelGain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CopyChange::CompleteGenomicLoss => "complete genomic loss",
            CopyChange::HighLevelLoss => "high-level loss",
            CopyChange::LowLevelLoss => "low-level loss",
            CopyChange::Loss => "loss",
            CopyChange::RegionalBasePloidy => "regional base ploidy",
            CopyChange::Gain => "gain",
            CopyChange::LowLevelGain => "low-level gain",
            CopyChange::HighLevelGain => "high-level gain",
        }
    }

    /// The EFO term each value stands for (the VRS 2 implementation guidance).
    pub fn efo(self) -> &'static str {
        match self {
            CopyChange::CompleteGenomicLoss => "EFO:0030069",
            CopyChange::HighLevelLoss => "EFO:0020073",
            CopyChange::LowLevelLoss => "EFO:0030068",
            CopyChange::Loss => "EFO:0030067",
            CopyChange::RegionalBasePloidy => "EFO:0030064",
            CopyChange::Gain => "EFO:0030070",
            CopyChange::LowLevelGain => "EFO:0030071",
            CopyChange::HighLevelGain => "EFO:0030072",
        }
    }

    /// Parses a value exactly as vrs-python's enum takes it; the error is pydantic's text.
    pub fn parse(text: &str) -> std::result::Result<CopyChange, String> {
        CopyChange::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| COPY_CHANGE_ERROR.to_string())
    }
}

impl std::str::FromStr for CopyChange {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        CopyChange::parse(s)
    }
}

/// What is counted or changed: the two VRS copy-number classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `CopyNumberCount`: an absolute number of copies (or a range of them).
    Count(Bound<i64>),
    /// `CopyNumberChange`: a change relative to the baseline ploidy.
    Change(CopyChange),
}

impl Kind {
    /// The VRS type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Count(_) => "CopyNumberCount",
            Kind::Change(_) => "CopyNumberChange",
        }
    }

    /// The identifier prefix: `CN` for a count, `CX` for a change.
    pub fn prefix(&self) -> &'static str {
        match self {
            Kind::Count(_) => "CN",
            Kind::Change(_) => "CX",
        }
    }
}

/// A SequenceLocation whose ends may be ranges or absent (vrs-python allows both).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// Refget accession, `SQ.…`.
    pub accession: String,
    pub start: Option<Bound<u64>>,
    pub end: Option<Bound<u64>>,
}

fn write_end(out: &mut String, end: &Option<Bound<u64>>) {
    match end {
        Some(b) => b.write(out),
        None => out.push_str("null"),
    }
}

impl Location {
    /// `{"end":E,"sequenceReference":{…},"start":S,"type":"SequenceLocation"}`; for plain
    /// numbers this is exactly `vrs::serialize::serialize_location`.
    pub fn serialize(&self) -> String {
        let mut s = String::from("{\"end\":");
        write_end(&mut s, &self.end);
        s.push_str(",\"sequenceReference\":{\"refgetAccession\":\"");
        s.push_str(&self.accession);
        s.push_str("\",\"type\":\"SequenceReference\"},\"start\":");
        write_end(&mut s, &self.start);
        s.push_str(",\"type\":\"SequenceLocation\"}");
        s
    }

    pub fn digest(&self) -> Digest {
        sha512t24u(self.serialize().as_bytes())
    }
}

/// An identified copy number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyNumber {
    /// Bare digest (`ga4gh:CN.<digest>` or `ga4gh:CX.<digest>`).
    pub digest: Digest,
    /// Bare digest of the location (`ga4gh:SL.<digest>`).
    pub location_digest: Digest,
    pub location: Location,
    pub kind: Kind,
}

/// The serialization the copy number's digest is computed from.
pub fn serialize(location_digest: &Digest, kind: &Kind) -> String {
    let mut s = String::from("{");
    match kind {
        Kind::Count(copies) => {
            s.push_str("\"copies\":");
            copies.write(&mut s);
        }
        Kind::Change(change) => {
            s.push_str("\"copyChange\":\"");
            s.push_str(change.as_str());
            s.push('"');
        }
    }
    write!(
        s,
        ",\"location\":\"{location_digest}\",\"type\":\"{}\"}}",
        kind.type_name()
    )
    .expect("writing to a String");
    s
}

impl CopyNumber {
    /// Identifies a copy number and its location.
    pub fn new(location: Location, kind: Kind) -> CopyNumber {
        let location_digest = location.digest();
        let digest = sha512t24u(serialize(&location_digest, &kind).as_bytes());
        CopyNumber {
            digest,
            location_digest,
            location,
            kind,
        }
    }

    pub fn id(&self) -> String {
        format!("ga4gh:{}.{}", self.kind.prefix(), self.digest)
    }

    pub fn location_id(&self) -> String {
        format!("ga4gh:SL.{}", self.location_digest)
    }

    /// The location as vrs-python dumps it (with its `id` and `digest`).
    pub fn location_json(&self) -> String {
        let mut s = String::new();
        write_location_head(&mut s, &self.location_digest, &self.location.accession);
        if let Some(start) = &self.location.start {
            s.push_str(",\"start\":");
            start.write(&mut s);
        }
        if let Some(end) = &self.location.end {
            s.push_str(",\"end\":");
            end.write(&mut s);
        }
        s.push('}');
        s
    }

    /// vrs-python's `model_dump_json(exclude_none=True)`: the form the registry stores and
    /// serves, e.g. `{"id":"ga4gh:CX.…","type":"CopyNumberChange","digest":"…","location":{…},
    /// "copyChange":"loss"}`.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        write!(
            s,
            r#"{{"id":"{id}","type":"{ty}","digest":"{d}","location":{loc}"#,
            id = self.id(),
            ty = self.kind.type_name(),
            d = self.digest,
            loc = self.location_json(),
        )
        .expect("writing to a String");
        match &self.kind {
            Kind::Count(copies) => {
                s.push_str(",\"copies\":");
                copies.write(&mut s);
            }
            Kind::Change(change) => {
                write!(s, ",\"copyChange\":\"{}\"", change.as_str()).expect("writing to a String")
            }
        }
        s.push('}');
        s
    }
}

// --- JSON in -----------------------------------------------------------------------------------

/// An integer as pydantic's lax mode reads a string: blanks around, a sign, digits with single
/// underscores between them, and a fraction of zeros only (`" 2 "`, `"+3"`, `"1_000"`, `"2.00"`).
fn lax_integer_text(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = match text.split_once('.') {
        Some((int, zeros)) if !zeros.is_empty() && zeros.bytes().all(|b| b == b'0') => int,
        Some(_) => return None,
        None => text,
    };
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let b = digits.as_bytes();
    let well_formed = !b.is_empty()
        && b[0].is_ascii_digit()
        && b[b.len() - 1].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -n } else { n })
}

/// An integer of a bound as pydantic (lax mode) takes it: a JSON integer, an integral float, a
/// boolean or a string of an integer ([`lax_integer_text`]); `field` names it in messages.
fn integer<T: TryFrom<i64>>(v: &Value, field: &str, min_zero: bool) -> Result<T, String> {
    let bad = || format!("{field}: Input should be a valid integer");
    let n: i64 = match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => return Err(bad()),
        },
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => lax_integer_text(s).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if min_zero && n < 0 {
        return Err(format!("{field}: The minimum value of `{field}` is 0."));
    }
    T::try_from(n).map_err(|_| bad())
}

/// `Range | int` as vrs-python validates it: two items, at least one an integer, the first not
/// above the second; for a coordinate (`min_zero`) no value below 0.
fn bound<T>(v: &Value, field: &str, min_zero: bool) -> Result<Bound<T>, String>
where
    T: TryFrom<i64> + PartialOrd + Copy,
{
    match v {
        Value::Number(_) | Value::String(_) | Value::Bool(_) => {
            integer(v, field, min_zero).map(Bound::Number)
        }
        Value::Array(items) => {
            if items.len() != 2 {
                return Err(format!(
                    "{field}: a range has exactly two items ([min, max], either may be null), not {}",
                    items.len()
                ));
            }
            let item = |v: &Value| -> Result<Option<T>, String> {
                match v {
                    Value::Null => Ok(None),
                    v => integer(v, field, min_zero).map(Some),
                }
            };
            let (a, b) = (item(&items[0])?, item(&items[1])?);
            match (a, b) {
                (None, None) => Err(format!("{field}: Must provide at least one integer.")),
                (Some(a), Some(b)) if a > b => Err(format!(
                    "{field}: The first integer must be less than or equal to the second integer."
                )),
                _ => Ok(Bound::Range(a, b)),
            }
        }
        _ => Err(format!(
            "{field}: must be an integer or a range [min, max] (either may be null)"
        )),
    }
}

fn location_from_value(loc: &Value) -> Result<Location, String> {
    if loc.is_string() {
        return Err(
            "location: a location given by reference (IRI) is not supported; \
                    give the SequenceLocation itself"
                .into(),
        );
    }
    if !loc.is_object() {
        return Err("location: Field required".into());
    }
    match loc.get("type") {
        None => {}
        Some(t) if t == "SequenceLocation" => {}
        Some(_) => return Err("location.type: Input should be 'SequenceLocation'".into()),
    }
    let accession = loc
        .get("sequenceReference")
        .and_then(|r| r.get("refgetAccession"))
        .and_then(Value::as_str)
        .filter(|a| {
            a.len() == 35
                && a.starts_with("SQ.")
                && a[3..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or("location.sequenceReference.refgetAccession must be an SQ. accession")?;
    let end_of = |key: &str| -> Result<Option<Bound<u64>>, String> {
        match loc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => bound(v, key, true).map(Some),
        }
    };
    Ok(Location {
        accession: accession.to_string(),
        start: end_of("start")?,
        end: end_of("end")?,
    })
}

/// A CopyNumberCount or CopyNumberChange given as VRS JSON (`PUT /vrs_variation`). Identifiers
/// are computed here, whatever `id`/`digest` fields it carries; non-identifying fields are not
/// kept.
pub fn copy_number_from_json(text: &str) -> Result<CopyNumber, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    copy_number_from_value(&v)
}

/// [`copy_number_from_json`] of parsed JSON.
pub fn copy_number_from_value(v: &Value) -> Result<CopyNumber, String> {
    let kind = match v.get("type").and_then(Value::as_str) {
        Some("CopyNumberCount") => Kind::Count(match v.get("copies") {
            None => return Err("copies: Field required".into()),
            Some(c) => bound(c, "copies", false)?,
        }),
        Some("CopyNumberChange") => Kind::Change(match v.get("copyChange") {
            None => return Err("copyChange: Field required".into()),
            Some(Value::String(s)) => {
                CopyChange::parse(s).map_err(|e| format!("copyChange: {e}"))?
            }
            Some(_) => return Err(format!("copyChange: {COPY_CHANGE_ERROR}")),
        }),
        _ => {
            return Err(
                "only \"type\": \"CopyNumberCount\" or \"CopyNumberChange\" is a copy number"
                    .into(),
            )
        }
    };
    let location = location_from_value(v.get("location").unwrap_or(&Value::Null))?;
    Ok(CopyNumber::new(location, kind))
}

// --- definitions -------------------------------------------------------------------------------

/// The edit of an HGVS definition vrs-python's `CnvTranslator` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Del,
    Dup,
}

/// A parsed `AC:g.S_Edel` / `AC:g.Sdup` (also `m.` and `n.`): the accession, the 1-based
/// inclusive positions and the edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HgvsCnv<'a> {
    pub accession: &'a str,
    pub first: u64,
    pub last: u64,
    pub edit: Edit,
}

/// Parses the HGVS forms vrs-python's CNV translator accepts (biocommons hgvs's grammar, then
/// `del` or `dup`): `AC:g.S_Edel`, `AC:g.Sdup`, `AC(GENE):g.…`, `m.` and `n.` alike; `del` may
/// be followed by the deleted sequence (IUPAC) or its length and `dup` by the sequence, neither
/// checked against the reference (vrs-python does not check them either). Transcript (`c.`),
/// RNA and protein positions are not taken: their numbering is not the sequence's.
pub fn parse_hgvs_cnv(definition: &str) -> Result<HgvsCnv<'_>, String> {
    let bad = |why: &str| Err(format!("HGVS {definition}: {why}"));
    let Some((accession, rest)) = definition.split_once(':') else {
        return bad("not an HGVS expression (ACCESSION:g.POSdel)");
    };
    // `NC_000013.11(BRCA2)`: the gene is a comment.
    let accession = match accession.split_once('(') {
        Some((ac, gene)) if gene.ends_with(')') => ac,
        _ => accession,
    };
    let posedit = match rest.get(..2) {
        Some("g." | "m." | "n.") => &rest[2..],
        Some("c." | "r." | "p.") => {
            return bad("only genomic (g.), mitochondrial (m.) or non-coding (n.) positions are translated into copy numbers")
        }
        _ => return bad("not an HGVS expression (ACCESSION:g.POSdel)"),
    };
    if accession.is_empty() || accession.contains(char::is_whitespace) {
        return bad("no accession");
    }
    let number = |s: &str| -> (Option<u64>, usize) {
        let d = s.bytes().take_while(u8::is_ascii_digit).count();
        (s[..d].parse().ok(), d)
    };
    let (Some(first), d) = number(posedit) else {
        return bad("no position (uncertain and intronic positions are not supported)");
    };
    let mut edit = &posedit[d..];
    let mut last = first;
    if let Some(after) = edit.strip_prefix('_') {
        let (Some(e), d) = number(after) else {
            return bad("bad range (uncertain and intronic positions are not supported)");
        };
        last = e;
        edit = &after[d..];
    }
    if edit.starts_with(['+', '-']) {
        return bad("Intronic HGVS variants are not supported");
    }
    if first == 0 || last < first {
        return bad("positions are 1-based and the range must be ascending");
    }
    let dna = |t: &str| {
        t.bytes()
            .all(|b| b"ACGTRYMKWSBDHVNacgtrymkwsbdhvn".contains(&b))
    };
    let edit = if let Some(t) = edit.strip_prefix("dup") {
        if !dna(t) {
            return bad("dup takes an optional DNA sequence");
        }
        Edit::Dup
    } else if let Some(t) = edit.strip_prefix("del") {
        if t.starts_with("ins") {
            return bad("Must provide a 'del' or 'dup'");
        }
        if !(dna(t) || t.bytes().all(|b| b.is_ascii_digit())) {
            return bad("del takes an optional DNA sequence or length");
        }
        Edit::Del
    } else {
        return bad("Must provide a 'del' or 'dup'");
    };
    Ok(HgvsCnv {
        accession,
        first,
        last,
        edit,
    })
}

/// The copy number vrs-python's `CnvTranslator` makes of a parsed definition on the sequence
/// `accession` (`SQ.…`): with `copies` a CopyNumberCount, otherwise a CopyNumberChange with
/// `copy_change`, or `loss` for a deletion and `gain` for a duplication when none is given.
pub fn from_hgvs(
    parsed: &HgvsCnv<'_>,
    accession: &str,
    copies: Option<i64>,
    copy_change: Option<CopyChange>,
) -> CopyNumber {
    let location = Location {
        accession: accession.to_string(),
        start: Some(Bound::Number(parsed.first - 1)),
        end: Some(Bound::Number(parsed.last)),
    };
    let kind = match (copies, copy_change) {
        (Some(n), _) => Kind::Count(Bound::Number(n)),
        (None, Some(change)) => Kind::Change(change),
        (None, None) => Kind::Change(match parsed.edit {
            Edit::Del => CopyChange::Loss,
            Edit::Dup => CopyChange::Gain,
        }),
    };
    CopyNumber::new(location, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrs::identify::location_digest;

    const CN_COUNT_RANGED: &str = r#"{"id":"ga4gh:CN.CTCgVehH0FEqrlaOMhUsDjKwzavnQegk","type":"CopyNumberCount","location":{"sequenceReference":{"type":"SequenceReference","refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"},"start":[null,29652251],"end":[29981821,null],"type":"SequenceLocation"},"copies":3}"#;

    #[test]
    fn plain_location_serializes_as_an_allele_location() {
        let acc = "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW";
        let loc = Location {
            accession: acc.into(),
            start: Some(Bound::Number(10)),
            end: Some(Bound::Number(11)),
        };
        let mut buf = Vec::new();
        assert_eq!(loc.digest(), location_digest(&mut buf, acc, 10, 11));
        assert_eq!(loc.serialize().as_bytes(), &buf[..]);
    }

    #[test]
    fn anyvar_fixture_ids() {
        // AnyVar 1.0.0 tests/data/variations.json, `copy_numbers`.
        // The GRCh37 one's key is not the digest of its content (it carries no `digest`):
        // vrs-python computes this id for it once its given `id` is removed.
        let cn = copy_number_from_json(CN_COUNT_RANGED).unwrap();
        assert_eq!(cn.id(), "ga4gh:CN.C86kZwFrWcMFCrSxGpIcZ9fqG0-hGi7j");
        assert_eq!(
            cn.location_id(),
            "ga4gh:SL.q7gYW9gLO6MH25M3Wboy3xTzBPubIIFY"
        );
        let cn = copy_number_from_json(r#"{"type":"CopyNumberCount","location":{"sequenceReference":{"type":"SequenceReference","refgetAccession":"SQ.-A1QmD_MatoqxvgVxBLZTONHz9-c7nQo"},"start":[null,30417575],"end":[31394018,null]},"copies":3}"#).unwrap();
        assert_eq!(cn.id(), "ga4gh:CN.fmrn873tRhAiNLybjHlftgHjcAEExPKQ");
        assert_eq!(
            cn.location_id(),
            "ga4gh:SL.7HsIbSybxJRfiRNr2r0gz1JNsV-wJJfQ"
        );

        let acc = "SQ._0wi-qoDrvram155UmcSC-zA5ZK4fpLT";
        let parsed = parse_hgvs_cnv("NC_000013.11:g.26440969_26443305del").unwrap();
        let cx = from_hgvs(&parsed, acc, None, Some(CopyChange::CompleteGenomicLoss));
        assert_eq!(cx.id(), "ga4gh:CX.eVlFPLW5eFChqk1GX5QBpHent0UchVhG");
        assert_eq!(
            cx.location_id(),
            "ga4gh:SL.4akcjXlbAu4xBKnxjOL_b4DM_20HOCA3"
        );
        assert_eq!(
            cx.to_json(),
            r#"{"id":"ga4gh:CX.eVlFPLW5eFChqk1GX5QBpHent0UchVhG","type":"CopyNumberChange","digest":"eVlFPLW5eFChqk1GX5QBpHent0UchVhG","location":{"id":"ga4gh:SL.4akcjXlbAu4xBKnxjOL_b4DM_20HOCA3","type":"SequenceLocation","digest":"4akcjXlbAu4xBKnxjOL_b4DM_20HOCA3","sequenceReference":{"type":"SequenceReference","refgetAccession":"SQ._0wi-qoDrvram155UmcSC-zA5ZK4fpLT"},"start":26440968,"end":26443305},"copyChange":"complete genomic loss"}"#
        );
        let cn = from_hgvs(&parsed, acc, Some(1), Some(CopyChange::Gain));
        assert_eq!(cn.id(), "ga4gh:CN.QnU97C-cRW431O9qWia9UCVRBDvGDH7I");
        // The JSON out reads back to the same object.
        for x in [cx, cn] {
            assert_eq!(copy_number_from_json(&x.to_json()).unwrap(), x);
        }
    }

    #[test]
    fn ranged_json_round_trip() {
        let cn = copy_number_from_json(CN_COUNT_RANGED).unwrap();
        let json = cn.to_json();
        assert!(json.contains(r#""start":[null,29652251],"end":[29981821,null]},"copies":3}"#));
        assert_eq!(copy_number_from_json(&json).unwrap(), cn);
        let cn = copy_number_from_json(
            r#"{"type":"CopyNumberCount","copies":[2,null],"location":{"sequenceReference":{"refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"},"start":[1,5],"end":9}}"#,
        )
        .unwrap();
        assert_eq!(cn.kind, Kind::Count(Bound::Range(Some(2), None)));
        assert!(cn
            .to_json()
            .ends_with(r#""start":[1,5],"end":9},"copies":[2,null]}"#));
    }

    #[test]
    fn invalid_json_says_why() {
        let err = |s: &str| copy_number_from_json(s).unwrap_err();
        let loc = r#""location":{"sequenceReference":{"refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"},"start":1,"end":2}"#;
        assert_eq!(
            err(&format!(r#"{{"type":"CopyNumberCount",{loc}}}"#)),
            "copies: Field required"
        );
        assert_eq!(
            err(&format!(
                r#"{{"type":"CopyNumberChange","copyChange":"EFO:0030067",{loc}}}"#
            )),
            format!("copyChange: {COPY_CHANGE_ERROR}")
        );
        assert!(err(&format!(
            r#"{{"type":"CopyNumberCount","copies":[null,null],{loc}}}"#
        ))
        .contains("at least one integer"));
        assert!(err(&format!(
            r#"{{"type":"CopyNumberCount","copies":[3,2],{loc}}}"#
        ))
        .contains("less than or equal"));
        assert!(err(r#"{"type":"CopyNumberCount","copies":1,"location":{"sequenceReference":{"refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"},"start":-1,"end":2}}"#)
            .contains("minimum value of `start` is 0"));
        assert!(err(r#"{"type":"Allele"}"#).contains("CopyNumberCount"));
        assert!(
            err(r#"{"type":"CopyNumberCount","copies":1,"location":"ga4gh:SL.x"}"#).contains("IRI")
        );
    }

    #[test]
    fn lax_integers_and_absent_ends() {
        let cn = copy_number_from_json(
            r#"{"type":"CopyNumberCount","copies":"2","location":{"sequenceReference":{"refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"},"end":[5.0,null]}}"#,
        )
        .unwrap();
        assert_eq!(cn.kind, Kind::Count(Bound::Number(2)));
        assert_eq!(cn.location.start, None);
        assert_eq!(cn.location.end, Some(Bound::Range(Some(5), None)));
        // An absent end is `null` in the digest's serialization and left out of the JSON.
        assert!(cn.location.serialize().contains(r#""start":null,"type""#));
        assert!(cn.location_json().ends_with(r#""end":[5,null]}"#));
        assert!(!cn.to_json().contains("start"));
        assert!(copy_number_from_json(
            r#"{"type":"CopyNumberCount","copies":2.5,"location":{"sequenceReference":{"refgetAccession":"SQ.iy_UbUrvECxFRX5LPTH_KPojdlT7BKsf"}}}"#
        )
        .unwrap_err()
        .contains("valid integer"));
    }

    #[test]
    fn lax_integer_strings() {
        for (text, n) in [
            (" 2 ", 2),
            ("+3", 3),
            ("-0", 0),
            ("07", 7),
            ("1_000", 1000),
            ("2.00", 2),
        ] {
            assert_eq!(lax_integer_text(text), Some(n), "{text}");
        }
        for text in ["", "1e3", "2.5", "0x10", "1__0", "_1", "1_", "2.", "-"] {
            assert_eq!(lax_integer_text(text), None, "{text}");
        }
    }

    #[test]
    fn copy_change_values() {
        for c in CopyChange::ALL {
            assert_eq!(CopyChange::parse(c.as_str()).unwrap(), c);
            assert!(c.efo().starts_with("EFO:"));
        }
        assert_eq!(CopyChange::parse("Loss").unwrap_err(), COPY_CHANGE_ERROR);
    }

    #[test]
    fn hgvs_forms() {
        fn p(s: &str) -> Result<(&str, u64, u64, Edit), String> {
            parse_hgvs_cnv(s).map(|h| (h.accession, h.first, h.last, h.edit))
        }
        assert_eq!(p("NC_1.1:g.5del"), Ok(("NC_1.1", 5, 5, Edit::Del)));
        assert_eq!(p("NC_1.1:g.5_9dup"), Ok(("NC_1.1", 5, 9, Edit::Dup)));
        assert_eq!(p("NC_1.1:g.5_7delACG"), Ok(("NC_1.1", 5, 7, Edit::Del)));
        assert_eq!(p("NC_1.1:g.5_7del3"), Ok(("NC_1.1", 5, 7, Edit::Del)));
        assert_eq!(p("NC_1.1:m.5_7dupacg"), Ok(("NC_1.1", 5, 7, Edit::Dup)));
        assert_eq!(p("NC_1.1(GENE):n.5dup"), Ok(("NC_1.1", 5, 5, Edit::Dup)));
        assert!(p("NC_1.1:g.5_7dup3").is_err());
        assert!(p("NC_1.1:g.?_7del").is_err());
        assert!(p("NC_1.1:g.5_7delinsA")
            .unwrap_err()
            .contains("'del' or 'dup'"));
        assert!(p("NC_1.1:g.5A>T").unwrap_err().contains("'del' or 'dup'"));
        assert!(p("NC_1.1:c.5del").is_err());
        assert!(p("NC_1.1:g.0del").is_err());
        assert!(p("NC_1.1:g.9_5del").is_err());
        assert!(p("1-5-A-T").is_err());
    }
}
