//! The variation registry's storage: AnyVar's tables (`sequence_references`, `locations`,
//! `alleles`) in an embedded SQLite file or in PostgreSQL, loaded in bulk with duplicates
//! ignored, and the few queries the REST API needs.

mod postgres;
mod sqlite;

use std::collections::HashSet;
use std::thread::JoinHandle;

use crate::allele::{location_json, Allele};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::vcf::AlleleSink;

/// AnyVar's tables (and our range index), in a database's integer and JSON column types.
pub(crate) fn schema(int: &str, json: &str) -> String {
    format!(
        r#"
CREATE TABLE IF NOT EXISTS sequence_references (id TEXT PRIMARY KEY, molecule_type TEXT);
CREATE TABLE IF NOT EXISTS locations (
    id TEXT PRIMARY KEY, digest TEXT, sequence_reference_id TEXT REFERENCES sequence_references(id),
    start {int}, "end" {int}, start_outer {int}, start_inner {int}, end_outer {int}, end_inner {int});
CREATE TABLE IF NOT EXISTS alleles (
    id TEXT PRIMARY KEY, digest TEXT, location_id TEXT REFERENCES locations(id), state {json});
CREATE INDEX IF NOT EXISTS locations_range_idx ON locations (sequence_reference_id, start, "end");
CREATE INDEX IF NOT EXISTS alleles_location_idx ON alleles (location_id);
"#
    )
}

/// One row of `locations` joined to what the API returns.
pub(crate) struct LocationRow {
    pub digest: String,
    pub accession: String,
    pub start: i64,
    pub end: i64,
}

pub(crate) fn location_row_json(row: &LocationRow) -> String {
    let digest = Digest(row.digest.as_bytes().try_into().unwrap_or([b'?'; 32]));
    location_json(&digest, &row.accession, row.start as u64, row.end as u64)
}

pub(crate) fn allele_row_json(
    id: &str,
    digest: &str,
    state: &str,
    location: &LocationRow,
) -> String {
    format!(
        r#"{{"id":"{id}","type":"Allele","digest":"{digest}","location":{},"state":{state}}}"#,
        location_row_json(location)
    )
}

/// Rows of a batch with duplicates removed (a VCF repeats locations and sequence references).
pub(crate) struct Rows<'a> {
    pub references: Vec<&'a str>,
    pub locations: Vec<&'a Allele>,
    pub alleles: Vec<&'a Allele>,
}

impl<'a> Rows<'a> {
    pub fn of(batch: &'a [Allele]) -> Rows<'a> {
        let mut seen_refs = HashSet::new();
        let mut seen_locs = HashSet::new();
        let mut seen_alleles = HashSet::new();
        let mut rows = Rows {
            references: Vec::new(),
            locations: Vec::new(),
            alleles: Vec::new(),
        };
        for a in batch {
            if seen_refs.insert(&*a.accession) {
                rows.references.push(&a.accession);
            }
            if seen_locs.insert(a.location_digest) {
                rows.locations.push(a);
            }
            if seen_alleles.insert(a.digest) {
                rows.alleles.push(a);
            }
        }
        // Key order: neighbouring inserts touch neighbouring index pages, and concurrent
        // loaders take row locks in the same order, so they cannot deadlock.
        rows.references.sort_unstable();
        rows.locations.sort_unstable_by_key(|a| a.location_digest);
        rows.alleles.sort_unstable_by_key(|a| a.digest);
        rows
    }
}

/// A connection that loads batches of alleles (with their locations and references).
pub trait BulkWriter: Send {
    fn write(&mut self, batch: &[Allele]) -> Result<()>;
}

/// Where registered objects live, chosen by `ANYVAR_STORAGE_URI`.
pub enum Storage {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

impl Storage {
    /// `postgresql://…` (also `postgres://`, `postgresql+psycopg://`) or `sqlite:///path`
    /// (a plain path works too). Tables are created on first use.
    pub fn open(uri: &str) -> Result<Storage> {
        let (scheme, _) = uri.split_once("://").unwrap_or(("", uri));
        let base = scheme.split('+').next().unwrap_or("");
        match base {
            "postgresql" | "postgres" => {
                let url = format!("postgresql://{}", &uri[scheme.len() + 3..]);
                Ok(Storage::Postgres(postgres::PostgresStore::open(&url)?))
            }
            "sqlite" => Ok(Storage::Sqlite(sqlite::SqliteStore::open(
                &uri[scheme.len() + 3..],
            )?)),
            "" => Ok(Storage::Sqlite(sqlite::SqliteStore::open(uri)?)),
            other => Err(Error::Storage(format!(
                "unsupported storage URI scheme {other:?}: use postgresql://… or sqlite:///path"
            ))),
        }
    }

