//! A FASTA file as a sequence source: contig names become aliases in one assembly namespace, and
//! refget accessions are computed once and kept in a sidecar file (`<fasta>.refget.tsv`, or in
//! the cache directory when the FASTA's directory is not writable).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use noodles_bgzf as bgzf;

use super::files::{is_bgzf, SequenceFile};
use super::{Contig, Store};
use crate::error::{Error, Result};
use crate::vrs::digest::RefgetHasher;

const SIDECAR_MAGIC: &str = "#anyvar-refget-v1";

pub struct FastaAliases {
    assembly: String,
    by_alias: HashMap<String, Arc<Contig>>,
    by_accession: HashMap<String, Arc<Contig>>,
}

/// Other spellings of a contig name within the assembly namespace: `chr1` ↔ `1`, `chrM` ↔ `MT`.
fn alternate_names(name: &str) -> Vec<String> {
    match name {
        "chrM" => vec!["MT".into(), "M".into()],
        "MT" => vec!["chrM".into()],
        _ => match name.strip_prefix("chr") {
            Some(bare) if !bare.is_empty() => vec![bare.to_string()],
            _ => vec![format!("chr{name}")],
        },
    }
}

/// Size and modification time identify the FASTA a sidecar was computed from.
fn fingerprint(path: &Path) -> io::Result<String> {
    let meta = fs::metadata(path)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!(
        "{SIDECAR_MAGIC}\tsize={}\tmtime={mtime}",
        meta.len()
    ))
}

fn read_sidecar(path: &Path, expected_header: &str) -> Option<HashMap<String, (u64, String)>> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != expected_header {
        return None;
    }
    let mut out = HashMap::new();
    for line in lines {
        let mut cols = line.split('\t');
        let (name, len, acc) = (cols.next()?, cols.next()?, cols.next()?);
        out.insert(name.to_string(), (len.parse().ok()?, acc.to_string()));
    }
    Some(out)
}

/// Streams the FASTA once, hashing each record's upper-cased residues.
fn compute_digests(path: &Path) -> io::Result<HashMap<String, (u64, String)>> {
    let file = File::open(path)?;
    let reader: Box<dyn Read> = if is_bgzf(path)? {
        Box::new(bgzf::io::Reader::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut out = HashMap::new();
    let mut current: Option<(String, u64, RefgetHasher)> = None;
    let mut line = Vec::new();
    let finish = |cur: Option<(String, u64, RefgetHasher)>, out: &mut HashMap<_, _>| {
        if let Some((name, len, hasher)) = cur {
            out.insert(name, (len, format!("SQ.{}", hasher.finish())));
        }
    };
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if let Some(header) = line.strip_prefix(b">") {
            finish(current.take(), &mut out);
            let name = String::from_utf8_lossy(header)
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            current = Some((name, 0, RefgetHasher::default()));
        } else if let Some((_, len, hasher)) = current.as_mut() {
            *len += line.len() as u64;
            hasher.update(&line);
        }
    }
    finish(current, &mut out);
    Ok(out)
}

fn write_sidecar(
    path: &Path,
    header: &str,
    digests: &HashMap<String, (u64, String)>,
) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = io::BufWriter::new(File::create(&tmp)?);
        writeln!(f, "{header}")?;
        let mut names: Vec<_> = digests.keys().collect();
        names.sort();
        for name in names {
            let (len, acc) = &digests[name];
            writeln!(f, "{name}\t{len}\t{acc}")?;
        }
        f.flush()?;
    }
    fs::rename(&tmp, path)
}

fn cache_sidecar_path(cache_dir: &Path, fasta: &Path) -> PathBuf {
    let absolute = fs::canonicalize(fasta).unwrap_or_else(|_| fasta.to_path_buf());
    let key = crate::vrs::digest::sha512t24u(absolute.to_string_lossy().as_bytes());
    cache_dir.join(format!("{key}.refget.tsv"))
}

/// Finds valid cached digests or computes and stores them.
fn digests(
    uri: &str,
    fasta: &Path,
    cache_dir: Option<&Path>,
) -> Result<HashMap<String, (u64, String)>> {
    let header = fingerprint(fasta)
        .map_err(|e| Error::source(uri, format!("cannot read {}: {e}", fasta.display())))?;
    let beside = {
        let mut s = fasta.as_os_str().to_owned();
        s.push(".refget.tsv");
        PathBuf::from(s)
    };
    let in_cache = cache_dir.map(|d| cache_sidecar_path(d, fasta));
    for candidate in std::iter::once(&beside).chain(in_cache.iter()) {
        if let Some(found) = read_sidecar(candidate, &header) {
            return Ok(found);
        }
    }
    let computed = compute_digests(fasta)
        .map_err(|e| Error::source(uri, format!("cannot read {}: {e}", fasta.display())))?;
    // Best effort: an unwritable location only costs recomputation next time.
    if write_sidecar(&beside, &header, &computed).is_err() {
        if let Some(path) = &in_cache {
            let _ = write_sidecar(path, &header, &computed);
        }
    }
    Ok(computed)
}

