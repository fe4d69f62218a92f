//! `anyvar._core`: the thin binding of anyvar-core. It converts arguments, releases the GIL
//! around every long call, and maps errors to the exception classes of `anyvar.exceptions`.

/// Rust allocations of the extension (Python keeps its own allocator): faster than the system
/// allocator for the loader's many small row allocations (see the workspace Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod copy_number;
mod detach;
mod liftover;
mod vcf;

use std::path::PathBuf;
use std::sync::Arc;

use anyvar_core::alleles::{Annotator, RecordOptions};
use anyvar_core::sequence::SequenceSource as CoreSource;
use anyvar_core::storage::metadata::{CatVarKind, Mapping, MappingType, Registration, Stamp};
use anyvar_core::storage::Storage as CoreStorage;
use anyvar_core::vrs::from_json::allele_from_json;
use anyvar_core::vrs::model::Allele;
use anyvar_core::Error;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

pyo3::import_exception!(anyvar.exceptions, AnyVarError);
pyo3::import_exception!(anyvar.exceptions, VcfFormatError);
pyo3::import_exception!(anyvar.exceptions, SequenceSourceError);
pyo3::import_exception!(anyvar.exceptions, TranslationError);
pyo3::import_exception!(anyvar.exceptions, StorageError);
pyo3::import_exception!(anyvar.exceptions, RequiredAnnotationsError);

/// The one place core errors become Python exceptions.
pub(crate) fn to_py(e: Error) -> PyErr {
    match e {
        Error::InvalidVcf { line, ref message } => VcfFormatError::new_err((message.clone(), line)),
        Error::SequenceSource { .. } | Error::SequenceRead { .. } => {
            SequenceSourceError::new_err(e.to_string())
        }
        Error::InvalidArgument(m) => PyValueError::new_err(m),
        // With its errno, so that a full disk (ENOSPC) can be told from other failures.
        Error::Io { ref source, .. } => match source.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, e.to_string())),
            None => PyOSError::new_err(e.to_string()),
        },
        Error::Storage(_) => StorageError::new_err(e.to_string()),
        Error::MissingVrsAnnotations => RequiredAnnotationsError::new_err((e.to_string(), 0)),
        Error::Cancelled | Error::Sink(_) => AnyVarError::new_err(e.to_string()),
        Error::ChainFile { .. } => liftover::ChainFileError::new_err(e.to_string()),
    }
}

