//! VCF annotation, ingestion, checking and joining, and the allele ids of arrays: argument
//! conversion around the core's `vcf` module, the GIL released for each long call.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyvar_core::alleles::{self, AlleleSink, RecordOptions, Variant};
use anyvar_core::storage::{LoadProgress, Pending};
use anyvar_core::vcf::{
    self, AnnotateOptions, Compression, Input, Limits, MissingString, Output, Range,
};
use anyvar_core::vrs::model::{Allele, State};
use anyvar_core::Error;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::detach::{wait_detached, Turns};
use crate::{to_py, SequenceSource, Storage};

/// `anyvar.annotation.AnnotateOptions`, read by attribute name: the one parameter list of an
/// annotation, converted here once into the core's options.
#[derive(FromPyObject)]
pub(crate) struct Options {
    assembly: String,
    for_ref: bool,
    vrs_attributes: bool,
    require_validation: bool,
    compression: String,
    tabix: bool,
    threads: usize,
    range: Option<RangeTuple>,
    vrs_python_output: String,
    max_line_bytes: u64,
    max_header_bytes: u64,
}

impl Options {
    fn to_core(&self) -> PyResult<AnnotateOptions> {
        Ok(AnnotateOptions {
            record: RecordOptions {
                assembly: self.assembly.clone(),
                for_ref: self.for_ref,
                vrs_attributes: self.vrs_attributes,
                require_validation: self.require_validation,
            },
            threads: self.threads,
            compression: self.compression.parse::<Compression>().map_err(to_py)?,
            tabix: self.tabix,
            producer: format!("AnyVar version={}", env!("CARGO_PKG_VERSION")),
            range: self.range.map(|(offset, first_line, lines, header)| Range {
                offset,
                first_line,
                lines,
                header,
            }),
            // vrs-python 2.2 wrote a missing String entry as an empty string, 2.3 as `.`.
            missing_string: match self.vrs_python_output.as_str() {
                "2.2" => MissingString::Empty,
                _ => MissingString::Dot,
            },
            limits: Limits {
                max_line_bytes: self.max_line_bytes,
                max_header_bytes: self.max_header_bytes,
            },
        })
    }
}

/// Where an annotation's alleles go: registered in a storage, or handed to a Python function
/// in batches.
#[derive(FromPyObject)]
pub(crate) enum AllelesTo<'py> {
    Storage(PyRef<'py, Storage>),
    Function(Py<PyAny>),
}

/// A registration whose alleles have all been received, still being stored: `wait` for it
/// (and report its `progress` meanwhile). Returned by `annotate_vcf` with a storage.
#[pyclass(module = "anyvar._core", frozen)]
pub(crate) struct PendingRegistration {
    pending: Mutex<Option<Pending>>,
    progress: Arc<LoadProgress>,
}

impl PendingRegistration {
    fn new(pending: Pending) -> Self {
        PendingRegistration {
            progress: pending.progress(),
            pending: Mutex::new(Some(pending)),
        }
    }
}

