//! What AnyVar keeps beside the alleles, in its own tables so that AnyVar and this service can
//! share a database: other VRS objects (`vrs_objects`: copy numbers, categorical variants…),
//! annotations (`annotations`; AnyVar's main branch calls them extensions) and mappings between
//! variations (`variation_mappings`: liftover, transcription, translation). Written once over
//! [`Store`]; every statement is plain SQL that SQLite and PostgreSQL both take.

use super::{Kind, Storage, Store};
use crate::error::{Error, Result};
use crate::vrs::model::Allele;

/// How one variation relates to another (AnyVar's `VariationMappingType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingType {
    Liftover,
    Transcription,
    Translation,
}

impl MappingType {
    pub const ALL: [MappingType; 3] = [
        MappingType::Liftover,
        MappingType::Transcription,
        MappingType::Translation,
    ];

    /// The API's spelling (`liftover`).
    pub fn value(self) -> &'static str {
        match self {
            MappingType::Liftover => "liftover",
            MappingType::Transcription => "transcription",
            MappingType::Translation => "translation",
        }
    }

    /// The database's spelling: AnyVar's SQLAlchemy enum stores member names (`LIFTOVER`).
    fn stored(self) -> &'static str {
        match self {
            MappingType::Liftover => "LIFTOVER",
            MappingType::Transcription => "TRANSCRIPTION",
            MappingType::Translation => "TRANSLATION",
        }
    }

    /// From either spelling.
    pub fn parse(text: &str) -> Result<MappingType> {
        MappingType::ALL
            .into_iter()
            .find(|t| text == t.value() || text == t.stored())
            .ok_or_else(|| Error::InvalidArgument(format!("unknown mapping type {text:?}")))
    }
}

/// A row of `variation_mappings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub source_id: String,
    pub dest_id: String,
    pub mapping_type: MappingType,
}

/// AnyVar main's kinds of categorical variant: each is a name and one defining allele.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatVarKind {
    CanonicalAllele,
    ProteinSequenceConsequence,
}

impl CatVarKind {
    fn table(self) -> &'static str {
        match self {
            CatVarKind::CanonicalAllele => "canonical_alleles",
            CatVarKind::ProteinSequenceConsequence => "protein_sequence_consequences",
        }
    }

    pub fn parse(text: &str) -> Result<CatVarKind> {
        match text {
            "canonical_allele" => Ok(CatVarKind::CanonicalAllele),
            "protein_sequence_consequence" => Ok(CatVarKind::ProteinSequenceConsequence),
            _ => Err(Error::InvalidArgument(format!(
                "unknown categorical variant kind {text:?}"
            ))),
        }
    }
}

/// A row of `annotations`; `value` is JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub id: i64,
    pub object_id: String,
    pub annotation_type: String,
    pub value: String,
}

/// A stored `vrs_objects` entry as JSON (objects without a table of their own).
pub(super) fn get_object(store: &dyn Store, id: &str) -> Result<Option<String>> {
    let rows = store.query(
        "SELECT CAST(vrs_object AS TEXT) FROM vrs_objects WHERE id = $1",
        &[id],
    )?;
    Ok(rows.into_iter().next().and_then(|mut r| r.remove(0)))
}

/// `rows` as one JSON array parameter, and a function naming element `i` of a row in SQL:
/// many rows go to the database in one statement, not one round trip each.
fn json_rows(
    store: &dyn Store,
    rows: &impl serde::Serialize,
) -> Result<(String, impl Fn(usize) -> String)> {
    let param =
        serde_json::to_string(rows).map_err(|e| Error::Storage(format!("encoding rows: {e}")))?;
    let item = store.dialect().json_item;
    Ok((param, move |i: usize| item.replace("{i}", &i.to_string())))
}

/// A statement and its parameters, built before it runs: a registration's run together.
struct Statement {
    sql: String,
    params: Vec<String>,
}

impl Statement {
    fn new(sql: String, params: Vec<String>) -> Statement {
        Statement { sql, params }
    }
}