    /// A separate connection for bulk loading (one per annotation run).
    pub fn bulk_writer(&self) -> Result<Box<dyn BulkWriter>> {
        match self {
            Storage::Sqlite(s) => Ok(Box::new(s.writer()?)),
            Storage::Postgres(s) => Ok(Box::new(s.writer()?)),
        }
    }

    /// Registers a few alleles now (the registry endpoints).
    pub fn put(&self, alleles: &[Allele]) -> Result<()> {
        self.bulk_writer()?.write(alleles)
    }

    /// Any registered Allele (`ga4gh:VA.…`), SequenceLocation (`ga4gh:SL.…`) or
    /// SequenceReference (`SQ.…`, `ga4gh:SQ.…`) as JSON.
    pub fn get_object(&self, id: &str) -> Result<Option<String>> {
        match self {
            Storage::Sqlite(s) => s.get_object(id),
            Storage::Postgres(s) => s.get_object(id),
        }
    }

    /// Alleles on `accession` whose location overlaps `[start, end]`, ordered by id, after the
    /// id `after` (keyset pagination), at most `limit`.
    pub fn find_alleles(
        &self,
        accession: &str,
        start: i64,
        end: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        match self {
            Storage::Sqlite(s) => s.find_alleles(accession, start, end, after, limit),
            Storage::Postgres(s) => s.find_alleles(accession, start, end, after, limit),
        }
    }

    /// Connections loading in parallel: PostgreSQL takes several writers, SQLite one.
    fn loaders(&self) -> usize {
        match self {
            Storage::Sqlite(_) => 1,
            Storage::Postgres(_) => 2,
        }
    }