#[pymethods]
impl PendingRegistration {
    /// Blocks until every allele is stored; returns how many were new. `progress` is called
    /// with `(rows committed, rows to write)` a few times a second meanwhile; an exception it
    /// raises, or a signal's (Ctrl-C, Celery's time limits), is raised once the alleles are
    /// stored: a registration is never cut short.
    #[pyo3(signature = (progress=None))]
    fn wait(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<u64> {
        let taken = self.pending.lock().map(|mut p| p.take()).unwrap_or(None);
        let Some(pending) = taken else {
            return Err(PyValueError::new_err("already waited"));
        };
        wait_detached(
            py,
            || pending.is_finished(),
            |py| match &progress {
                Some(report) => report.call1(py, self.progress.get()).map(drop),
                None => Ok(()),
            },
        )?;
        py.detach(|| pending.wait()).map_err(to_py)
    }

    /// `(rows committed, rows to write)` of the load phase: both 0 while the run's new rows
    /// are still being looked up and sorted.
    fn progress(&self) -> (u64, u64) {
        self.progress.get()
    }
}

/// Annotates `input` into `output` (None: stdin, stdout) as `options` (an
/// `anyvar.annotation.AnnotateOptions`) say. `alleles_to` receives every computed allele: a
/// Storage registers them (the summary's `pending` finishes that), a function is called with
/// batches of tuples. `progress(records, bytes read, total bytes)` is called a few times a
/// second; an exception it raises, or a signal's, cancels the run and is raised here.
#[pyfunction]
#[pyo3(signature = (source, input, output, options, *, progress=None, alleles_to=None))]
pub(crate) fn annotate_vcf(
    py: Python<'_>,
    source: &SequenceSource,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    options: Options,
    progress: Option<Py<PyAny>>,
    alleles_to: Option<AllelesTo<'_>>,
) -> PyResult<Py<PyDict>> {
    let options = options.to_core()?;
    let input = input.map_or(Input::Stdin, Input::Path);
    let output = output.map_or(Output::Stdout, Output::Path);
    let source = source.inner.clone();
    // Every progress tick lets Python handle signals, so Ctrl-C and Celery's time limits stop
    // a run; an exception raised by `progress` cancels it the same way.
    let mut turns = Turns::default();
    let mut on_progress = |p: &vcf::Progress| -> anyvar_core::Result<()> {
        turns.take(|py| match &progress {
            Some(cb) => cb
                .call1(py, (p.records, p.bytes_read, p.total_bytes))
                .map(drop),
            None => Ok(()),
        })
    };
    let mut annotate = |sink: Option<&mut dyn AlleleSink>| {
        vcf::annotate_vcf(&source, &input, &output, &options, sink, &mut on_progress)
    };
    let mut function_sink = None;
    let result = match alleles_to {
        Some(AllelesTo::Storage(storage)) => {
            let storage = storage.inner.clone();
            py.detach(|| storage.register_from(options.threads, |sink| annotate(Some(sink))))
                .map(|(summary, pending)| (summary, Some(pending)))
        }
        Some(AllelesTo::Function(callback)) => {
            let sink = function_sink.insert(PySink {
                callback,
                error: None,
            });
            py.detach(|| annotate(Some(sink)))
                .map(|summary| (summary, None))
        }
        None => py.detach(|| annotate(None)).map(|summary| (summary, None)),
    };
    let (summary, pending) = match result {
        Ok(done) => done,
        Err(Error::Sink(_)) if function_sink.as_ref().is_some_and(|s| s.error.is_some()) => {
            return Err(function_sink.and_then(|s| s.error).expect("checked"))
        }
        Err(e) => return Err(turns.error(e)),
    };
    let d = PyDict::new(py);
    d.set_item("records", summary.records)?;
    d.set_item("alleles", summary.alleles)?;
    d.set_item("errors", summary.errors)?;
    d.set_item("seconds", summary.seconds)?;
    if let Some(pending) = pending {
        d.set_item("pending", Py::new(py, PendingRegistration::new(pending))?)?;
    }
    Ok(d.unbind())
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

/// VRS Allele ids for parallel arrays of VCF-style CHROM, POS, REF, ALT, as `options` (an
/// `AnnotateOptions`: its assembly, require_validation and threads) say; None where there is
/// no allele (unknown contig, symbolic ALT, REF mismatch with validation...).
#[pyfunction]
pub(crate) fn allele_ids<'py>(
    py: Python<'py>,
    source: &SequenceSource,
    chrom: Vec<String>,
    pos: PyReadonlyArray1<'py, i64>,
    reference: Vec<String>,
    alt: Vec<String>,
    options: Options,
) -> PyResult<Bound<'py, PyArray1<Py<PyAny>>>> {
    let pos = pos.as_slice()?;
    let n = chrom.len();
    if pos.len() != n || reference.len() != n || alt.len() != n {
        return Err(PyValueError::new_err(format!(
            "chrom, pos, ref and alt must have the same length (got {n}, {}, {}, {})",
            pos.len(),
            reference.len(),
            alt.len()
        )));
    }
    let variants: Vec<Variant<'_>> = (0..n)
        .map(|i| Variant {
            chrom: &chrom[i],
            pos: pos[i],
            reference: &reference[i],
            alt: &alt[i],
        })
        .collect();
    let record = RecordOptions {
        for_ref: false,
        vrs_attributes: false,
        ..options.to_core()?.record
    };
    let source = source.inner.clone();
    let ids = py
        .detach(|| alleles::allele_ids(&source, &variants, &record, options.threads))
        .map_err(to_py)?;
    let objects: Vec<Py<PyAny>> = ids
        .into_iter()
        .map(|id| match id {
            Some(id) => pyo3::types::PyString::new(py, &id).into_any().unbind(),
            None => py.None(),
        })
        .collect();
    Ok(PyArray1::from_vec(py, objects))
}

