//! `anyvar._core`: the thin binding of anyvar-core. It converts arguments, releases the GIL
//! around every long call, and maps errors to the exception classes of `anyvar.exceptions`.

use std::path::PathBuf;
use std::sync::Arc;

use anyvar_core::allele::{Allele, State};
use anyvar_core::sequence::SequenceSource as CoreSource;
use anyvar_core::vcf::{
    self, AnnotateOptions, Annotator, Compression, Input, Output, RecordOptions,
};
use anyvar_core::Error;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

pyo3::import_exception!(anyvar.exceptions, AnyVarError);
pyo3::import_exception!(anyvar.exceptions, VcfFormatError);
pyo3::import_exception!(anyvar.exceptions, SequenceSourceError);

/// The one place core errors become Python exceptions.
fn to_py(e: Error) -> PyErr {
    match e {
        Error::InvalidVcf { line, ref message } => VcfFormatError::new_err((message.clone(), line)),
        Error::SequenceSource { .. } | Error::SequenceRead { .. } => {
            SequenceSourceError::new_err(e.to_string())
        }
        Error::InvalidArgument(m) => PyValueError::new_err(m),
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Cancelled | Error::Sink(_) => AnyVarError::new_err(e.to_string()),
    }
}

/// A reference sequence source opened from a URI (`seqrepo+file://…`, `fasta+file://…`).
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

    /// `(accession, length)` of a `namespace:alias` name such as `GRCh38:chr1`, or None.
    fn resolve(&self, py: Python<'_>, name: String) -> PyResult<Option<(String, u64)>> {
        let found = py
            .detach(|| self.inner.resolve_name(&name))
            .map_err(to_py)?;
        Ok(found.map(|c| (c.accession.to_string(), c.length)))
    }

    fn __repr__(&self) -> String {
        format!("SequenceSource({:?})", self.inner.uri())
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

impl vcf::AlleleSink for PySink {
    fn put(&mut self, alleles: &[Allele]) -> Result<(), String> {
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
#[pyo3(signature = (source, input, output, *, assembly, for_ref, vrs_attributes, require_validation, threads, compression, tabix, producer, progress=None, sink=None))]
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
) -> PyResult<Py<PyDict>> {
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
    };
    let input = input.map_or(Input::Stdin, Input::Path);
    let output = output.map_or(Output::Stdout, Output::Path);
    let source = source.inner.clone();
    let mut sink = sink.map(|callback| PySink {
        callback,
        error: None,
    });
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
            sink.as_mut().map(|s| s as &mut dyn vcf::AlleleSink),
            &mut on_progress,
        )
    });
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("VRS_VERSION", vcf::VRS_VERSION)?;
    m.add_class::<SequenceSource>()?;
    m.add_function(wrap_pyfunction!(annotate_vcf, m)?)?;
    m.add_function(wrap_pyfunction!(allele_ids, m)?)?;
    Ok(())
}