    /// Starts threads that load what the returned sink receives. Batches are queued (a few at
    /// most, so a slow database slows the annotation rather than filling memory), and whatever
    /// is queued when a loader is free goes into one transaction.
    pub fn spawn_loader(&self) -> Result<(LoaderSink, Loader)> {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<Allele>>(4);
        let mut handles = Vec::new();
        for i in 0..self.loaders() {
            let mut writer = self.bulk_writer()?;
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("anyvar-store-{i}"))
                .spawn(move || -> Result<u64> {
                    let mut stored = 0;
                    while let Ok(mut batch) = rx.recv() {
                        while batch.len() < MAX_TRANSACTION {
                            match rx.try_recv() {
                                Ok(more) => batch.extend(more),
                                Err(_) => break,
                            }
                        }
                        writer.write(&batch)?;
                        stored += batch.len() as u64;
                    }
                    Ok(stored)
                })
                .map_err(|e| Error::Storage(format!("cannot start the storage thread: {e}")))?;
            handles.push(handle);
        }
        Ok((LoaderSink { tx: Some(tx) }, Loader { handles }))
    }
}

/// Alleles a loader commits in one transaction at most: larger transactions load SQLite a
/// little faster but make the server's memory grow with a backlog (measured: 1.6× the peak for
/// 10× the records at 100,000, 1.2-1.3× at 25,000).
const MAX_TRANSACTION: usize = 25_000;

/// The annotation side of a loader: an [`AlleleSink`] that queues batches.
pub struct LoaderSink {
    tx: Option<crossbeam_channel::Sender<Vec<Allele>>>,
}

impl AlleleSink for LoaderSink {
    fn put(&mut self, alleles: &[Allele]) -> std::result::Result<(), String> {
        let tx = self.tx.as_ref().ok_or("the loader is closed")?;
        // A send fails only when the loader thread stopped on an error; `Loader::wait` has it.
        tx.send(alleles.to_vec())
            .map_err(|_| "the storage loader stopped (see its error)".to_string())
    }
}

/// The storage side of a loader: wait for it to have stored everything.
pub struct Loader {
    handles: Vec<JoinHandle<Result<u64>>>,
}

impl Loader {
    /// Closes `sink` and waits until every queued allele is committed; returns how many were
    /// written (duplicates included).
    pub fn wait(self, sink: LoaderSink) -> Result<u64> {
        drop(sink);
        let mut stored = 0;
        let mut first_error = None;
        for handle in self.handles {
            match handle.join() {
                Ok(Ok(n)) => stored += n,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(Error::Storage("a storage thread panicked".into()));
                }
            }
        }
        first_error.map_or(Ok(stored), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allele::{identify, NormalizedAllele, State};
    use std::sync::Arc;

    pub(crate) fn sample_alleles() -> Vec<Allele> {
        let acc: Arc<str> = "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW".into();
        let mut buf = Vec::new();
        let mk = |start, end, state| NormalizedAllele { start, end, state };
        vec![
            identify(
                &mut buf,
                &acc,
                mk(
                    10,
                    11,
                    State::Literal {
                        sequence: b"G".to_vec(),
                    },
                ),
                &mut None,
            ),
            identify(
                &mut buf,
                &acc,
                mk(10, 11, State::reference_length(1, 1, b"A")),
                &mut None,
            ),
            identify(
                &mut buf,
                &acc,
                mk(40, 50, State::reference_length(9, 1, b"AAAAAAAAA")),
                &mut None,
            ),
            identify(
                &mut buf,
                &acc,
                mk(
                    10,
                    11,
                    State::Literal {
                        sequence: b"G".to_vec(),
                    },
                ),
                &mut None,
            ),
        ]
    }

    pub(crate) fn exercise(storage: &Storage) {
        let alleles = sample_alleles();
        let (sink, loader) = storage.spawn_loader().unwrap();
        let mut sink = sink;
        sink.put(&alleles).unwrap();
        sink.put(&alleles[..2]).unwrap();
        assert_eq!(loader.wait(sink).unwrap(), 6);
        let snv = &alleles[0];
        let json = storage.get_object(&snv.id()).unwrap().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&snv.to_json()).unwrap();
        assert_eq!(parsed, expected);
        let loc = storage.get_object(&snv.location_id()).unwrap().unwrap();
        assert!(loc.contains("\"start\":10"), "{loc}");
        let seqref = storage
            .get_object("ga4gh:SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW")
            .unwrap()
            .unwrap();
        assert!(seqref.contains("SequenceReference"));
        assert!(storage.get_object("ga4gh:VA.nope").unwrap().is_none());
        let all = storage
            .find_alleles(&snv.accession, 0, 100, "", 10)
            .unwrap();
        assert_eq!(all.len(), 3);
        let first = storage.find_alleles(&snv.accession, 0, 100, "", 2).unwrap();
        assert_eq!(first.len(), 2);
        let first_id: serde_json::Value = serde_json::from_str(&first[1]).unwrap();
        let rest = storage
            .find_alleles(&snv.accession, 0, 100, first_id["id"].as_str().unwrap(), 2)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            storage
                .find_alleles(&snv.accession, 60, 100, "", 10)
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            storage
                .find_alleles(&snv.accession, 45, 46, "", 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn sqlite_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&format!(
            "sqlite://{}",
            dir.path().join("r.sqlite3").display()
        ))
        .unwrap();
        exercise(&storage);
    }
}