impl FastaAliases {
    pub fn open(
        uri: &str,
        path: &Path,
        assembly: &str,
        cache_dir: Option<&Path>,
    ) -> Result<FastaAliases> {
        let file = Arc::new(SequenceFile::open(uri, path)?);
        let digests = digests(uri, path, cache_dir)?;
        let mut by_alias = HashMap::new();
        let mut by_accession = HashMap::new();
        let mut names: Vec<String> = file.records().map(|r| r.name().to_string()).collect();
        names.sort();
        let mut contigs = Vec::new();
        for (id, name) in names.iter().enumerate() {
            let record = file.record(name).expect("listed from the index");
            let (len, accession) = digests.get(name.as_str()).ok_or_else(|| {
                Error::source(
                    uri,
                    format!("contig {name} is in the .fai index but not in the FASTA"),
                )
            })?;
            if *len != record.length() {
                return Err(Error::source(
                    uri,
                    format!(
                        "contig {name}: the .fai index says {} bases, the FASTA has {len}",
                        record.length()
                    ),
                ));
            }
            let contig = Arc::new(Contig {
                id: id as u32,
                accession: accession.as_str().into(),
                length: *len,
                store: Store::File(file.clone()),
                name: name.clone(),
            });
            by_alias.insert(name.clone(), contig.clone());
            by_accession.insert(accession.clone(), contig.clone());
            contigs.push(contig);
        }
        // Alternate spellings never shadow a contig that really has that name.
        for contig in &contigs {
            for alt in alternate_names(&contig.name) {
                by_alias.entry(alt).or_insert_with(|| contig.clone());
            }
        }
        Ok(FastaAliases {
            assembly: assembly.to_string(),
            by_alias,
            by_accession,
        })
    }

    /// `namespace:alias` names of the sequence `accession` (`SQ.…`): its names in the
    /// assembly, its RefSeq name when it has one, and its accession.
    pub fn aliases(&self, accession: &str) -> Vec<String> {
        let Some(contig) = self.by_accession.get(accession) else {
            return Vec::new();
        };
        let mut names: Vec<String> = (self.by_alias.iter())
            .filter(|(_, c)| Arc::ptr_eq(c, contig))
            .map(|(alias, _)| format!("{}:{alias}", self.assembly))
            .collect();
        names.sort();
        if self.resolve("refseq", &contig.name).is_some() {
            names.push(format!("refseq:{}", contig.name));
        }
        names.push(format!("ga4gh:{accession}"));
        names
    }

    pub fn resolve(&self, namespace: &str, alias: &str) -> Option<Arc<Contig>> {
        if namespace == self.assembly {
            return self.by_alias.get(alias).cloned();
        }
        match namespace {
            "ga4gh" => self.by_accession.get(alias).cloned(),
            "sha512t24u" => self.by_accession.get(&format!("SQ.{alias}")).cloned(),
            // RefSeq-named FASTAs (NC_000001.11 …) answer refseq: lookups, as SeqRepo would.
            ns if ns.eq_ignore_ascii_case("refseq") => self
                .by_alias
                .get(alias)
                .filter(|c| c.name == alias)
                .cloned(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_spellings() {
        assert_eq!(alternate_names("chr1"), vec!["1".to_string()]);
        assert_eq!(alternate_names("1"), vec!["chr1".to_string()]);
        assert_eq!(
            alternate_names("chrM"),
            vec!["MT".to_string(), "M".to_string()]
        );
        assert_eq!(alternate_names("chr"), vec!["chrchr".to_string()]);
    }

    #[test]
    fn fasta_source_digests_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let fa = dir.path().join("ref.fa");
        fs::write(&fa, ">chr1 test\nACGTa\ncgt\n>2\nACGT\n").unwrap();
        fs::write(
            dir.path().join("ref.fa.fai"),
            "chr1\t8\t11\t5\t6\n2\t4\t24\t4\t5\n",
        )
        .unwrap();
        let src = FastaAliases::open("t", &fa, "GRCh38", None).unwrap();
        let chr1 = src.resolve("GRCh38", "1").unwrap();
        assert_eq!(
            &*chr1.accession,
            format!("SQ.{}", crate::vrs::digest::sha512t24u(b"ACGTACGT"))
        );
        assert_eq!(chr1.length, 8);
        assert_eq!(src.resolve("GRCh38", "chr2").unwrap().name, "2");
        assert!(src.resolve("GRCh37", "chr1").is_none());
        assert!(dir.path().join("ref.fa.refget.tsv").exists());
        // The sidecar is reused: same answer without recomputing.
        let again = FastaAliases::open("t", &fa, "GRCh38", None).unwrap();
        assert_eq!(
            again.resolve("ga4gh", &chr1.accession).unwrap().name,
            "chr1"
        );
    }
}
