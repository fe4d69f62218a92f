//! The PostgreSQL registry: AnyVar 1.0's tables, created when missing (or used as AnyVar left
//! them), loaded with `COPY` of the rows the annotation phase found missing; should another writer
//! insert one of them meanwhile, that chunk is loaded again through `INSERT … ON CONFLICT DO
//! NOTHING`, which is safe under concurrency but about half as fast.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Transaction};

use super::{
    bin_rows, bins, check_columns, schema, AlleleRow, BinEntry, BinRow, Dialect, Kind, LocationRow,
    Store, Writer,
};
use crate::error::{Error, Result};
use crate::vrs::digest::Digest;
use crate::vrs::serialize::{sequence_reference_json, stored_allele_json, stored_location_json};

const DIALECT: Dialect = Dialect {
    // Byte order, the order the loader sorts in (a database's default collation may differ).
    id: r#"varchar COLLATE "C""#,
    // AnyVar's `integer` cannot hold positions past 2^31 on the largest chromosomes of some
    // species; `bigint` holds everything AnyVar writes.
    int: "bigint",
    json: "jsonb",
    blob: "bytea",
    molecule_type: "molecule_type",
    keyed_table: "",
    serial_key: "serial PRIMARY KEY",
    mapping_type: "mapping_type",
    to_json: "::jsonb",
    to_mapping_type: "::mapping_type",
    json_rows: "json_array_elements(CAST($1 AS TEXT)::json) AS j(value)",
    json_item: "(j.value->>{i})",
};

/// AnyVar 1.0's enum types of `sequence_references.molecule_type` and
/// `variation_mappings.mapping_type` (SQLAlchemy stores the mapping type's member names).
const ENUM_TYPES: &str = "DO $$ BEGIN
    CREATE TYPE molecule_type AS ENUM ('genomic', 'RNA', 'mRNA', 'protein');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE TYPE mapping_type AS ENUM ('LIFTOVER', 'TRANSCRIPTION', 'TRANSLATION');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;";

/// Arbitrary key of the advisory lock that serialises schema creation across processes.
const SCHEMA_LOCK: i64 = 0x616e_7976_6172;

