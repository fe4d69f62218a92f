//! The embedded registry: one SQLite file in WAL mode, so the API and several worker processes
//! can write at once (SQLite serialises writers; `busy_timeout` makes them wait their turn).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{allele_row_json, location_row_json, schema, BulkWriter, LocationRow, Rows};
use crate::allele::Allele;
use crate::error::{Error, Result};

fn err(context: &str, e: rusqlite::Error) -> Error {
    Error::Storage(format!("{context}: {e}"))
}

pub struct SqliteStore {
    path: PathBuf,
    reader: Mutex<Connection>,
}

fn connect(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(60))
        .map_err(|e| err("busy_timeout", e))?;
    // WAL lets readers and one writer proceed together; FULL makes every commit durable.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-32768;",
    )
    .map_err(|e| err("configuring SQLite", e))?;
    Ok(conn)
}

impl SqliteStore {
    pub fn open(path: &str) -> Result<SqliteStore> {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = connect(&path)?;
        conn.execute_batch(&schema("INTEGER", "TEXT"))
            .map_err(|e| err("creating tables", e))?;
        Ok(SqliteStore {
            path,
            reader: Mutex::new(conn),
        })
    }

    pub fn writer(&self) -> Result<SqliteWriter> {
        Ok(SqliteWriter {
            conn: connect(&self.path)?,
        })
    }

    fn location(conn: &Connection, id: &str) -> Result<Option<LocationRow>> {
        conn.query_row(
            r#"SELECT id, digest, sequence_reference_id, start, "end" FROM locations WHERE id = ?1"#,
            [id],
            |r| {
                Ok(LocationRow {
                    digest: r.get(1)?,
                    accession: r.get(2)?,
                    start: r.get(3)?,
                    end: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(|e| err("reading a location", e))
    }

    pub fn get_object(&self, id: &str) -> Result<Option<String>> {
        let conn = self.reader.lock().expect("sqlite reader");
        if id.starts_with("ga4gh:VA.") {
            let row: Option<(String, String, String, String)> = conn
                .query_row(
                    "SELECT id, digest, state, location_id FROM alleles WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(|e| err("reading an allele", e))?;
            let Some((id, digest, state, location_id)) = row else {
                return Ok(None);
            };
            return Ok(Self::location(&conn, &location_id)?
                .map(|l| allele_row_json(&id, &digest, &state, &l)));
        }
        if id.starts_with("ga4gh:SL.") {
            return Ok(Self::location(&conn, id)?.map(|l| location_row_json(&l)));
        }
        let accession = id.strip_prefix("ga4gh:").unwrap_or(id);
        let found: Option<String> = conn
            .query_row(
                "SELECT id FROM sequence_references WHERE id = ?1",
                [accession],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| err("reading a sequence reference", e))?;
        Ok(found.map(|acc| format!(r#"{{"type":"SequenceReference","refgetAccession":"{acc}"}}"#)))
    }

    pub fn find_alleles(
        &self,
        accession: &str,
        start: i64,
        end: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let conn = self.reader.lock().expect("sqlite reader");
        let mut stmt = conn
            .prepare_cached(
                r#"SELECT a.id, a.digest, a.state, l.id, l.digest, l.sequence_reference_id, l.start, l."end"
                   FROM locations l JOIN alleles a ON a.location_id = l.id
                   WHERE l.sequence_reference_id = ?1 AND l.start <= ?3 AND l."end" >= ?2 AND a.id > ?4
                   ORDER BY a.id LIMIT ?5"#,
            )
            .map_err(|e| err("searching alleles", e))?;
        let rows = stmt
            .query_map(params![accession, start, end, after, limit], |r| {
                let (id, digest, state): (String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?);
                let loc = LocationRow {
                    digest: r.get(4)?,
                    accession: r.get(5)?,
                    start: r.get(6)?,
                    end: r.get(7)?,
                };
                Ok(allele_row_json(&id, &digest, &state, &loc))
            })
            .map_err(|e| err("searching alleles", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| err("searching alleles", e))
    }
}

pub struct SqliteWriter {
    conn: Connection,
}

impl BulkWriter for SqliteWriter {
    fn write(&mut self, batch: &[Allele]) -> Result<()> {
        let rows = Rows::of(batch);
        let tx = self
            .conn
            .transaction()
            .map_err(|e| err("starting a transaction", e))?;
        {
            let mut refs = tx
                .prepare_cached("INSERT OR IGNORE INTO sequence_references (id) VALUES (?1)")
                .map_err(|e| err("inserting", e))?;
            for r in &rows.references {
                refs.execute([r])
                    .map_err(|e| err("inserting a sequence reference", e))?;
            }
            let mut locs = tx
                .prepare_cached(
                    r#"INSERT OR IGNORE INTO locations (id, digest, sequence_reference_id, start, "end") VALUES (?1, ?2, ?3, ?4, ?5)"#,
                )
                .map_err(|e| err("inserting", e))?;
            for a in &rows.locations {
                locs.execute(params![
                    a.location_id(),
                    a.location_digest.as_str(),
                    &*a.accession,
                    a.start as i64,
                    a.end as i64
                ])
                .map_err(|e| err("inserting a location", e))?;
            }
            let mut alleles = tx
                .prepare_cached("INSERT OR IGNORE INTO alleles (id, digest, location_id, state) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| err("inserting", e))?;
            for a in &rows.alleles {
                alleles
                    .execute(params![
                        a.id(),
                        a.digest.as_str(),
                        a.location_id(),
                        a.state.to_json()
                    ])
                    .map_err(|e| err("inserting an allele", e))?;
            }
        }
        tx.commit().map_err(|e| err("committing", e))
    }
}
