//! Read-only access to a SeqRepo instance directory (spec 4.2): `aliases.sqlite3` maps
//! `namespace:alias` to a `seq_id`, `sequences/db.sqlite3` maps a `seq_id` to its length and the
//! BGZF FASTA file that holds it (record name = `seq_id`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::files::SequenceFile;
use super::{Contig, Store};
use crate::error::{Error, Result};

pub struct SeqRepo {
    uri: String,
    sequences_dir: PathBuf,
    aliases: Mutex<Connection>,
    seqinfo: Mutex<Connection>,
    files: Mutex<HashMap<PathBuf, Arc<SequenceFile>>>,
    contigs: Mutex<HashMap<String, Option<Arc<Contig>>>>,
    next_id: AtomicU32,
}

fn open_read_only(uri: &str, path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::source(
            uri,
            format!(
                "{} is missing: not a SeqRepo instance directory",
                path.display()
            ),
        ));
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::source(uri, format!("cannot open {}: {e}", path.display())))
}

/// SeqRepo's client-to-stored namespace translation (biocommons.seqrepo `_internal/translate.py`).
fn stored_name(namespace: &str, alias: &str) -> (String, String) {
    match namespace.to_ascii_lowercase().as_str() {
        "refseq" => ("NCBI".into(), alias.into()),
        "ensembl" => ("Ensembl".into(), alias.into()),
        "lrg" => ("LRG".into(), alias.into()),
        "sha512t24u" => ("VMC".into(), format!("GS_{alias}")),
        "ga4gh" => match alias.strip_prefix("SQ.") {
            Some(digest) => ("VMC".into(), format!("GS_{digest}")),
            None => (namespace.into(), alias.into()),
        },
        _ => (namespace.into(), alias.into()),
    }
}

impl SeqRepo {
    pub fn open(uri: &str, path: &Path) -> Result<SeqRepo> {
        // A SeqRepo root with a `latest` link is accepted too: users often point at the root.
        let instance = if !path.join("aliases.sqlite3").exists() && path.join("latest").exists() {
            path.join("latest")
        } else {
            path.to_path_buf()
        };
        if !instance.is_dir() {
            return Err(Error::source(
                uri,
                format!("{} is not a directory", instance.display()),
            ));
        }
        let aliases = open_read_only(uri, &instance.join("aliases.sqlite3"))?;
        let sequences_dir = instance.join("sequences");
        let seqinfo = open_read_only(uri, &sequences_dir.join("db.sqlite3"))?;
        // Fail now, not on the first record, if the databases are not SeqRepo's.
        for (conn, table) in [(&aliases, "seqalias"), (&seqinfo, "seqinfo")] {
            conn.query_row(&format!("SELECT count(*) FROM {table} LIMIT 1"), [], |_| {
                Ok(())
            })
            .map_err(|e| Error::source(uri, format!("no usable {table} table: {e}")))?;
        }
        Ok(SeqRepo {
            uri: uri.to_string(),
            sequences_dir,
            aliases: Mutex::new(aliases),
            seqinfo: Mutex::new(seqinfo),
            files: Mutex::new(HashMap::new()),
            contigs: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(0),
        })
    }

    fn db_err(&self, e: rusqlite::Error) -> Error {
        Error::source(&self.uri, format!("database query failed: {e}"))
    }

    /// The `seq_id` an alias names, if exactly one.
    fn seq_id(&self, namespace: &str, alias: &str) -> Result<Option<String>> {
        let (ns, alias) = stored_name(namespace, alias);
        let op = if alias.contains('%') { "LIKE" } else { "=" };
        let sql = format!(
            "SELECT DISTINCT seq_id FROM seqalias WHERE namespace = ?1 AND alias {op} ?2 AND is_current = 1 LIMIT 2"
        );
        let conn = self.aliases.lock().expect("alias db");
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.db_err(e))?;
        let ids: Vec<String> = stmt
            .query_map([&ns, &alias], |row| row.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        // More than one sequence under one alias is "not unique" in SeqRepo: treat as unknown.
        Ok(if ids.len() == 1 {
            ids.into_iter().next()
        } else {
            None
        })
    }

