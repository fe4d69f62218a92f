//! The PostgreSQL registry: AnyVar's tables, loaded per batch with `COPY` into temporary tables
//! and `INSERT … ON CONFLICT DO NOTHING`, so duplicates (within and across runs) cost nothing.

use std::io::Write;
use std::sync::Mutex;

use postgres::{Client, NoTls};

use super::{allele_row_json, location_row_json, schema, BulkWriter, LocationRow, Rows};
use crate::allele::Allele;
use crate::error::{Error, Result};

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
        tx.batch_execute(&schema("BIGINT", "JSONB"))
            .map_err(|e| err("creating tables", e))?;
        tx.commit().map_err(|e| err("creating tables", e))?;
        Ok(PostgresStore {
            url: url.to_string(),
            reader: Mutex::new(client),
        })
    }

    pub fn writer(&self) -> Result<PostgresWriter> {
        let mut client = connect(&self.url)?;
        client
            .batch_execute(
                r#"CREATE TEMP TABLE anyvar_in_locations (id TEXT, digest TEXT, sequence_reference_id TEXT, start BIGINT, "end" BIGINT) ON COMMIT DELETE ROWS;
                   CREATE TEMP TABLE anyvar_in_alleles (id TEXT, digest TEXT, location_id TEXT, state JSONB) ON COMMIT DELETE ROWS;"#,
            )
            .map_err(|e| err("creating load tables", e))?;
        Ok(PostgresWriter {
            client,
            text: Vec::new(),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Client> {
        self.reader.lock().expect("postgres reader")
    }

    fn location(client: &mut Client, id: &str) -> Result<Option<LocationRow>> {
        let row = client
            .query_opt(r#"SELECT id, digest, sequence_reference_id, start, "end" FROM locations WHERE id = $1"#, &[&id])
            .map_err(|e| err("reading a location", e))?;
        Ok(row.map(|r| LocationRow {
            digest: r.get(1),
            accession: r.get(2),
            start: r.get(3),
            end: r.get(4),
        }))
    }

    pub fn get_object(&self, id: &str) -> Result<Option<String>> {
        let mut client = self.reader();
        if id.starts_with("ga4gh:VA.") {
            let row = client
                .query_opt(
                    "SELECT id, digest, state::text, location_id FROM alleles WHERE id = $1",
                    &[&id],
                )
                .map_err(|e| err("reading an allele", e))?;
            let Some(r) = row else { return Ok(None) };
            let (id, digest, state, location_id): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            return Ok(Self::location(&mut client, &location_id)?
                .map(|l| allele_row_json(&id, &digest, &state, &l)));
        }
        if id.starts_with("ga4gh:SL.") {
            return Ok(Self::location(&mut client, id)?.map(|l| location_row_json(&l)));
        }
        let accession = id.strip_prefix("ga4gh:").unwrap_or(id);
        let row = client
            .query_opt(
                "SELECT id FROM sequence_references WHERE id = $1",
                &[&accession],
            )
            .map_err(|e| err("reading a sequence reference", e))?;
        Ok(row.map(|r| {
            let acc: String = r.get(0);
            format!(r#"{{"type":"SequenceReference","refgetAccession":"{acc}"}}"#)
        }))
    }

    pub fn find_alleles(
        &self,
        accession: &str,
        start: i64,
        end: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows = self
            .reader()
            .query(
                r#"SELECT a.id, a.digest, a.state::text, l.id, l.digest, l.sequence_reference_id, l.start, l."end"
                   FROM locations l JOIN alleles a ON a.location_id = l.id
                   WHERE l.sequence_reference_id = $1 AND l.start <= $3 AND l."end" >= $2 AND a.id > $4
                   ORDER BY a.id LIMIT $5"#,
                &[&accession, &start, &end, &after, &limit],
            )
            .map_err(|e| err("searching alleles", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let loc = LocationRow {
                    digest: r.get(4),
                    accession: r.get(5),
                    start: r.get(6),
                    end: r.get(7),
                };
                allele_row_json(r.get(0), r.get(1), r.get(2), &loc)
            })
            .collect())
    }
}

pub struct PostgresWriter {
    client: Client,
    text: Vec<u8>,
}

impl PostgresWriter {
    /// COPY text format; our values never contain tabs, newlines or backslashes.
    fn copy(tx: &mut postgres::Transaction<'_>, sql: &str, data: &[u8]) -> Result<()> {
        let mut w = tx.copy_in(sql).map_err(|e| err("starting COPY", e))?;
        w.write_all(data)
            .map_err(|e| Error::Storage(format!("COPY: {e}")))?;
        w.finish().map_err(|e| err("COPY", e))?;
        Ok(())
    }
}

impl BulkWriter for PostgresWriter {
    fn write(&mut self, batch: &[Allele]) -> Result<()> {
        let rows = Rows::of(batch);
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| err("starting a transaction", e))?;
        let text = &mut self.text;
        text.clear();
        for a in &rows.locations {
            writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}",
                a.location_id(),
                a.location_digest,
                a.accession,
                a.start,
                a.end
            )
            .expect("writing to memory");
        }
        Self::copy(&mut tx, "COPY anyvar_in_locations FROM STDIN", text)?;
        text.clear();
        for a in &rows.alleles {
            writeln!(
                text,
                "{}\t{}\t{}\t{}",
                a.id(),
                a.digest,
                a.location_id(),
                a.state.to_json()
            )
            .expect("writing to memory");
        }
        Self::copy(&mut tx, "COPY anyvar_in_alleles FROM STDIN", text)?;
        tx.batch_execute(
            r#"INSERT INTO sequence_references (id) SELECT DISTINCT sequence_reference_id FROM anyvar_in_locations ON CONFLICT DO NOTHING;
               INSERT INTO locations (id, digest, sequence_reference_id, start, "end")
                   SELECT id, digest, sequence_reference_id, start, "end" FROM anyvar_in_locations ON CONFLICT DO NOTHING;
               INSERT INTO alleles (id, digest, location_id, state)
                   SELECT id, digest, location_id, state FROM anyvar_in_alleles ON CONFLICT DO NOTHING;"#,
        )
        .map_err(|e| err("loading alleles", e))?;
        tx.commit().map_err(|e| err("committing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::exercise;
    use super::super::Storage;

    /// Runs against the PostgreSQL server of this machine, in a database of its own.
    #[test]
    fn postgres_round_trip() {
        let admin = "postgresql://postgres@127.0.0.1:5432/postgres";
        let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls) else {
            panic!("PostgreSQL is not reachable at {admin}; scripts/services.sh starts it");
        };
        let db = "anyvar_core_unit_test";
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let storage = Storage::open(&format!("postgresql://postgres@127.0.0.1:5432/{db}")).unwrap();
        exercise(&storage);
        drop(storage);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
    }
}