/// What one registration request stores ([`Storage::register`]).
pub struct Registration<'a> {
    pub alleles: &'a [Allele],
    /// `(id, JSON)` of other VRS objects (copy numbers).
    pub objects: &'a [(String, String)],
    /// What each of these objects is annotated with where it has no annotation of that type
    /// yet (AnyVar's `creation_timestamp`).
    pub stamp: Stamp<'a>,
    pub mappings: &'a [Mapping],
}

/// One annotation (a type and a JSON value) for many objects, each stamped only where it has
/// none of that type: the batch shares its creation time, so the value is sent once.
pub struct Stamp<'a> {
    pub annotation_type: &'a str,
    pub value: &'a str,
    pub object_ids: &'a [String],
}

fn text(cell: Option<String>, column: &str) -> Result<String> {
    cell.ok_or_else(|| Error::Storage(format!("{column} is NULL")))
}

impl Storage {
    /// Stores VRS objects that have no table of their own, as `(id, JSON)`; an id already
    /// stored keeps its object (ids are digests of the content).
    pub fn put_objects(&self, objects: &[(String, String)]) -> Result<()> {
        self.run(&self.objects_statement(objects)?)
    }

    fn objects_statement(&self, objects: &[(String, String)]) -> Result<Vec<Statement>> {
        if objects.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<[&str; 2]> = objects.iter().map(|(id, json)| [&**id, &**json]).collect();
        let (param, item) = json_rows(&*self.store, &rows)?;
        let d = self.store.dialect();
        let sql = format!(
            "INSERT INTO vrs_objects (id, vrs_object)
             SELECT {}, CAST({} AS TEXT){} FROM {} WHERE true ON CONFLICT (id) DO NOTHING",
            item(0),
            item(1),
            d.to_json,
            d.json_rows
        );
        Ok(vec![Statement::new(sql, vec![param])])
    }

    /// Runs `statements` in one transaction (none: no transaction).
    fn run(&self, statements: &[Statement]) -> Result<()> {
        if statements.is_empty() {
            return Ok(());
        }
        let params: Vec<Vec<&str>> = (statements.iter())
            .map(|s| s.params.iter().map(String::as_str).collect())
            .collect();
        let list: Vec<(&str, &[&str])> = (statements.iter().zip(&params))
            .map(|(s, p)| (s.sql.as_str(), p.as_slice()))
            .collect();
        self.store.execute(&list).map(drop)
    }

    /// Stores what one registration request brings (AnyVar's `PUT /variation(s)`): the
    /// alleles over a writer connection while the rest is written beside it in one
    /// transaction, so the database does both at once and the request waits for the slower.
    /// Returns how many alleles were new to the database.
    pub fn register(&self, registration: &Registration<'_>) -> Result<u64> {
        let mut rest = self.objects_statement(registration.objects)?;
        rest.extend(self.stamps_statement(&registration.stamp)?);
        rest.extend(self.mappings_statement(registration.mappings)?);
        std::thread::scope(|scope| {
            let beside = scope.spawn(|| self.run(&rest));
            let alleles = self.put(registration.alleles);
            let rest = (beside.join())
                .unwrap_or_else(|_| Err(Error::Storage("a storage thread panicked".into())));
            alleles.and_then(|new| rest.map(|()| new))
        })
    }