/// Registers the alleles of an already annotated VCF, reading as `options` (an
/// `AnnotateOptions`: its assembly and limits) say; with `conflicts`, writes the CSV of ids
/// that differ from a fresh annotation there. `progress(records)` is called every few
/// thousand records; an exception it raises, or a signal's, stops the ingestion.
#[pyfunction]
#[pyo3(signature = (source, input, options, *, storage=None, conflicts=None, progress=None))]
pub(crate) fn ingest_annotated_vcf(
    py: Python<'_>,
    source: &SequenceSource,
    input: PathBuf,
    options: Options,
    storage: Option<&Storage>,
    conflicts: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    struct Discard;
    impl AlleleSink for Discard {
        fn put(&mut self, _: Vec<Allele>) -> Result<(), String> {
            Ok(())
        }
    }
    let core = options.to_core()?;
    let (limits, options) = (
        core.limits,
        RecordOptions {
            for_ref: true,
            vrs_attributes: false,
            require_validation: true,
            ..core.record
        },
    );
    let source = source.inner.clone();
    let storage = storage.map(|s| s.inner.clone());
    let mut turns = Turns::default();
    let mut on_progress = |records: u64| -> anyvar_core::Result<()> {
        turns.take(|py| match &progress {
            Some(cb) => cb.call1(py, (records,)).map(drop),
            None => Ok(()),
        })
    };
    let ingest = |sink: &mut dyn AlleleSink| -> anyvar_core::Result<_> {
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
        let summary = vcf::ingest_annotated_vcf(
            &source,
            &input,
            &options,
            &limits,
            sink,
            csv_ref,
            &mut on_progress,
        )?;
        if let Some(mut w) = csv {
            std::io::Write::flush(&mut w).map_err(|e| Error::Io {
                context: "writing the conflicts".into(),
                source: e,
            })?;
        }
        Ok(summary)
    };
    let ingested = match &storage {
        Some(st) => {
            let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
            py.detach(|| st.register_from(parallel, ingest))
                .map(|(summary, pending)| (summary, Some(pending)))
        }
        None => py
            .detach(|| ingest(&mut Discard))
            .map(|summary| (summary, None)),
    };
    let (summary, pending) = ingested.map_err(|e| turns.error(e))?;
    if let Some(pending) = pending {
        PendingRegistration::new(pending).wait(py, None)?;
    }
    let d = PyDict::new(py);
    d.set_item("records", summary.records)?;
    d.set_item("alleles", summary.alleles)?;
    d.set_item("conflicts", summary.conflicts)?;
    Ok(d.unbind())
}

/// A range of a VCF's lines as Python sees it: (offset, first line, lines or None, header).
type RangeTuple = (u64, u64, Option<u64>, bool);

/// Checks a whole plain, gzip or bgzip VCF as the annotator reads it (header, every data
/// line's structure; not the reference); `annotated`: also that it declares the VRS fields
/// ingestion needs. Returns the number of records and, with `chunk_records`, the ranges to
/// cut it into (empty when it is one chunk or cannot be cut).
#[pyfunction]
#[pyo3(signature = (input, limits, threads=1, annotated=false, chunk_records=0))]
pub(crate) fn check_vcf(
    py: Python<'_>,
    input: PathBuf,
    limits: (u64, u64),
    threads: usize,
    annotated: bool,
    chunk_records: u64,
) -> PyResult<(u64, Vec<RangeTuple>)> {
    let limits = Limits {
        max_line_bytes: limits.0,
        max_header_bytes: limits.1,
    };
    let input = Input::Path(input);
    let checked = py
        .detach(|| vcf::check_vcf(&input, threads, annotated, chunk_records, &limits))
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
pub(crate) fn join_parts(
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
