//! `anyvar._core`: the thin binding of anyvar-core. It converts arguments, releases the GIL
//! around every long call, and maps errors to the exception classes of `anyvar.exceptions`.

/// Rust allocations of the extension (Python keeps its own allocator): faster than the system
/// allocator for the loader's many small row allocations (see the workspace Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod copy_number;
mod liftover;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyvar_core::alleles::{AlleleSink, Annotator, RecordOptions};
use anyvar_core::sequence::SequenceSource as CoreSource;
use anyvar_core::storage::metadata::{CatVarKind, Mapping, MappingType, Registration, Stamp};
use anyvar_core::storage::{LoadProgress, Loader, LoaderSink, Storage as CoreStorage};
use anyvar_core::vcf::{self, AnnotateOptions, Compression, Input, MissingString, Output, Range};
use anyvar_core::vrs::from_json::allele_from_json;
use anyvar_core::vrs::model::{Allele, State};
use anyvar_core::Error;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use rayon::prelude::*;

pyo3::import_exception!(anyvar.exceptions, AnyVarError);
pyo3::import_exception!(anyvar.exceptions, VcfFormatError);
pyo3::import_exception!(anyvar.exceptions, SequenceSourceError);
pyo3::import_exception!(anyvar.exceptions, TranslationError);
pyo3::import_exception!(anyvar.exceptions, StorageError);
pyo3::import_exception!(anyvar.exceptions, RequiredAnnotationsError);