    /// Whether `id` names a stored object (of any kind).
    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(self.get_object(id)?.is_some())
    }

    /// Removes an allele or other VRS object with its annotations and the mappings that name
    /// it on either side (its location and sequence reference stay: other alleles may share
    /// them). Whether the object was stored.
    pub fn delete_object(&self, id: &str) -> Result<bool> {
        let id = [id];
        let mut statements: Vec<(&str, &[&str])> = vec![
            ("DELETE FROM vrs_objects WHERE id = $1", &id),
            ("DELETE FROM annotations WHERE object_id = $1", &id),
            (
                "DELETE FROM variation_mappings WHERE source_id = $1 OR dest_id = $1",
                &id,
            ),
        ];
        if id[0].starts_with(Kind::Allele.prefix()) {
            statements.push(("DELETE FROM alleles WHERE id = $1", &id));
        }
        let changed = self.store.execute(&statements)?;
        Ok(changed[0] > 0 || changed.get(3).is_some_and(|&n| n > 0))
    }

    /// Adds an annotation (several of one type may exist); returns its id.
    pub fn add_annotation(
        &self,
        object_id: &str,
        annotation_type: &str,
        value: &str,
    ) -> Result<i64> {
        let sql = format!(
            "INSERT INTO annotations (object_id, annotation_type, annotation_value)
             VALUES ($1, $2, CAST($3 AS TEXT){}) RETURNING CAST(id AS TEXT)",
            self.store.dialect().to_json
        );
        let rows = self
            .store
            .query(&sql, &[object_id, annotation_type, value])?;
        let id = rows.into_iter().next().and_then(|mut r| r.remove(0));
        text(id, "annotations.id")?
            .parse()
            .map_err(|e| Error::Storage(format!("annotations.id: {e}")))
    }

    /// Adds `stamp` to the objects that have no annotation of its type yet (AnyVar's creation
    /// timestamps), in one transaction.
    pub fn add_annotations_if_missing(&self, stamp: &Stamp<'_>) -> Result<()> {
        self.run(&self.stamps_statement(stamp)?)
    }

    fn stamps_statement(&self, stamp: &Stamp<'_>) -> Result<Vec<Statement>> {
        let mut ids: Vec<[&str; 1]> = stamp.object_ids.iter().map(|id| [&**id]).collect();
        ids.sort_unstable();
        ids.dedup(); // one per object, in one statement too
        if ids.is_empty() {
            return Ok(vec![]);
        }
        // The value a parameter of its own, not a column of each row: converting it to JSON
        // once per row was a third of the statement's time in PostgreSQL.
        let (param, item) = json_rows(&*self.store, &ids)?;
        let d = self.store.dialect();
        let sql = format!(
            "INSERT INTO annotations (object_id, annotation_type, annotation_value)
             SELECT {id}, CAST($2 AS TEXT), CAST($3 AS TEXT){to_json} FROM {rows}
             WHERE NOT EXISTS (SELECT 1 FROM annotations a
                               WHERE a.object_id = {id} AND a.annotation_type = CAST($2 AS TEXT))",
            id = item(0),
            to_json = d.to_json,
            rows = d.json_rows
        );
        Ok(vec![Statement::new(
            sql,
            vec![param, stamp.annotation_type.into(), stamp.value.into()],
        )])
    }

    /// The annotations of `object_id`, of one type or all, in the order they were added.
    pub fn annotations(
        &self,
        object_id: &str,
        annotation_type: Option<&str>,
    ) -> Result<Vec<Annotation>> {
        let select = "SELECT CAST(id AS TEXT), annotation_type, CAST(annotation_value AS TEXT)
                      FROM annotations WHERE object_id = $1";
        let rows = match annotation_type {
            Some(t) => self.store.query(
                &format!("{select} AND annotation_type = $2 ORDER BY id"),
                &[object_id, t],
            )?,
            None => self
                .store
                .query(&format!("{select} ORDER BY id"), &[object_id])?,
        };
        rows.into_iter()
            .map(|mut r| {
                let value = text(r.pop().flatten(), "annotation_value")?;
                let annotation_type = text(r.pop().flatten(), "annotation_type")?;
                let id = text(r.pop().flatten(), "annotations.id")?;
                Ok(Annotation {
                    id: id
                        .parse()
                        .map_err(|e| Error::Storage(format!("annotations.id: {e}")))?,
                    object_id: object_id.to_string(),
                    annotation_type,
                    value,
                })
            })
            .collect()
    }

    /// Removes the annotations of `object_id` of one type; how many there were.
    pub fn delete_annotations(&self, object_id: &str, annotation_type: &str) -> Result<u64> {
        let changed = self.store.execute(&[(
            "DELETE FROM annotations WHERE object_id = $1 AND annotation_type = $2",
            &[object_id, annotation_type],
        )])?;
        Ok(changed[0])
    }

    /// Stores mappings; one already stored is kept once.
    pub fn add_mappings(&self, mappings: &[Mapping]) -> Result<()> {
        self.run(&self.mappings_statement(mappings)?)
    }

    fn mappings_statement(&self, mappings: &[Mapping]) -> Result<Vec<Statement>> {
        if mappings.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<[&str; 3]> = mappings
            .iter()
            .map(|m| [&*m.source_id, &*m.dest_id, m.mapping_type.stored()])
            .collect();
        let (param, item) = json_rows(&*self.store, &rows)?;
        let d = self.store.dialect();
        let sql = format!(
            "INSERT INTO variation_mappings (source_id, dest_id, mapping_type)
             SELECT {}, {}, CAST({} AS TEXT){} FROM {} WHERE true ON CONFLICT DO NOTHING",
            item(0),
            item(1),
            item(2),
            d.to_mapping_type,
            d.json_rows
        );
        Ok(vec![Statement::new(sql, vec![param])])
    }

    /// The mappings with `object_id` as their source (or, with `as_source` false, as their
    /// destination), of one type or all.
    pub fn mappings(
        &self,
        object_id: &str,
        mapping_type: Option<MappingType>,
        as_source: bool,
    ) -> Result<Vec<Mapping>> {
        let side = if as_source { "source_id" } else { "dest_id" };
        let select = format!(
            "SELECT source_id, dest_id, CAST(mapping_type AS TEXT) FROM variation_mappings
             WHERE {side} = $1"
        );
        let rows = match mapping_type {
            Some(t) => self.store.query(
                &format!("{select} AND CAST(mapping_type AS TEXT) = $2 ORDER BY id"),
                &[object_id, t.stored()],
            )?,
            None => self
                .store
                .query(&format!("{select} ORDER BY id"), &[object_id])?,
        };
        rows.into_iter()
            .map(|mut r| {
                let mapping_type = MappingType::parse(&text(r.pop().flatten(), "mapping_type")?)?;
                let dest_id = text(r.pop().flatten(), "dest_id")?;
                let source_id = text(r.pop().flatten(), "source_id")?;
                Ok(Mapping {
                    source_id,
                    dest_id,
                    mapping_type,
                })
            })
            .collect()
    }

    /// Removes one mapping; whether it was stored.
    pub fn delete_mapping(&self, mapping: &Mapping) -> Result<bool> {
        let changed = self.store.execute(&[(
            "DELETE FROM variation_mappings WHERE source_id = $1 AND dest_id = $2
             AND CAST(mapping_type AS TEXT) = $3",
            &[
                &mapping.source_id,
                &mapping.dest_id,
                mapping.mapping_type.stored(),
            ],
        )])?;
        Ok(changed[0] > 0)
    }

    /// Stores a categorical variant (its defining allele is stored on its own); a variant
    /// registered again under the same id takes the new name and allele.
    pub fn put_catvar(
        &self,
        kind: CatVarKind,
        id: &str,
        name: &str,
        allele_id: &str,
    ) -> Result<()> {
        let table = kind.table();
        let replace = format!("DELETE FROM {table} WHERE id = $1");
        let insert = format!("INSERT INTO {table} (id, name, allele_id) VALUES ($1, $2, $3)");
        self.store
            .execute(&[(&replace, &[id]), (&insert, &[id, name, allele_id])])
            .map(drop)
    }

    /// `(name, allele_id)` of a stored categorical variant.
    pub fn get_catvar(&self, kind: CatVarKind, id: &str) -> Result<Option<(String, String)>> {
        let sql = format!("SELECT name, allele_id FROM {} WHERE id = $1", kind.table());
        let row = self.store.query(&sql, &[id])?.into_iter().next();
        row.map(|mut r| {
            let allele_id = text(r.pop().flatten(), "allele_id")?;
            Ok((text(r.pop().flatten(), "name")?, allele_id))
        })
        .transpose()
    }

    /// Empties every table (AnyVar's `wipe_db`).
    pub fn wipe(&self) -> Result<()> {
        let tables = [
            "canonical_alleles",
            "protein_sequence_consequences",
            "variation_mappings",
            "annotations",
            "vrs_objects",
            "allele_bins",
            "alleles",
            "locations",
            "sequence_references",
        ];
        let statements: Vec<String> = tables.iter().map(|t| format!("DELETE FROM {t}")).collect();
        let statements: Vec<(&str, &[&str])> = statements.iter().map(|s| (&**s, &[][..])).collect();
        self.store.execute(&statements).map(drop)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What every storage must do with metadata: objects, annotations, mappings, deletes.
    pub(crate) fn exercise_metadata(storage: &Storage) {
        let alleles = super::super::tests::sample_alleles();
        storage.put(&alleles[..3]).unwrap();
        let (a, b) = (alleles[0].id(), alleles[1].id());

        let cn = r#"{"id":"ga4gh:CN.x","type":"CopyNumberCount","copies":3}"#;
        storage
            .put_objects(&[("ga4gh:CN.x".into(), cn.into())])
            .unwrap();
        storage
            .put_objects(&[("ga4gh:CN.x".into(), r#"{"other":1}"#.into())])
            .unwrap();
        let got: serde_json::Value =
            serde_json::from_str(&storage.get_object("ga4gh:CN.x").unwrap().unwrap()).unwrap();
        assert_eq!(got["copies"], 3, "the first object stays");

        let first = storage.add_annotation(&a, "note", r#""one""#).unwrap();
        let second = storage
            .add_annotation(&a, "note", r#"{"k":[1,2]}"#)
            .unwrap();
        storage.add_annotation(&a, "other", "2").unwrap();
        assert!(second > first);
        let notes = storage.annotations(&a, Some("note")).unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].value, r#""one""#);
        let value: serde_json::Value = serde_json::from_str(&notes[1].value).unwrap();
        assert_eq!(value["k"][1], 2);
        assert_eq!(storage.annotations(&a, None).unwrap().len(), 3);
        assert_eq!(storage.delete_annotations(&a, "other").unwrap(), 1);
        assert_eq!(storage.annotations(&a, None).unwrap().len(), 2);
        let stamp = |value, object_ids| Stamp {
            annotation_type: "created",
            value,
            object_ids,
        };
        let (both, first) = ([a.clone(), b.clone()], [a.clone()]);
        (storage.add_annotations_if_missing(&stamp(r#""t1""#, &both))).unwrap();
        (storage.add_annotations_if_missing(&stamp(r#""t2""#, &first))).unwrap();
        let created = storage.annotations(&a, Some("created")).unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].value, r#""t1""#, "the first stays");
        assert_eq!(storage.annotations(&b, Some("created")).unwrap().len(), 1);

        let lift = Mapping {
            source_id: a.clone(),
            dest_id: b.clone(),
            mapping_type: MappingType::Liftover,
        };
        let back = Mapping {
            source_id: b.clone(),
            dest_id: a.clone(),
            mapping_type: MappingType::Liftover,
        };
        storage.add_mappings(&[lift.clone(), back.clone()]).unwrap();
        storage.add_mappings(std::slice::from_ref(&lift)).unwrap();
        assert_eq!(
            storage.mappings(&a, None, true).unwrap(),
            vec![lift.clone()]
        );
        assert_eq!(
            storage.mappings(&a, None, false).unwrap(),
            vec![back.clone()]
        );
        assert!(storage
            .mappings(&a, Some(MappingType::Translation), true)
            .unwrap()
            .is_empty());

        assert!(storage.delete_object(&a).unwrap());
        assert!(storage.get_object(&a).unwrap().is_none());
        assert!(storage.annotations(&a, None).unwrap().is_empty());
        assert!(
            storage.mappings(&b, None, true).unwrap().is_empty(),
            "both directions"
        );
        assert!(!storage.delete_object(&a).unwrap(), "already gone");
        assert!(storage.get_object(&b).unwrap().is_some(), "others stay");
        assert!(storage.delete_object("ga4gh:CN.x").unwrap());

        let ca = CatVarKind::CanonicalAllele;
        storage.put_catvar(ca, "clingen:CA1", "first", &b).unwrap();
        storage
            .put_catvar(ca, "clingen:CA1", "renamed", &b)
            .unwrap();
        assert_eq!(
            storage.get_catvar(ca, "clingen:CA1").unwrap(),
            Some(("renamed".to_string(), b.clone()))
        );
        let psq = CatVarKind::ProteinSequenceConsequence;
        assert_eq!(
            storage.get_catvar(psq, "clingen:CA1").unwrap(),
            None,
            "kinds apart"
        );

        storage.wipe().unwrap();
        assert!(storage.get_object(&b).unwrap().is_none());
        assert_eq!(storage.get_catvar(ca, "clingen:CA1").unwrap(), None);

        exercise_register(storage, &alleles);
    }

    /// A registration request's alleles, objects, stamps and mappings, stored together.
    fn exercise_register(storage: &Storage, alleles: &[Allele]) {
        let (a, b, c) = (alleles[0].id(), alleles[1].id(), alleles[2].id());
        let before = Stamp {
            annotation_type: "created",
            value: r#""before""#,
            object_ids: std::slice::from_ref(&a),
        };
        storage.add_annotations_if_missing(&before).unwrap();
        let cn = r#"{"id":"ga4gh:CN.y","type":"CopyNumberChange"}"#;
        let objects = [("ga4gh:CN.y".to_string(), cn.to_string())];
        let stamped = [a.clone(), b.clone(), c.clone(), "ga4gh:CN.y".to_string()];
        let mappings = [Mapping {
            source_id: b.clone(),
            dest_id: c.clone(),
            mapping_type: MappingType::Liftover,
        }];
        let registration = Registration {
            alleles: &alleles[..3],
            objects: &objects,
            stamp: Stamp {
                annotation_type: "created",
                value: r#""now""#,
                object_ids: &stamped,
            },
            mappings: &mappings,
        };
        assert_eq!(
            storage.register(&registration).unwrap(),
            3,
            "three new alleles"
        );
        assert_eq!(
            storage.register(&registration).unwrap(),
            0,
            "none new, nothing doubles"
        );
        for id in [&a, &b, &c, &"ga4gh:CN.y".to_string()] {
            assert!(storage.get_object(id).unwrap().is_some(), "{id} stored");
            assert_eq!(storage.annotations(id, Some("created")).unwrap().len(), 1);
        }
        let kept = storage.annotations(&a, Some("created")).unwrap();
        assert_eq!(kept[0].value, r#""before""#, "an existing stamp stays");
        assert_eq!(storage.mappings(&b, None, true).unwrap(), mappings.to_vec());
        storage.wipe().unwrap();
    }

    #[test]
    fn catvar_kinds_parse() {
        assert_eq!(
            CatVarKind::parse("canonical_allele").unwrap(),
            CatVarKind::CanonicalAllele
        );
        assert!(CatVarKind::parse("canonical_alleles; DROP TABLE x").is_err());
    }

    #[test]
    fn mapping_types_read_either_spelling() {
        for t in MappingType::ALL {
            assert_eq!(MappingType::parse(t.value()).unwrap(), t);
            assert_eq!(MappingType::parse(t.stored()).unwrap(), t);
        }
        assert!(MappingType::parse("sideways").is_err());
    }

    #[test]
    fn sqlite_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite://{}", dir.path().join("m.sqlite3").display());
        exercise_metadata(&Storage::open(&uri).unwrap());
    }
}
