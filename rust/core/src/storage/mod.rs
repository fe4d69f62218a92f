//! The variation registry's storage: AnyVar 1.0's tables (`sequence_references`, `locations`,
//! `alleles`, with its column names, so AnyVar and this service can share a database) and our
//! search index `allele_bins` (see [`bins`]), in an embedded SQLite file or in PostgreSQL.
//!
//! Identifiers are digests, so a VCF's alleles arrive in random id order, and a B-tree takes
//! random keys several times slower than sorted ones. A whole VCF is therefore registered by a
//! loader ([`Storage::register_from`]): while the VCF is annotated it only asks the database which alleles are new, lists
//! those in `allele_bins` and sorts them on disk; afterwards it loads locations, then alleles,
//! in id order.

use std::sync::Mutex;

mod bins;
mod loader;
pub mod metadata;
mod postgres;
mod spill;
mod sqlite;

pub use self::loader::{LoadProgress, Pending};
use crate::alleles::AlleleSink;
use crate::error::{Error, Result};
use crate::vrs::digest::Digest;
use crate::vrs::model::{Allele, State};

/// One database's spelling of the schema's types.
pub(crate) struct Dialect {
    /// Identifiers, compared byte by byte (the order the loader sorts in).
    pub id: &'static str,
    pub int: &'static str,
    pub json: &'static str,
    pub blob: &'static str,
    pub molecule_type: &'static str,
    /// After `CREATE TABLE (…)` of a table keyed by its id.
    pub keyed_table: &'static str,
    /// An integer key the database numbers itself (`annotations`, `variation_mappings`).
    pub serial_key: &'static str,
    /// AnyVar's `mapping_type` enum (its member names: `LIFTOVER`…).
    pub mapping_type: &'static str,
    /// After `CAST($n AS TEXT)`: makes a text parameter a JSON value, and a mapping type.
    pub to_json: &'static str,
    pub to_mapping_type: &'static str,
    /// A JSON array of arrays in `$1`, as rows `j` (many rows in one statement)...
    pub json_rows: &'static str,
    /// ... and element `{i}` of row `j`, as text.
    pub json_item: &'static str,
}

/// AnyVar 1.0's tables (with its `vrs_objects`, `annotations` and `variation_mappings`), AnyVar
/// main's categorical variant tables, and our search index. AnyVar's foreign keys and GiST range index are left
/// out: their per-row checks cost more than the rest of loading together, the loader commits
/// references and locations before the alleles that name them, and searches use `allele_bins`.
pub(crate) fn schema(d: &Dialect) -> String {
    let Dialect {
        id,
        int,
        json,
        blob,
        molecule_type,
        keyed_table,
        serial_key,
        mapping_type,
        ..
    } = d;
    format!(
        r#"
CREATE TABLE IF NOT EXISTS sequence_references (
    id {id} PRIMARY KEY, molecule_type {molecule_type}){keyed_table};
CREATE TABLE IF NOT EXISTS locations (
    id {id} PRIMARY KEY, sequence_reference_id {id} NOT NULL, start_pos {int}, end_pos {int},
    start_outer {int}, start_inner {int}, end_outer {int}, end_inner {int}){keyed_table};
CREATE TABLE IF NOT EXISTS alleles (
    id {id} PRIMARY KEY, location_id {id} NOT NULL, state {json} NOT NULL){keyed_table};
CREATE TABLE IF NOT EXISTS allele_bins (
    sequence_reference_id {id} NOT NULL, bin {int} NOT NULL, alleles {blob} NOT NULL);
CREATE INDEX IF NOT EXISTS allele_bins_idx ON allele_bins (sequence_reference_id, bin);
CREATE TABLE IF NOT EXISTS vrs_objects (id {id} PRIMARY KEY, vrs_object {json} NOT NULL){keyed_table};
CREATE TABLE IF NOT EXISTS annotations (
    id {serial_key}, object_id {id} NOT NULL, annotation_type {id} NOT NULL,
    annotation_value {json} NOT NULL);
CREATE INDEX IF NOT EXISTS idx_annotations_object_id_annotation_type
    ON annotations (object_id, annotation_type);
CREATE TABLE IF NOT EXISTS variation_mappings (
    id {serial_key}, source_id {id} NOT NULL, dest_id {id} NOT NULL,
    mapping_type {mapping_type} NOT NULL, UNIQUE (source_id, dest_id, mapping_type));
CREATE INDEX IF NOT EXISTS idx_mappings_source_id ON variation_mappings (source_id);
CREATE INDEX IF NOT EXISTS idx_mappings_dest_id ON variation_mappings (dest_id);
CREATE INDEX IF NOT EXISTS idx_mappings_source_id_type ON variation_mappings (source_id, mapping_type);
CREATE TABLE IF NOT EXISTS canonical_alleles (
    id {id} PRIMARY KEY, name {id} NOT NULL, allele_id {id} NOT NULL){keyed_table};
CREATE TABLE IF NOT EXISTS protein_sequence_consequences (
    id {id} PRIMARY KEY, name {id} NOT NULL, allele_id {id} NOT NULL){keyed_table};
"#
    )
}