/// The driver's message and its causes (the server's own text, "connection refused"...): the
/// top-level message alone is often just "db error".
fn describe(e: &postgres::Error) -> String {
    let mut text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

fn err(context: &str, e: postgres::Error) -> Error {
    Error::Storage(format!("{context}: {}", describe(&e)))
}

fn connect(url: &str) -> Result<Client> {
    // Never echo the URL: it may carry a password.
    Client::connect(url, NoTls).map_err(|e| err("cannot connect to PostgreSQL", e))
}

pub struct PostgresStore {
    url: String,
    reader: Mutex<Client>,
}

impl PostgresStore {
    pub fn open(url: &str) -> Result<PostgresStore> {
        let mut client = connect(url)?;
        let mut tx = client
            .transaction()
            .map_err(|e| err("starting a transaction", e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(|e| err("locking the schema", e))?;
        let had_bins: bool = tx
            .query_one("SELECT to_regclass('allele_bins') IS NOT NULL", &[])
            .map_err(|e| err("reading the schema", e))?
            .get(0);
        tx.batch_execute(ENUM_TYPES)
            .and_then(|()| tx.batch_execute(&schema(&DIALECT)))
            .map_err(|e| err("creating tables", e))?;
        check_columns("the PostgreSQL database", |table| {
            let rows = tx
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[&table],
                )
                .map_err(|e| err("reading the schema", e))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        if !had_bins {
            index_existing_alleles(&mut tx)?;
        }
        tx.commit().map_err(|e| err("creating tables", e))?;
        Ok(PostgresStore {
            url: url.to_string(),
            reader: Mutex::new(client),
        })
    }

    /// Runs `query` on the reading connection. When the server has closed that connection (a
    /// restart, a failover, an idle timeout), the connection is opened again and the query run
    /// once more: reads are safe to repeat, and the request that finds the connection dead
    /// should not be the one to fail.
    fn read<T>(
        &self,
        context: &str,
        query: impl Fn(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut client = self.reader.lock().expect("postgres reader");
        if client.is_closed() {
            *client = connect(&self.url)?;
        }
        match query(&mut client) {
            Err(_) if client.is_closed() => {
                *client = connect(&self.url)?;
                query(&mut client).map_err(|e| err(context, e))
            }
            outcome => outcome.map_err(|e| err(context, e)),
        }
    }
}

impl Store for PostgresStore {
    fn writer(&self) -> Result<Box<dyn Writer>> {
        let mut client = connect(&self.url)?;
        // Commits return without waiting for the WAL flush; `make_durable` waits once for all.
        client
            .batch_execute("SET synchronous_commit = off")
            .map_err(|e| err("configuring the connection", e))?;
        Ok(Box::new(PostgresWriter {
            client,
            staging: HashSet::new(),
        }))
    }

    /// Loading runs on up to four connections.
    fn max_writers(&self) -> usize {
        4
    }

    fn location_or_reference(&self, id: &str) -> Result<Option<String>> {
        let context = format!("reading {id}");
        if id.starts_with("ga4gh:SL.") {
            let row = self.read(&context, |client| {
                client.query_opt(
                    "SELECT sequence_reference_id::text, start_pos::bigint, end_pos::bigint
                     FROM locations WHERE id = $1",
                    &[&id],
                )
            })?;
            return Ok(row.map(|r| stored_location_json(id, r.get(0), r.get(1), r.get(2))));
        }
        let accession = id.strip_prefix("ga4gh:").unwrap_or(id);
        let row = self.read(&context, |client| {
            client.query_opt(
                "SELECT id::text FROM sequence_references WHERE id = $1",
                &[&accession],
            )
        })?;
        Ok(row.map(|r| sequence_reference_json(r.get(0))))
    }

    fn alleles(&self, digests: &[Digest]) -> Result<Vec<String>> {
        let rows = self.read("reading alleles", |client| {
            client.query(
                "SELECT a.id::text, a.state::text, l.id::text, l.sequence_reference_id::text,
                        l.start_pos::bigint, l.end_pos::bigint
                 FROM unnest($1::text[]) u(digest) JOIN alleles a ON a.id = 'ga4gh:VA.' || u.digest
                 JOIN locations l ON l.id = a.location_id ORDER BY a.id",
                &[&bare(digests)],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| stored_allele_json(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect())
    }

    fn bins(&self, accession: &str, first: i64, last: i64) -> Result<Vec<Vec<u8>>> {
        let rows = self.read("searching alleles", |client| {
            client.query(
                "SELECT alleles FROM allele_bins WHERE sequence_reference_id = $1
                 AND (bin BETWEEN $2 AND $3 OR bin = $4)",
                &[&accession, &first, &last, &bins::WIDE],
            )
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    /// Not repeated on a dropped connection (a write may have happened): the connection is
    /// reopened for the next call.
    fn execute(&self, statements: &[(&str, &[&str])]) -> Result<Vec<u64>> {
        let mut client = self.reader.lock().expect("postgres reader");
        if client.is_closed() {
            *client = connect(&self.url)?;
        }
        let mut tx = client.transaction().map_err(|e| err("writing", e))?;
        let mut changed = Vec::with_capacity(statements.len());
        for (sql, params) in statements {
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                .collect();
            changed.push(tx.execute(*sql, &params).map_err(|e| err("writing", e))?);
        }
        tx.commit().map_err(|e| err("writing", e))?;
        Ok(changed)
    }

    fn query(&self, sql: &str, params: &[&str]) -> Result<Vec<Vec<Option<String>>>> {
        let rows = self.read("reading", |client| {
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                .collect();
            client.query(sql, &params)
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect())
    }
}

/// Digests as an array parameter; queries prepend the prefix (less to send, nothing to format).
fn bare(digests: &[Digest]) -> Vec<&str> {
    digests.iter().map(Digest::as_str).collect()
}

/// Lists in `allele_bins` the alleles of a database AnyVar filled before `allele_bins` existed,
/// so that searches find them too (once, when the table is created).
fn index_existing_alleles(tx: &mut Transaction<'_>) -> Result<()> {
    let context = "listing existing alleles in allele_bins";
    let portal = tx
        .bind(
            "SELECT a.id::text, l.sequence_reference_id::text,
                    l.start_pos::bigint, l.end_pos::bigint
             FROM alleles a JOIN locations l ON l.id = a.location_id
             WHERE l.start_pos IS NOT NULL AND l.end_pos IS NOT NULL
             ORDER BY l.sequence_reference_id, l.start_pos",
            &[],
        )
        .map_err(|e| err(context, e))?;
    loop {
        let rows = tx
            .query_portal(&portal, 50_000)
            .map_err(|e| err(context, e))?;
        if rows.is_empty() {
            return Ok(());
        }
        let found: Vec<(String, String, i64, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let entries: Vec<BinEntry<'_>> = found
            .iter()
            .filter_map(|(id, acc, start, end)| {
                let digest = id.strip_prefix("ga4gh:VA.")?.as_bytes().try_into().ok()?;
                Some((acc.as_str(), Digest(digest), *start as u64, *end as u64))
            })
            .collect();
        copy_bins(tx, &bin_rows(&entries)).map_err(|e| err(context, e))?;
    }
}

/// Runs a `COPY … FROM STDIN` statement with `data`; returns the rows copied.
fn copy(tx: &mut Transaction<'_>, statement: &str, data: &[u8]) -> Result<u64, postgres::Error> {
    let mut w = tx.copy_in(statement)?;
    // The driver reports a failed write through `finish`.
    let _ = w.write_all(data);
    w.finish()
}

fn copy_bins(tx: &mut Transaction<'_>, rows: &[BinRow]) -> Result<(), postgres::Error> {
    let mut data = BinaryRows::new();
    for r in rows {
        data.row(3);
        data.bytes(r.accession.as_bytes());
        data.bigint(r.bin);
        data.bytes(&r.alleles);
    }
    let statement = "COPY allele_bins (sequence_reference_id, bin, alleles) FROM STDIN BINARY";
    copy(tx, statement, &data.finish()).map(drop)
}

pub struct PostgresWriter {
    client: Client,
    /// Tables whose staging table (for the conflict-safe path) this connection has created.
    staging: HashSet<&'static str>,
}

/// `allele_bins` rows in PostgreSQL's binary COPY format: the entries go as they are, with nothing
/// to escape. (AnyVar's tables get text COPY: binary values must match the column types exactly,
/// and AnyVar's own positions are `integer` where ours are `bigint`.)
struct BinaryRows(Vec<u8>);

impl BinaryRows {
    fn new() -> BinaryRows {
        let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
        data.extend_from_slice(&[0; 8]); // flags, header extension length
        BinaryRows(data)
    }

    fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    /// A `varchar` or `bytea` value: its bytes.
    fn bytes(&mut self, value: &[u8]) {
        self.0
            .extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.0.extend_from_slice(value);
    }

    fn bigint(&mut self, value: i64) {
        self.0.extend_from_slice(&8i32.to_be_bytes());
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }
}

impl PostgresWriter {
    /// Loads rows that `table` lacked when the run looked them up: one COPY in one transaction,
    /// or, when a concurrent writer stored one of them first, an insert that skips conflicts.
    /// Returns how many rows were new.
    /// `line` writes a row as COPY text; our values hold no tab, newline or backslash (ids,
    /// accessions, integers, JSON of IUPAC letters).
    fn load<R>(
        &mut self,
        table: &'static str,
        columns: &str,
        rows: &[R],
        mut line: impl FnMut(&mut String, &R),
    ) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut text = String::new();
        for r in rows {
            line(&mut text, r);
        }
        let copy_text = |tx: &mut Transaction<'_>, target: &str| {
            copy(tx, &format!("COPY {target} FROM STDIN"), text.as_bytes())
        };
        let context = format!("loading {table}");
        let mut tx = self.client.transaction().map_err(|e| err(&context, e))?;
        match copy_text(&mut tx, &format!("{table} ({columns})")) {
            Ok(copied) => return tx.commit().map(|()| copied).map_err(|e| err(&context, e)),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => drop(tx),
            Err(e) => return Err(err(&context, e)),
        }
        let stage = format!("anyvar_staged_{table}");
        if !self.staging.contains(table) {
            self.client
                .batch_execute(&format!(
                    "CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
                ))
                .map_err(|e| err(&context, e))?;
            self.staging.insert(table);
        }
        let mut tx = self.client.transaction().map_err(|e| err(&context, e))?;
        copy_text(&mut tx, &format!("{stage} ({columns})")).map_err(|e| err(&context, e))?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}
                     ON CONFLICT DO NOTHING"
                ),
                &[],
            )
            .map_err(|e| err(&context, e))?;
        tx.commit().map(|()| inserted).map_err(|e| err(&context, e))
    }
}

impl Writer for PostgresWriter {
    fn registered(&mut self, kind: Kind, digests: &[Digest]) -> Result<Vec<Digest>> {
        // A join with unnest, not `id = ANY($1)`: the planner estimates the latter element by
        // element, which took longer than the lookups themselves.
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT t.id::text FROM unnest($1::text[]) u(digest)
                     JOIN {} t ON t.id = '{}' || u.digest",
                    kind.table(),
                    kind.prefix()
                ),
                &[&bare(digests)],
            )
            .map_err(|e| err(&format!("looking up {}", kind.table()), e))?;
        Ok(kind.digests(rows.iter().map(|r| r.get(0)).collect()))
    }

    fn write_references(&mut self, accessions: &[&str]) -> Result<()> {
        if accessions.is_empty() {
            return Ok(());
        }
        self.client
            .execute(
                "INSERT INTO sequence_references (id) SELECT unnest($1::text[])
                 ON CONFLICT DO NOTHING",
                &[&accessions],
            )
            .map_err(|e| err("loading sequence_references", e))?;
        Ok(())
    }

    fn write_locations(&mut self, rows: &[LocationRow]) -> Result<()> {
        let columns = "id, sequence_reference_id, start_pos, end_pos";
        self.load("locations", columns, rows, |text, r| {
            let id = Kind::Location.id(&r.digest);
            writeln!(
                text,
                "{}\t{}\t{}\t{}",
                id.as_str(),
                r.accession,
                r.start,
                r.end
            )
            .expect("writing to a String")
        })
        .map(drop)
    }

    fn write_alleles(&mut self, rows: &[AlleleRow]) -> Result<u64> {
        self.load("alleles", "id, location_id, state", rows, |text, r| {
            let (id, location) = (Kind::Allele.id(&r.digest), Kind::Location.id(&r.location));
            write!(text, "{}\t{}\t", id.as_str(), location.as_str()).expect("writing to a String");
            r.state.write_json(text);
            text.push('\n');
        })
    }

    fn write_bins(&mut self, rows: &[BinRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let context = "loading allele_bins";
        let mut tx = self.client.transaction().map_err(|e| err(context, e))?;
        copy_bins(&mut tx, rows).map_err(|e| err(context, e))?;
        tx.commit().map_err(|e| err(context, e))
    }

    /// A synchronous commit flushes the WAL up to its own record, which follows the records of
    /// every commit before it (of any connection).
    fn make_durable(&mut self) -> Result<()> {
        self.client
            .batch_execute(
                "SET synchronous_commit = on; BEGIN; SELECT txid_current(); COMMIT;
                 SET synchronous_commit = off",
            )
            .map_err(|e| err("flushing the write-ahead log", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{exercise, exercise_lost_race};
    use super::super::Storage;

    /// Runs `check` against the PostgreSQL server of this machine, in a database of its own.
    fn with_database(db: &str, check: fn(&Storage)) {
        let admin = "postgresql://postgres@127.0.0.1:5432/postgres";
        let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls) else {
            panic!("PostgreSQL is not reachable at {admin}; scripts/services.sh starts it");
        };
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let storage = Storage::open(&format!("postgresql://postgres@127.0.0.1:5432/{db}")).unwrap();
        check(&storage);
        drop(storage);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
    }

    #[test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432: cargo test -- --include-ignored"]
    fn postgres_round_trip() {
        with_database("anyvar_core_unit_test", exercise);
    }

    #[test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432: cargo test -- --include-ignored"]
    fn postgres_metadata() {
        with_database(
            "anyvar_core_unit_test_metadata",
            super::super::metadata::tests::exercise_metadata,
        );
    }

    #[test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432: cargo test -- --include-ignored"]
    fn postgres_lost_race() {
        with_database("anyvar_core_unit_test_race", exercise_lost_race);
    }
}