    fn contig(&self, seq_id: &str) -> Result<Option<Arc<Contig>>> {
        if let Some(hit) = self.contigs.lock().expect("contigs").get(seq_id) {
            return Ok(hit.clone());
        }
        let row: Option<(i64, String)> = {
            let conn = self.seqinfo.lock().expect("seqinfo db");
            conn.query_row(
                "SELECT len, relpath FROM seqinfo WHERE seq_id = ?1 ORDER BY added DESC LIMIT 1",
                [seq_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?
        };
        let contig = match row {
            None => None,
            Some((len, relpath)) => {
                let path = self.sequences_dir.join(relpath);
                let file = {
                    let mut files = self.files.lock().expect("files");
                    match files.get(&path) {
                        Some(f) => f.clone(),
                        None => {
                            let f = Arc::new(SequenceFile::open(&self.uri, &path)?);
                            files.insert(path, f.clone());
                            f
                        }
                    }
                };
                if file.record(seq_id).is_none() {
                    return Err(Error::source(
                        &self.uri,
                        format!("sequence {seq_id} is missing from {}", file.path.display()),
                    ));
                }
                Some(Arc::new(Contig {
                    id: self.next_id.fetch_add(1, Ordering::Relaxed),
                    accession: format!("SQ.{seq_id}").into(),
                    length: len as u64,
                    store: Store::File(file),
                    name: seq_id.to_string(),
                }))
            }
        };
        // Only the sequences it has: a client may name any number of `SQ.` digests it does not
        // have, and those misses are remembered, within a bound, by `SequenceSource::resolve`.
        if contig.is_some() {
            self.contigs
                .lock()
                .expect("contigs")
                .insert(seq_id.to_string(), contig.clone());
        }
        Ok(contig)
    }

    /// `namespace:alias` names of the sequence `digest` (its `SQ.` accession without `SQ.`).
    pub fn aliases(&self, digest: &str) -> Result<Vec<String>> {
        let conn = self.aliases.lock().expect("alias db");
        let mut stmt = conn
            .prepare_cached(
                "SELECT namespace, alias FROM seqalias WHERE seq_id = ?1 AND is_current = 1",
            )
            .map_err(|e| self.db_err(e))?;
        let names = stmt
            .query_map([digest], |row| {
                Ok(format!(
                    "{}:{}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?
                ))
            })
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e));
        names
    }

    pub fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        // The accession of any stored sequence is `SQ.<seq_id>`: no alias row is needed for it.
        if namespace == "ga4gh" {
            if let Some(digest) = alias.strip_prefix("SQ.") {
                return self.contig(digest);
            }
        }
        match self.seq_id(namespace, alias)? {
            Some(id) => self.contig(&id),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_translation() {
        assert_eq!(
            stored_name("refseq", "NC_1"),
            ("NCBI".into(), "NC_1".into())
        );
        assert_eq!(
            stored_name("RefSeq", "NC_1"),
            ("NCBI".into(), "NC_1".into())
        );
        assert_eq!(stored_name("ensembl", "E"), ("Ensembl".into(), "E".into()));
        assert_eq!(
            stored_name("ga4gh", "SQ.abc"),
            ("VMC".into(), "GS_abc".into())
        );
        assert_eq!(
            stored_name("sha512t24u", "abc"),
            ("VMC".into(), "GS_abc".into())
        );
        assert_eq!(
            stored_name("GRCh38", "chr1"),
            ("GRCh38".into(), "chr1".into())
        );
        // Assembly namespaces are case-sensitive, as SQLite's `=` is.
        assert_eq!(
            stored_name("grch38", "chr1"),
            ("grch38".into(), "chr1".into())
        );
    }

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/vectors/seqrepo/2024-01-01")
    }

    #[test]
    fn resolves_the_vector_instance_like_vrs_python() {
        let path = vectors();
        let repo = SeqRepo::open("test", &path).unwrap();
        let chr1 = repo.resolve("GRCh38", "chr1").unwrap().unwrap();
        assert_eq!(&*chr1.accession, "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW");
        assert_eq!(chr1.length, 397);
        let one = repo.resolve("GRCh38", "1").unwrap().unwrap();
        assert_eq!(one.accession, chr1.accession);
        let chr2 = repo.resolve("GRCh38", "chr2").unwrap().unwrap();
        assert_eq!(&*chr2.accession, "SQ.6tRJuRdYj-OAStRLAcYADMy3KoTwKL51");
        // No `GRCh38:2` alias in the vectors, no chr-prefix fallback, namespaces case-sensitive.
        assert!(repo.resolve("GRCh38", "2").unwrap().is_none());
        assert!(repo.resolve("grch38", "chr1").unwrap().is_none());
        assert!(repo.resolve("GRCh37", "chr1").unwrap().is_none());
        let by_acc = repo
            .resolve("ga4gh", "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW")
            .unwrap()
            .unwrap();
        assert_eq!(by_acc.length, 397);
        assert!(repo.resolve("ga4gh", "SQ.nope").unwrap().is_none());
    }
}