/// The columns the registry reads and writes, by table.
const COLUMNS: [(&str, &[&str]); 9] = [
    ("sequence_references", &["id"]),
    (
        "locations",
        &["id", "sequence_reference_id", "start_pos", "end_pos"],
    ),
    ("alleles", &["id", "location_id", "state"]),
    ("allele_bins", &["sequence_reference_id", "bin", "alleles"]),
    ("vrs_objects", &["id", "vrs_object"]),
    (
        "annotations",
        &["id", "object_id", "annotation_type", "annotation_value"],
    ),
    (
        "variation_mappings",
        &["id", "source_id", "dest_id", "mapping_type"],
    ),
    ("canonical_alleles", &["id", "name", "allele_id"]),
    (
        "protein_sequence_consequences",
        &["id", "name", "allele_id"],
    ),
];

/// Fails when an existing table lacks a column we use (a database of another program, or of
/// another AnyVar schema version): better now than on the first registration.
pub(crate) fn check_columns(
    database: &str,
    mut found: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<()> {
    for (table, columns) in COLUMNS {
        let have = found(table)?;
        if let Some(missing) = columns.iter().find(|c| !have.iter().any(|h| h == *c)) {
            return Err(Error::Storage(format!(
                "{database}: table {table} has no column {missing}; \
                 it does not hold AnyVar 1.0's schema"
            )));
        }
    }
    Ok(())
}

/// A row of `locations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocationRow {
    pub digest: Digest,
    pub accession: String,
    pub start: u64,
    pub end: u64,
}

/// A row of `alleles` (its `state` column is `state`'s JSON dump).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AlleleRow {
    pub digest: Digest,
    pub location: Digest,
    pub state: State,
}

/// A row of `allele_bins`: `alleles` holds [`bins::encode`] entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BinRow {
    pub accession: String,
    pub bin: i64,
    pub alleles: Vec<u8>,
}

impl LocationRow {
    fn of(a: &Allele) -> LocationRow {
        LocationRow {
            digest: a.location_digest,
            accession: a.accession.to_string(),
            start: a.start,
            end: a.end,
        }
    }
}

impl AlleleRow {
    fn of(a: &Allele) -> AlleleRow {
        AlleleRow {
            digest: a.digest,
            location: a.location_digest,
            state: a.state.clone(),
        }
    }
}

/// Entries per `allele_bins` row at most: a row stays under 2 kB, which PostgreSQL keeps in the
/// table instead of moving it to TOAST storage.
const BIN_ROW_ENTRIES: usize = 48;

/// An allele as `allele_bins` lists it: sequence, digest, start, end.
type BinEntry<'a> = (&'a str, Digest, u64, u64);