/// The one place core errors become Python exceptions.
fn to_py(e: Error) -> PyErr {
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
struct SequenceSource {
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
struct Storage {
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

/// Registration still running after an annotation returned (`wait_for_storage=False`).
/// `wait` and `progress` take `&self` so that one thread can report progress while another
/// waits (a `&mut self` method would hold the object's borrow for the whole wait).
#[pyclass(module = "anyvar._core", frozen)]
struct PendingRegistration {
    parts: Mutex<Option<(LoaderSink, Loader)>>,
    progress: Arc<LoadProgress>,
}

impl PendingRegistration {
    fn new(sink: LoaderSink, loader: Loader) -> Self {
        let progress = loader.progress();
        PendingRegistration {
            parts: Mutex::new(Some((sink, loader))),
            progress,
        }
    }
}

#[pymethods]
impl PendingRegistration {
    /// Blocks (without the GIL) until every allele is stored; returns how many were new.
    fn wait(&self, py: Python<'_>) -> PyResult<u64> {
        let parts = self.parts.lock().map(|mut p| p.take()).unwrap_or(None);
        let Some((sink, loader)) = parts else {
            return Err(PyValueError::new_err("already waited"));
        };
        py.detach(|| loader.wait(sink)).map_err(to_py)
    }

    /// `(rows committed, rows to write)` of the load phase: both 0 while the run's new rows
    /// are still being looked up and sorted.
    fn progress(&self) -> (u64, u64) {
        self.progress.get()
    }
}

fn allele_tuple(py: Python<'_>, a: &Allele) -> PyResult<Py<PyAny>> {
    let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    let (kind, sequence, length, rsl) = match &a.state {
        State::Literal { sequence } => (
            "LiteralSequenceExpression",
            Some(text(sequence)),
            None,
            None,
        ),
        State::ReferenceLength {
            length,
            repeat_subunit_length,
            sequence,
        } => (
            "ReferenceLengthExpression",
            sequence.as_deref().map(text),
            Some(*length),
            Some(*repeat_subunit_length),
        ),
    };
    Ok((
        a.id(),
        a.location_id(),
        a.accession.to_string(),
        a.start,
        a.end,
        kind,
        sequence,
        length,
        rsl,
    )
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// Calls a Python function with a batch of alleles, keeping its exception for the caller.
struct PySink {
    callback: Py<PyAny>,
    error: Option<PyErr>,
}

impl AlleleSink for PySink {
    fn put(&mut self, alleles: Vec<Allele>) -> Result<(), String> {
        Python::attach(|py| {
            let batch = alleles
                .iter()
                .map(|a| allele_tuple(py, a))
                .collect::<PyResult<Vec<_>>>()?;
            self.callback.call1(py, (batch,)).map(|_| ())
        })
        .map_err(|e| {
            let message = e.to_string();
            self.error = Some(e);
            message
        })
    }
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (source, input, output, *, assembly, for_ref, vrs_attributes, require_validation, threads, compression, tabix, producer, progress=None, sink=None, storage=None, wait_for_storage=true, range=None, missing_string="."))]
fn annotate_vcf(
    py: Python<'_>,
    source: &SequenceSource,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    assembly: String,
    for_ref: bool,
    vrs_attributes: bool,
    require_validation: bool,
    threads: usize,
    compression: &str,
    tabix: bool,
    producer: String,
    progress: Option<Py<PyAny>>,
    sink: Option<Py<PyAny>>,
    storage: Option<&Storage>,
    wait_for_storage: bool,
    range: Option<RangeTuple>,
    missing_string: &str,
) -> PyResult<Py<PyDict>> {
    if sink.is_some() && storage.is_some() {
        return Err(PyValueError::new_err(
            "pass either sink or storage, not both",
        ));
    }
    let options = AnnotateOptions {
        record: RecordOptions {
            assembly,
            for_ref,
            vrs_attributes,
            require_validation,
        },
        threads,
        compression: compression.parse::<Compression>().map_err(to_py)?,
        tabix,
        producer,
        range: range.map(|(offset, first_line, lines, header)| Range {
            offset,
            first_line,
            lines,
            header,
        }),
        missing_string: match missing_string {
            "." => MissingString::Dot,
            "" => MissingString::Empty,
            other => {
                return Err(PyValueError::new_err(format!(
                    "missing_string must be \".\" or \"\", not {other:?}"
                )))
            }
        },
    };
    let input = input.map_or(Input::Stdin, Input::Path);
    let output = output.map_or(Output::Stdout, Output::Path);
    let source = source.inner.clone();
    let mut sink = sink.map(|callback| PySink {
        callback,
        error: None,
    });
    let mut loader = match storage {
        Some(st) => {
            let st = st.inner.clone();
            Some(py.detach(|| st.spawn_loader(threads)).map_err(to_py)?)
        }
        None => None,
    };
    let mut callback_error: Option<PyErr> = None;
    let result = py.detach(|| {
        // Every progress tick also lets Python handle signals, so Ctrl-C and Celery's time
        // limits stop a run; an exception raised by `progress` cancels it the same way.
        let mut on_progress = |p: &vcf::Progress| -> anyvar_core::Result<()> {
            Python::attach(|py| {
                py.check_signals()?;
                if let Some(cb) = &progress {
                    cb.call1(py, (p.records, p.bytes_read, p.total_bytes))?;
                }
                Ok::<_, PyErr>(())
            })
            .map_err(|e| {
                callback_error = Some(e);
                Error::Cancelled
            })
        };
        vcf::annotate_vcf(
            &source,
            &input,
            &output,
            &options,
            match (sink.as_mut(), loader.as_mut()) {
                (Some(s), _) => Some(s as &mut dyn AlleleSink),
                (None, Some((s, _))) => Some(s as &mut dyn AlleleSink),
                (None, None) => None,
            },
            &mut on_progress,
        )
    });
    // A failed run is not loaded (what it admitted stays listed in the search index only). The
    // loader's own error explains a sink failure better than "the loader stopped".
    let (loader, pending) = match (loader, wait_for_storage) {
        (Some((sink, loader)), _) if result.is_err() => {
            (Some(py.detach(|| loader.abandon(sink))), None)
        }
        (Some((sink, loader)), true) => (Some(py.detach(|| loader.wait(sink))), None),
        (Some((sink, loader)), false) => (None, Some(PendingRegistration::new(sink, loader))),
        (None, _) => (None, None),
    };
    if let Some(Err(e)) = &loader {
        if matches!(result, Ok(_) | Err(Error::Sink(_))) {
            return Err(to_py(Error::Storage(
                e.to_string().trim_start_matches("storage: ").to_string(),
            )));
        }
    }
    let summary = match result {
        Ok(s) => s,
        Err(Error::Cancelled) if callback_error.is_some() => {
            return Err(callback_error.expect("checked"))
        }
        Err(Error::Sink(_)) if sink.as_ref().is_some_and(|s| s.error.is_some()) => {
            return Err(sink.and_then(|s| s.error).expect("checked"))
        }
        Err(e) => return Err(to_py(e)),
    };
    let d = PyDict::new(py);
    d.set_item("records", summary.records)?;
    d.set_item("alleles", summary.alleles)?;
    d.set_item("errors", summary.errors)?;
    d.set_item("seconds", summary.seconds)?;
    if let Some(Ok(stored)) = loader {
        d.set_item("stored", stored)?;
    }
    if let Some(p) = pending {
        d.set_item("pending", Py::new(py, p)?)?;
    }
    Ok(d.unbind())
}

/// VRS Allele ids for parallel arrays of VCF-style CHROM, POS, REF, ALT; None where there is no
/// allele (unknown contig, symbolic ALT, REF mismatch with validation...).
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (source, chrom, pos, reference, alt, *, assembly, require_validation, threads))]
fn allele_ids<'py>(
    py: Python<'py>,
    source: &SequenceSource,
    chrom: Vec<String>,
    pos: PyReadonlyArray1<'py, i64>,
    reference: Vec<String>,
    alt: Vec<String>,
    assembly: String,
    require_validation: bool,
    threads: usize,
) -> PyResult<Bound<'py, PyArray1<Py<PyAny>>>> {
    let pos = pos.as_slice()?.to_vec();
    let n = chrom.len();
    if pos.len() != n || reference.len() != n || alt.len() != n {
        return Err(PyValueError::new_err(format!(
            "chrom, pos, ref and alt must have the same length (got {n}, {}, {}, {})",
            pos.len(),
            reference.len(),
            alt.len()
        )));
    }
    let options = RecordOptions {
        assembly,
        for_ref: false,
        vrs_attributes: false,
        require_validation,
    };
    let source = source.inner.clone();
    let ids: anyvar_core::Result<Vec<Option<String>>> = py.detach(|| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let rows: Vec<usize> = (0..n).collect();
        pool.install(|| {
            rows.par_chunks(4096)
                .map(|chunk| {
                    let mut annotator = Annotator::new(&source, &options);
                    chunk
                        .iter()
                        .map(|&i| {
                            if pos[i] < 0 {
                                return Ok(None);
                            }
                            let p = pos[i].to_string();
                            let allele = annotator.alt_allele(
                                chrom[i].as_bytes(),
                                p.as_bytes(),
                                reference[i].as_bytes(),
                                alt[i].as_bytes(),
                            )?;
                            Ok(allele.ok().flatten().map(|a| a.id()))
                        })
                        .collect::<anyvar_core::Result<Vec<_>>>()
                })
                .collect::<anyvar_core::Result<Vec<Vec<_>>>>()
                .map(|v| v.into_iter().flatten().collect())
        })
    });
    let ids = ids.map_err(to_py)?;
    let objects: Vec<Py<PyAny>> = ids
        .into_iter()
        .map(|id| match id {
            Some(id) => pyo3::types::PyString::new(py, &id).into_any().unbind(),
            None => py.None(),
        })
        .collect();
    Ok(PyArray1::from_vec(py, objects))
}