/// `(source_id, dest_id, mapping_type)` tuples as mappings (either spelling of the type).
fn to_mappings(mappings: Vec<(String, String, String)>) -> PyResult<Vec<Mapping>> {
    mappings
        .into_iter()
        .map(|(source_id, dest_id, t)| {
            Ok(Mapping {
                source_id,
                dest_id,
                mapping_type: MappingType::parse(&t)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map_err(to_py)
}

/// A reference sequence source opened from a URI (`seqrepo+file://…`, `seqrepo+http://…`, `fasta+file://…`).
#[pyclass(frozen, module = "anyvar._core")]
pub(crate) struct SequenceSource {
    inner: Arc<CoreSource>,
}

#[pymethods]
impl SequenceSource {
    #[new]
    #[pyo3(signature = (uri, cache_dir=None))]
    fn new(py: Python<'_>, uri: String, cache_dir: Option<PathBuf>) -> PyResult<Self> {
        // Opening a FASTA source may hash the whole FASTA once: never with the GIL held.
        let inner = py
            .detach(|| CoreSource::open(&uri, cache_dir.as_deref()))
            .map_err(to_py)?;
        Ok(SequenceSource {
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn uri(&self) -> &str {
        self.inner.uri()
    }

    /// The `namespace:alias` names of the sequence `accession` (`SQ.…`).
    fn aliases(&self, py: Python<'_>, accession: String) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.aliases(&accession)).map_err(to_py)
    }

    /// `(accession, length)` of a `namespace:alias` name such as `GRCh38:chr1`, or None.
    fn resolve(&self, py: Python<'_>, name: String) -> PyResult<Option<(String, u64)>> {
        let found = py
            .detach(|| self.inner.resolve_name(&name))
            .map_err(to_py)?;
        Ok(found.map(|c| (c.accession.to_string(), c.length)))
    }

    /// Translates many definitions (a `PUT /variations` batch) in parallel, without the GIL:
    /// for each, in order, its Allele or the reason it has none.
    #[pyo3(signature = (definitions, assembly="GRCh38"))]
    fn translate_many(
        &self,
        py: Python<'_>,
        definitions: Vec<String>,
        assembly: &str,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let translations = py
            .detach(|| anyvar_core::translate::translate_many(&self.inner, &definitions, assembly))
            .map_err(to_py)?;
        translations
            .into_iter()
            .map(|t| match t {
                Ok(inner) => Ok(Py::new(py, PyAllele { inner })?.into_any()),
                Err(message) => message.into_py_any(py),
            })
            .collect()
    }

    /// Translates a gnomAD-style, SPDI or genomic HGVS definition into a normalized Allele.
    #[pyo3(signature = (definition, assembly="GRCh38"))]
    fn translate(&self, py: Python<'_>, definition: String, assembly: &str) -> PyResult<PyAllele> {
        let options = RecordOptions {
            assembly: assembly.to_string(),
            for_ref: false,
            vrs_attributes: false,
            require_validation: true,
        };
        let result = py.detach(|| {
            let mut annotator = Annotator::new(&self.inner, &options);
            anyvar_core::translate::translate(&mut annotator, &definition)
        });
        match result.map_err(to_py)? {
            Ok(inner) => Ok(PyAllele { inner }),
            Err(message) => Err(TranslationError::new_err(message)),
        }
    }

    fn __repr__(&self) -> String {
        format!("SequenceSource({:?})", self.inner.uri())
    }
}

/// An identified VRS Allele.
#[pyclass(frozen, name = "Allele", module = "anyvar._core")]
struct PyAllele {
    inner: Allele,
}

#[pymethods]
impl PyAllele {
    /// Computes the identifiers of an Allele given as VRS JSON (taken as given, not normalized).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<PyAllele> {
        allele_from_json(text)
            .map(|inner| PyAllele { inner })
            .map_err(TranslationError::new_err)
    }

    #[getter]
    fn id(&self) -> String {
        self.inner.id()
    }

    #[getter]
    fn location_id(&self) -> String {
        self.inner.location_id()
    }

    /// The Allele as vrs-python dumps it (`model_dump_json(exclude_none=True)`).
    fn json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self) -> String {
        format!("Allele({})", self.inner.id())
    }
}

/// The registry database (`sqlite:///path` or `postgresql://…`).
#[pyclass(frozen, module = "anyvar._core")]
pub(crate) struct Storage {
    inner: Arc<CoreStorage>,
}

#[pymethods]
impl Storage {
    #[new]
    fn new(py: Python<'_>, uri: String) -> PyResult<Self> {
        let inner = py.detach(|| CoreStorage::open(&uri)).map_err(to_py)?;
        Ok(Storage {
            inner: Arc::new(inner),
        })
    }

    /// Registers alleles (with their locations and sequence references); duplicates are ignored.
    /// Returns how many were new.
    fn put(&self, py: Python<'_>, alleles: Vec<Bound<'_, PyAllele>>) -> PyResult<u64> {
        let alleles: Vec<Allele> = alleles.iter().map(|a| a.get().inner.clone()).collect();
        py.detach(|| self.inner.put(&alleles)).map_err(to_py)
    }

    /// A registered object as JSON, or None.
    fn get_object(&self, py: Python<'_>, id: String) -> PyResult<Option<String>> {
        py.detach(|| self.inner.get_object(&id)).map_err(to_py)
    }

    /// Alleles on `accession` overlapping `[start, end]`, as JSON, ordered by id after `after`.
    #[pyo3(signature = (accession, start, end, after="", limit=100))]
    fn find_alleles(
        &self,
        py: Python<'_>,
        accession: String,
        start: i64,
        end: i64,
        after: &str,
        limit: i64,
    ) -> PyResult<Vec<String>> {
        let after = after.to_string();
        py.detach(|| {
            self.inner
                .find_alleles(&accession, start, end, &after, limit)
        })
        .map_err(to_py)
    }

    /// Stores `(id, JSON)` VRS objects that have no table of their own (copy numbers…).
    fn put_objects(&self, py: Python<'_>, objects: Vec<(String, String)>) -> PyResult<()> {
        py.detach(|| self.inner.put_objects(&objects))
            .map_err(to_py)
    }

    /// Removes an object with its annotations and mappings; whether it was stored.
    fn delete_object(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        py.detach(|| self.inner.delete_object(&id)).map_err(to_py)
    }

    /// Adds an annotation whose value is JSON text; returns its id.
    fn add_annotation(
        &self,
        py: Python<'_>,
        object_id: String,
        annotation_type: String,
        value: String,
    ) -> PyResult<i64> {
        py.detach(|| {
            self.inner
                .add_annotation(&object_id, &annotation_type, &value)
        })
        .map_err(to_py)
    }

    /// Stores a registration request's alleles, other VRS objects (`(id, JSON)`), a stamp
    /// `(annotation_type, JSON value, object ids)` added to each of those objects that has no
    /// annotation of that type, and `(source_id, dest_id, mapping_type)` mappings, written side
    /// by side. Returns how many alleles were new.
    fn register(
        &self,
        py: Python<'_>,
        alleles: Vec<Bound<'_, PyAllele>>,
        objects: Vec<(String, String)>,
        stamp: (String, String, Vec<String>),
        mappings: Vec<(String, String, String)>,
    ) -> PyResult<u64> {
        let (annotation_type, value, stamped) = stamp;
        let alleles: Vec<Allele> = alleles.iter().map(|a| a.get().inner.clone()).collect();
        let mappings = to_mappings(mappings)?;
        let registration = Registration {
            alleles: &alleles,
            objects: &objects,
            stamp: Stamp {
                annotation_type: &annotation_type,
                value: &value,
                object_ids: &stamped,
            },
            mappings: &mappings,
        };
        py.detach(|| self.inner.register(&registration))
            .map_err(to_py)
    }

    /// `(id, annotation_type, JSON value)` of an object's annotations, oldest first.
    #[pyo3(signature = (object_id, annotation_type=None))]
    fn annotations(
        &self,
        py: Python<'_>,
        object_id: String,
        annotation_type: Option<String>,
    ) -> PyResult<Vec<(i64, String, String)>> {
        let found = py
            .detach(|| {
                self.inner
                    .annotations(&object_id, annotation_type.as_deref())
            })
            .map_err(to_py)?;
        Ok(found
            .into_iter()
            .map(|a| (a.id, a.annotation_type, a.value))
            .collect())
    }

    /// Removes an object's annotations of one type; how many there were.
    fn delete_annotations(
        &self,
        py: Python<'_>,
        object_id: String,
        annotation_type: String,
    ) -> PyResult<u64> {
        py.detach(|| self.inner.delete_annotations(&object_id, &annotation_type))
            .map_err(to_py)
    }

    /// Stores `(source_id, dest_id, mapping_type)` mappings; duplicates are kept once.
    fn add_mappings(
        &self,
        py: Python<'_>,
        mappings: Vec<(String, String, String)>,
    ) -> PyResult<()> {
        let mappings = to_mappings(mappings)?;
        py.detach(|| self.inner.add_mappings(&mappings))
            .map_err(to_py)
    }

    /// `(source_id, dest_id, mapping_type)` of the mappings from (or, with `as_source` false,
    /// to) an object.
    #[pyo3(signature = (object_id, mapping_type=None, as_source=true))]
    fn mappings(
        &self,
        py: Python<'_>,
        object_id: String,
        mapping_type: Option<String>,
        as_source: bool,
    ) -> PyResult<Vec<(String, String, String)>> {
        let mapping_type = mapping_type
            .map(|t| MappingType::parse(&t))
            .transpose()
            .map_err(to_py)?;
        let found = py
            .detach(|| self.inner.mappings(&object_id, mapping_type, as_source))
            .map_err(to_py)?;
        Ok(found
            .into_iter()
            .map(|m| (m.source_id, m.dest_id, m.mapping_type.value().to_string()))
            .collect())
    }

    /// Removes one mapping; whether it was stored.
    fn delete_mapping(
        &self,
        py: Python<'_>,
        source_id: String,
        dest_id: String,
        mapping_type: String,
    ) -> PyResult<bool> {
        let mapping = Mapping {
            source_id,
            dest_id,
            mapping_type: MappingType::parse(&mapping_type).map_err(to_py)?,
        };
        py.detach(|| self.inner.delete_mapping(&mapping))
            .map_err(to_py)
    }

    /// Stores a categorical variant (`canonical_allele` or `protein_sequence_consequence`)
    /// by its id, name and defining allele's id.
    fn put_catvar(
        &self,
        py: Python<'_>,
        kind: &str,
        id: String,
        name: String,
        allele_id: String,
    ) -> PyResult<()> {
        let kind = CatVarKind::parse(kind).map_err(to_py)?;
        py.detach(|| self.inner.put_catvar(kind, &id, &name, &allele_id))
            .map_err(to_py)
    }

    /// `(name, allele_id)` of a stored categorical variant, or None.
    fn get_catvar(
        &self,
        py: Python<'_>,
        kind: &str,
        id: String,
    ) -> PyResult<Option<(String, String)>> {
        let kind = CatVarKind::parse(kind).map_err(to_py)?;
        py.detach(|| self.inner.get_catvar(kind, &id))
            .map_err(to_py)
    }

    /// Empties every table.
    fn wipe(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.wipe()).map_err(to_py)
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("VRS_VERSION", anyvar_core::vcf::VRS_VERSION)?;
    m.add_class::<SequenceSource>()?;
    m.add_class::<PyAllele>()?;
    m.add_class::<copy_number::PyCopyNumber>()?;
    m.add_function(wrap_pyfunction!(copy_number::translate_copy_number, m)?)?;
    m.add(
        "COPY_CHANGES",
        pyo3::types::PyTuple::new(m.py(), copy_number::copy_changes())?,
    )?;
    m.add_class::<Storage>()?;
    m.add_class::<vcf::PendingRegistration>()?;
    m.add_class::<liftover::ChainFile>()?;
    m.add_class::<liftover::Liftover>()?;
    m.add_function(wrap_pyfunction!(vcf::annotate_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(vcf::allele_ids, m)?)?;
    m.add_function(wrap_pyfunction!(vcf::ingest_annotated_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(vcf::check_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(vcf::join_parts, m)?)?;
    Ok(())
}