/// `allele_bins` rows listing these alleles under every bin they touch.
fn bin_rows(alleles: &[BinEntry<'_>]) -> Vec<BinRow> {
    let mut entries: Vec<(&str, i64, &BinEntry<'_>)> = alleles
        .iter()
        .flat_map(|a| bins::of_location(a.2, a.3).map(move |b| (a.0, b, a)))
        .collect();
    entries.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    let mut rows = Vec::new();
    for group in entries.chunk_by(|x, y| (x.0, x.1) == (y.0, y.1)) {
        for part in group.chunks(BIN_ROW_ENTRIES) {
            let mut data = Vec::with_capacity(part.len() * 40);
            for (_, _, (_, digest, start, end)) in part {
                bins::encode(&mut data, digest, *start, *end);
            }
            rows.push(BinRow {
                accession: part[0].0.to_string(),
                bin: part[0].1,
                alleles: data,
            });
        }
    }
    rows
}

/// A `ga4gh:VA.…` or `ga4gh:SL.…` identifier.
pub(crate) struct Id([u8; 41]);

impl Id {
    pub fn as_str(&self) -> &str {
        // A prefix and a base64url digest: ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The kinds of object a registration looks up before it loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Allele,
    Location,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Allele => "alleles",
            Kind::Location => "locations",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Allele => "ga4gh:VA.",
            Kind::Location => "ga4gh:SL.",
        }
    }

    /// The id of `digest`, built on the stack (the loader writes millions).
    fn id(self, digest: &Digest) -> Id {
        let mut id = [0u8; 41];
        id[..9].copy_from_slice(self.prefix().as_bytes());
        id[9..].copy_from_slice(&digest.0);
        Id(id)
    }

    /// The digests of the ids in `found`, sorted (ids of another form are left out).
    fn digests(self, found: Vec<String>) -> Vec<Digest> {
        let mut digests: Vec<Digest> = found
            .iter()
            .filter_map(|id| id.strip_prefix(self.prefix())?.as_bytes().try_into().ok())
            .map(Digest)
            .collect();
        digests.sort_unstable();
        digests
    }
}

/// One connection's part in registering alleles. Every write is its own transaction and skips
/// rows that already exist, so a failed, repeated or concurrent run leaves a consistent registry.
pub(crate) trait Writer: Send {
    /// Which of `digests` (sorted, distinct) are registered objects of this kind, sorted. A
    /// writer whose location inserts skip existing rows as cheaply as a lookup finds them may
    /// answer none for locations; alleles must be answered (the search index lists only new
    /// ones).
    fn registered(&mut self, kind: Kind, digests: &[Digest]) -> Result<Vec<Digest>>;
    fn write_references(&mut self, accessions: &[&str]) -> Result<()>;
    /// Rows in id order, distinct, none registered when the run looked them up.
    fn write_locations(&mut self, rows: &[LocationRow]) -> Result<()>;
    /// Rows in id order, distinct, none registered when the run looked them up. Returns how
    /// many were new to the database (a concurrent writer may have stored some meanwhile).
    fn write_alleles(&mut self, rows: &[AlleleRow]) -> Result<u64>;
    fn write_bins(&mut self, rows: &[BinRow]) -> Result<()>;
    /// Returns once everything committed to the database so far, by any connection, survives a
    /// crash of the machine (one call ends a registration).
    fn make_durable(&mut self) -> Result<()>;
}

/// What of a batch is not registered yet, as positions in the batch.
struct Admitted {
    /// New alleles, each once.
    alleles: Vec<usize>,
    /// New alleles with a location not known to be registered, each location once.
    locations: Vec<usize>,
}

/// `registered` over all `writers` at once, each looking up a contiguous part of `digests` (in a
/// populated PostgreSQL database lookups are what a registration waits for).
fn registered(
    writers: &mut [Box<dyn Writer>],
    kind: Kind,
    digests: &[Digest],
) -> Result<Vec<Digest>> {
    if writers.len() == 1 || digests.len() < 1_000 {
        return writers[0].registered(kind, digests);
    }
    let part = digests.len().div_ceil(writers.len());
    std::thread::scope(|scope| {
        let lookups: Vec<_> = (writers.iter_mut())
            .zip(digests.chunks(part))
            .map(|(writer, part)| scope.spawn(move || writer.registered(kind, part)))
            .collect();
        let mut known = Vec::new();
        for lookup in lookups {
            let found = lookup
                .join()
                .unwrap_or_else(|_| Err(Error::Storage("a lookup thread panicked".into())));
            known.extend(found?); // parts in digest order: so is the concatenation
        }
        Ok(known)
    })
}

/// Of `positions` in `batch`, one for each distinct `key` that the database does not know.
fn unknown(
    writers: &mut [Box<dyn Writer>],
    kind: Kind,
    batch: &[Allele],
    positions: impl Iterator<Item = usize>,
    key: fn(&Allele) -> Digest,
) -> Result<Vec<usize>> {
    // Keys sorted next to their positions: no trip into the batch per comparison.
    let mut keyed: Vec<(Digest, usize)> = positions.map(|i| (key(&batch[i]), i)).collect();
    keyed.sort_unstable();
    keyed.dedup_by_key(|(d, _)| *d);
    let digests: Vec<Digest> = keyed.iter().map(|(d, _)| *d).collect();
    let known = registered(writers, kind, &digests)?;
    // Both in digest order: one merge pass.
    let mut known = known.iter().peekable();
    Ok(keyed
        .into_iter()
        .filter(|(d, _)| {
            while known.next_if(|k| *k < d).is_some() {}
            known.peek() != Some(&d)
        })
        .map(|(_, i)| i)
        .collect())
}

/// Looks up the alleles of `batch` and the locations of the new ones, and lists the new alleles
/// in `allele_bins`. Bins go first: a search skips an entry whose allele is not stored yet, while
/// an allele stored without its entry could never be found.
fn admit(writers: &mut [Box<dyn Writer>], batch: &[Allele]) -> Result<Admitted> {
    let alleles = unknown(writers, Kind::Allele, batch, 0..batch.len(), |a| a.digest)?;
    let locations = unknown(
        writers,
        Kind::Location,
        batch,
        alleles.iter().copied(),
        |a| a.location_digest,
    )?;
    let entries: Vec<BinEntry<'_>> = alleles
        .iter()
        .map(|&i| &batch[i])
        .map(|a| (&*a.accession, a.digest, a.start, a.end))
        .collect();
    writers[0].write_bins(&bin_rows(&entries))?;
    Ok(Admitted { alleles, locations })
}

/// What one database does for the registry; SQLite and PostgreSQL implement it, and
/// everything above (registration, lookups, search, [`metadata`]) is written once over it.
///
/// This is where a new storage backend plugs in: it implements `Store` and a [`Writer`] for its
/// connections, spells the schema's types in a [`Dialect`] (the tables come from [`schema`],
/// checked by [`check_columns`]), and gets a URI scheme in [`Storage::open`]. The JSON it
/// returns is made by `crate::vrs::serialize` from the stored columns, so every backend
/// answers byte for byte alike.
pub(crate) trait Store: Send + Sync {
    /// A connection of its own for one part of a registration.
    fn writer(&self) -> Result<Box<dyn Writer>>;
    /// How many writers one registration may use at once.
    fn max_writers(&self) -> usize;
    /// A SequenceLocation (`ga4gh:SL.…`) or SequenceReference (`SQ.…`) as JSON.
    fn location_or_reference(&self, id: &str) -> Result<Option<String>>;
    /// The API's JSON of the stored alleles among `digests` (sorted, distinct), in id order.
    fn alleles(&self, digests: &[Digest]) -> Result<Vec<String>>;
    /// The `allele_bins` entries of `accession` in bins `first..=last` and the wide bin.
    fn bins(&self, accession: &str, first: i64, last: i64) -> Result<Vec<Vec<u8>>>;
    /// The spelling of [`metadata`]'s statements in this database.
    fn dialect(&self) -> &'static Dialect;
    /// Runs `statements` (numbered `$1…` text parameters, in order of first use) in one
    /// transaction; returns the rows each changed.
    fn execute(&self, statements: &[(&str, &[&str])]) -> Result<Vec<u64>>;
    /// The rows of `sql`, every column read as text (NULL as None).
    fn query(&self, sql: &str, params: &[&str]) -> Result<Vec<Vec<Option<String>>>>;
}

/// Where registered objects live, chosen by `ANYVAR_STORAGE_URI`.
pub struct Storage {
    store: Box<dyn Store>,
    /// The writer of the last `put`, kept for the next: a registry request then costs no new
    /// connection (measured: 6.4 of a single `PUT /variation`'s 10.6 ms on PostgreSQL).
    spare: Mutex<Option<Box<dyn Writer>>>,
}

impl Storage {
    /// `postgresql://…` (also `postgres://`, `postgresql+psycopg://`) or `sqlite:///path`
    /// (a plain path works too). Tables are created on first use.
    pub fn open(uri: &str) -> Result<Storage> {
        let (scheme, _) = uri.split_once("://").unwrap_or(("", uri));
        let base = scheme.split('+').next().unwrap_or("");
        let store: Box<dyn Store> = match base {
            "postgresql" | "postgres" => {
                let url = format!("postgresql://{}", &uri[scheme.len() + 3..]);
                Box::new(postgres::PostgresStore::open(&url)?)
            }
            "sqlite" => Box::new(sqlite::SqliteStore::open(&uri[scheme.len() + 3..])?),
            "" => Box::new(sqlite::SqliteStore::open(uri)?),
            other => {
                return Err(Error::Storage(format!(
                    "unsupported storage URI scheme {other:?}: use postgresql://… or sqlite:///path"
                )))
            }
        };
        Ok(Storage {
            store,
            spare: Mutex::new(None),
        })
    }

    /// Connections for one registration: up to `parallel` (at least one), as many as the
    /// database takes at once.
    fn writers(&self, parallel: usize) -> Result<Vec<Box<dyn Writer>>> {
        let count = parallel.clamp(1, self.store.max_writers());
        (0..count).map(|_| self.store.writer()).collect()
    }

    /// Registers a few alleles now (the registry endpoints); returns how many were new.
    pub fn put(&self, alleles: &[Allele]) -> Result<u64> {
        let kept = self.spare.lock().expect("spare writer").take();
        let reused = kept.is_some();
        let mut writer = match kept {
            Some(w) => w,
            None => self.store.writer()?,
        };
        let outcome = match Self::put_with(&mut writer, alleles) {
            // The kept connection may have been closed by the server meanwhile (a restart,
            // an idle timeout): once more on a new one (every write skips what exists).
            Err(_) if reused => {
                writer = self.store.writer()?;
                Self::put_with(&mut writer, alleles)
            }
            outcome => outcome,
        };
        if outcome.is_ok() {
            *self.spare.lock().expect("spare writer") = Some(writer);
        }
        outcome
    }

    fn put_with(writer: &mut Box<dyn Writer>, alleles: &[Allele]) -> Result<u64> {
        let writers = std::slice::from_mut(writer);
        let new = admit(writers, alleles)?;
        let mut locations: Vec<LocationRow> = new
            .locations
            .iter()
            .map(|&i| LocationRow::of(&alleles[i]))
            .collect();
        locations.sort_unstable_by_key(|r| r.digest);
        let mut rows: Vec<AlleleRow> = new
            .alleles
            .iter()
            .map(|&i| AlleleRow::of(&alleles[i]))
            .collect();
        rows.sort_unstable_by_key(|r| r.digest);
        loader::load(
            writers,
            new.locations
                .iter()
                .map(|&i| &*alleles[i].accession)
                .collect(),
            locations.into_iter().map(Ok),
            rows.into_iter().map(Ok),
            None,
        )
    }

    /// Registers the alleles `produce` puts into its sink (a run's annotation or ingest): see
    /// [`loader::register_from`]. PostgreSQL loads over up to `parallel` connections.
    pub fn register_from<T>(
        &self,
        parallel: usize,
        produce: impl FnOnce(&mut dyn AlleleSink) -> Result<T>,
    ) -> Result<(T, Pending)> {
        loader::register_from(self.writers(parallel)?, produce)
    }

    /// Any registered Allele (`ga4gh:VA.…`), SequenceLocation (`ga4gh:SL.…`),
    /// SequenceReference (`SQ.…`, `ga4gh:SQ.…`) or other VRS object (`vrs_objects`) as JSON.
    pub fn get_object(&self, id: &str) -> Result<Option<String>> {
        if let Some(digest) = id.strip_prefix("ga4gh:VA.") {
            let Ok(digest) = digest.as_bytes().try_into().map(Digest) else {
                return Ok(None);
            };
            return Ok(self.alleles(&[digest])?.pop());
        }
        if id.starts_with("ga4gh:SL.") || id.trim_start_matches("ga4gh:").starts_with("SQ.") {
            if let Some(found) = self.store.location_or_reference(id)? {
                return Ok(Some(found));
            }
        }
        // Objects of other kinds, and locations or references stored on their own.
        metadata::get_object(&*self.store, id)
    }

    fn alleles(&self, digests: &[Digest]) -> Result<Vec<String>> {
        self.store.alleles(digests)
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
        let (first, last) = bins::of_query(start.max(0) as u64, end.max(0) as u64);
        let rows = self.store.bins(accession, first, last)?;
        // Ids share one prefix, so they sort as their digests do.
        let after_id = |d: &Digest| {
            b"ga4gh:VA."
                .iter()
                .chain(&d.0)
                .cmp(after.as_bytes())
                .is_gt()
        };
        let mut hits: Vec<Digest> = rows
            .iter()
            .flat_map(|row| bins::decode(row))
            .filter(|&(d, s, e)| s as i64 <= end && e as i64 >= start && after_id(&d))
            .map(|(d, _, _)| d)
            .collect();
        hits.sort_unstable();
        hits.dedup();
        let limit = limit.max(0) as usize;
        let mut found = Vec::new();
        // Entries whose allele is not stored (a failed run) are skipped: while the page is short,
        // each query asks for twice as many candidates, so many such entries cost few queries.
        let (mut next, mut ask) = (0, limit.max(1));
        while found.len() < limit && next < hits.len() {
            let candidates = &hits[next..hits.len().min(next + ask)];
            found.extend(self.alleles(candidates)?);
            next += candidates.len();
            ask = (ask * 2).min(1 << 16);
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrs::identify::identify;
    use crate::vrs::model::NormalizedAllele;
    use std::sync::Arc;

    pub(crate) fn sample_alleles() -> Vec<Allele> {
        let acc: Arc<str> = "SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW".into();
        let mut buf = Vec::new();
        let mut make = |start, end, state| {
            identify(
                &mut buf,
                &acc,
                NormalizedAllele { start, end, state },
                &mut None,
            )
        };
        let g = || State::Literal {
            sequence: b"G".to_vec(),
        };
        vec![
            make(10, 11, g()),
            make(10, 11, State::reference_length(1, 1, b"A")),
            make(40, 50, State::reference_length(9, 1, b"AAAAAAAAA")),
            make(10, 11, g()),
            // Touches bins 0 and 1; a query on bin 1 alone must find it.
            make(16_380, 16_390, g()),
            // Wider than any bin list: kept in the wide bin, found from anywhere it overlaps.
            make(0, 5_000_000, g()),
        ]
    }

    /// What every storage must do: load through the loader and through `put`, ignore
    /// duplicates, serve objects, and find alleles by range with keyset pages.
    pub(crate) fn exercise(storage: &Storage) {
        let alleles = sample_alleles();
        let (received, pending) = storage
            .register_from(2, |sink| {
                sink.put(alleles.clone()).map_err(Error::Sink)?;
                sink.put(alleles[..2].to_vec()).map_err(Error::Sink)?;
                Ok("received")
            })
            .unwrap();
        assert_eq!(received, "received", "what the producer returned");
        let progress = pending.progress();
        let distinct = |f: fn(&Allele) -> Digest| {
            alleles
                .iter()
                .map(f)
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64
        };
        // Each distinct allele is counted once, however often it came.
        assert_eq!(pending.wait().unwrap(), distinct(|a| a.digest));
        // Every distinct location and allele was new, and all of them were committed.
        let rows = distinct(|a| a.location_digest) + distinct(|a| a.digest);
        assert_eq!(progress.get(), (rows, rows));
        assert_eq!(storage.put(&alleles[1..3]).unwrap(), 0, "none new");
        assert_eq!(storage.put(&alleles[5..]).unwrap(), 0);

        let snv = &alleles[0];
        let json = storage.get_object(&snv.id()).unwrap().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&snv.to_json()).unwrap();
        assert_eq!(parsed, expected);
        let loc = storage.get_object(&snv.location_id()).unwrap().unwrap();
        let loc: serde_json::Value = serde_json::from_str(&loc).unwrap();
        assert_eq!(loc, expected["location"]);
        let seqref = storage.get_object(&format!("ga4gh:{}", snv.accession));
        assert!(seqref.unwrap().unwrap().contains("SequenceReference"));
        assert!(storage.get_object("ga4gh:VA.nope").unwrap().is_none());

        let ids = |start, end, after: &str, limit| -> Vec<String> {
            storage
                .find_alleles(&snv.accession, start, end, after, limit)
                .unwrap()
                .iter()
                .map(|j| serde_json::from_str::<serde_json::Value>(j).unwrap()["id"].to_string())
                .collect()
        };
        let all = ids(0, 100, "", 10);
        assert_eq!(all.len(), 4, "{all:?}");
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "ordered by id");
        let first = ids(0, 100, "", 2);
        let after = first[1].trim_matches('"');
        assert_eq!(ids(0, 100, after, 10), all[2..].to_vec());
        assert_eq!(ids(60, 100, "", 10).len(), 1, "only the wide allele");
        assert_eq!(ids(45, 46, "", 10).len(), 2);
        assert_eq!(ids(50, 50, "", 10).len(), 2, "closed intervals touch");
        assert_eq!(ids(16_385, 16_386, "", 10).len(), 2);
        assert_eq!(ids(5_000_001, 9_000_000, "", 10).len(), 0);
    }

    /// A run that fails stores nothing of what it produced, and its error is the one reported.
    #[test]
    fn a_failed_producer_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("r.db").to_string_lossy()).unwrap();
        let alleles = sample_alleles();
        let failed = storage.register_from(1, |sink| -> Result<()> {
            sink.put(alleles.clone()).map_err(Error::Sink)?;
            Err(Error::InvalidArgument("line 7 is broken".into()))
        });
        assert!(matches!(failed, Err(Error::InvalidArgument(m)) if m == "line 7 is broken"));
        assert!(storage.get_object(&alleles[0].id()).unwrap().is_none());
    }

    /// A sink that stopped taking alleles because the loader failed is reported with the
    /// loader's error, which says what went wrong, not the sink's "loader stopped".
    #[test]
    fn the_loaders_error_explains_a_stopped_sink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let storage = Storage::open(&path.to_string_lossy()).unwrap();
        let alleles = sample_alleles();
        let failed = storage.register_from(1, |sink| -> Result<()> {
            // The loader's lookups now fail: its thread stops, and the sink with it.
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute_batch("DROP TABLE alleles").unwrap();
            for _ in 0..1000 {
                sink.put(alleles.clone()).map_err(Error::Sink)?;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            panic!("the sink kept taking alleles after the loader failed");
        });
        match failed {
            Err(Error::Storage(m)) => assert!(m.contains("alleles"), "{m}"),
            Err(e) => panic!("expected the loader's storage error, got {e:?}"),
            Ok(_) => panic!("expected the loader's storage error"),
        }
    }

    /// Another writer stores the run's new alleles between the run's lookup and its load: the
    /// load still succeeds (PostgreSQL's COPY conflicts and falls back), and nothing is doubled.
    pub(crate) fn exercise_lost_race(storage: &Storage) {
        let alleles = sample_alleles();
        let mut run = storage.writers(1).unwrap();
        let new = admit(&mut run, &alleles).unwrap();
        assert_eq!(new.alleles.len(), 5, "all new at lookup");
        storage.put(&alleles).unwrap();
        let rows = |positions: &[usize], f: fn(&Allele) -> Digest| {
            let mut p = positions.to_vec();
            p.sort_by_key(|&i| f(&alleles[i]));
            p
        };
        let inserted = loader::load(
            &mut run,
            vec![&*alleles[0].accession],
            rows(&new.locations, |a| a.location_digest)
                .into_iter()
                .map(|i| Ok(LocationRow::of(&alleles[i]))),
            rows(&new.alleles, |a| a.digest)
                .into_iter()
                .map(|i| Ok(AlleleRow::of(&alleles[i]))),
            None,
        )
        .unwrap();
        assert_eq!(inserted, 0, "the other writer's rows are not counted again");
        let found = storage
            .find_alleles(&alleles[0].accession, 0, 10_000_000, "", 100)
            .unwrap();
        assert_eq!(found.len(), 5, "each allele once");
        assert!(storage.get_object(&alleles[2].id()).unwrap().is_some());
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

    #[test]
    fn sqlite_lost_race() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite://{}", dir.path().join("r.sqlite3").display());
        exercise_lost_race(&Storage::open(&uri).unwrap());
    }

    #[test]
    fn bin_rows_group_by_sequence_and_bin() {
        let alleles = sample_alleles();
        let entries: Vec<BinEntry<'_>> = alleles
            .iter()
            .map(|a| (&*a.accession, a.digest, a.start, a.end))
            .collect();
        let rows = bin_rows(&entries);
        let bins: Vec<i64> = rows.iter().map(|r| r.bin).collect();
        assert_eq!(bins, vec![bins::WIDE, 0, 1]);
        let zero: Vec<_> = bins::decode(&rows[1].alleles).collect();
        assert_eq!(zero.len(), 5);
        assert_eq!(zero[0], (alleles[0].digest, 10, 11));
        // A dense bin is cut into rows of at most BIN_ROW_ENTRIES.
        let many: Vec<BinEntry<'_>> = (0..BIN_ROW_ENTRIES as u64 + 1)
            .map(|i| (&*alleles[0].accession, alleles[0].digest, i, i + 1))
            .collect();
        let rows = bin_rows(&many);
        assert_eq!(rows.len(), 2);
        assert_eq!(bins::decode(&rows[0].alleles).count(), BIN_ROW_ENTRIES);
    }
}