/// Registers the alleles of an already annotated VCF; with `conflicts`, writes the CSV of ids
/// that differ from a fresh annotation there.
#[pyfunction]
#[pyo3(signature = (source, input, *, assembly, storage=None, conflicts=None))]
fn ingest_annotated_vcf(
    py: Python<'_>,
    source: &SequenceSource,
    input: PathBuf,
    assembly: String,
    storage: Option<&Storage>,
    conflicts: Option<PathBuf>,
) -> PyResult<Py<PyDict>> {
    struct Discard;
    impl AlleleSink for Discard {
        fn put(&mut self, _: Vec<Allele>) -> Result<(), String> {
            Ok(())
        }
    }
    let options = RecordOptions {
        assembly,
        for_ref: true,
        vrs_attributes: false,
        require_validation: true,
    };
    let source = source.inner.clone();
    let storage = storage.map(|s| s.inner.clone());
    let summary = py.detach(|| -> anyvar_core::Result<_> {
        let mut csv = match &conflicts {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
                |e| Error::Io {
                    context: format!("cannot create {}", p.display()),
                    source: e,
                },
            )?)),
            None => None,
        };
        let csv_ref = csv.as_mut().map(|w| w as &mut dyn std::io::Write);
        let input = Input::Path(input);
        let summary = match &storage {
            Some(st) => {
                let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
                let (mut sink, loader) = st.spawn_loader(parallel)?;
                let result =
                    vcf::ingest_annotated_vcf(&source, &input, &options, &mut sink, csv_ref);
                let stored = match &result {
                    Ok(_) => loader.wait(sink),
                    Err(_) => loader.abandon(sink),
                };
                // The loader's error explains a sink failure better than "the loader stopped".
                if let (Err(Error::Sink(_)), Err(e)) = (&result, stored) {
                    return Err(e);
                }
                result?
            }
            None => vcf::ingest_annotated_vcf(&source, &input, &options, &mut Discard, csv_ref)?,
        };
        if let Some(mut w) = csv {
            std::io::Write::flush(&mut w).map_err(|e| Error::Io {
                context: "writing the conflicts".into(),
                source: e,
            })?;
        }
        Ok(summary)
    });
    let summary = summary.map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("records", summary.records)?;
    d.set_item("alleles", summary.alleles)?;
    d.set_item("conflicts", summary.conflicts)?;
    Ok(d.unbind())
}

/// Sets the bounds on one line and on a header for every read in this process.
#[pyfunction]
fn set_limits(max_line_bytes: u64, max_header_bytes: u64) {
    vcf::set_limits(max_line_bytes, max_header_bytes);
}

/// A range of a VCF's lines as Python sees it: (offset, first line, lines or None, header).
type RangeTuple = (u64, u64, Option<u64>, bool);

/// Checks a whole plain, gzip or bgzip VCF as the annotator reads it (header, every data
/// line's structure; not the reference); `annotated`: also that it declares the VRS fields
/// ingestion needs. Returns the number of records and, with `chunk_records`, the ranges to
/// cut it into (empty when it is one chunk or cannot be cut).
#[pyfunction]
#[pyo3(signature = (input, threads=1, annotated=false, chunk_records=0))]
fn check_vcf(
    py: Python<'_>,
    input: PathBuf,
    threads: usize,
    annotated: bool,
    chunk_records: u64,
) -> PyResult<(u64, Vec<RangeTuple>)> {
    let checked = py
        .detach(|| vcf::check_vcf(&Input::Path(input), threads, annotated, chunk_records))
        .map_err(to_py)?;
    let ranges = checked
        .ranges
        .into_iter()
        .map(|r| (r.offset, r.first_line, r.lines, r.header))
        .collect();
    Ok((checked.records, ranges))
}

/// Joins the plain parts of a run's ranges, in order, into the output one run would write.
#[pyfunction]
#[pyo3(signature = (parts, output, *, compression, tabix=false, threads=1))]
fn join_parts(
    py: Python<'_>,
    parts: Vec<PathBuf>,
    output: PathBuf,
    compression: &str,
    tabix: bool,
    threads: usize,
) -> PyResult<()> {
    let compression = compression.parse::<Compression>().map_err(to_py)?;
    py.detach(|| vcf::join_parts(&parts, &output, compression, tabix, threads))
        .map_err(to_py)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("VRS_VERSION", vcf::VRS_VERSION)?;
    m.add_class::<SequenceSource>()?;
    m.add_class::<PyAllele>()?;
    m.add_class::<copy_number::PyCopyNumber>()?;
    m.add_function(wrap_pyfunction!(copy_number::translate_copy_number, m)?)?;
    m.add(
        "COPY_CHANGES",
        pyo3::types::PyTuple::new(m.py(), copy_number::copy_changes())?,
    )?;
    m.add_class::<Storage>()?;
    m.add_class::<PendingRegistration>()?;
    m.add_class::<liftover::ChainFile>()?;
    m.add_class::<liftover::Liftover>()?;
    m.add_function(wrap_pyfunction!(annotate_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(allele_ids, m)?)?;
    m.add_function(wrap_pyfunction!(ingest_annotated_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(set_limits, m)?)?;
    m.add_function(wrap_pyfunction!(check_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(join_parts, m)?)?;
    Ok(())
}
