//! `CopyNumber` and `translate_copy_number`: the binding of `anyvar_core::copy_number`.

use anyvar_core::copy_number::{copy_number_from_json, Bound, CopyChange, CopyNumber, Kind};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::{to_py, SequenceSource, TranslationError};

/// An identified VRS CopyNumberCount (`ga4gh:CN.…`) or CopyNumberChange (`ga4gh:CX.…`).
#[pyclass(frozen, name = "CopyNumber", module = "anyvar._core")]
pub(crate) struct PyCopyNumber {
    pub(crate) inner: CopyNumber,
}

/// `5`, `(None, 5)` or None.
fn bound<'py, T>(py: Python<'py>, b: Option<Bound<T>>) -> PyResult<Py<PyAny>>
where
    T: IntoPyObject<'py> + Copy,
{
    match b {
        None => Ok(py.None()),
        Some(Bound::Number(n)) => n.into_py_any(py),
        Some(Bound::Range(a, b)) => (a, b).into_py_any(py),
    }
}

#[pymethods]
impl PyCopyNumber {
    /// Computes the identifiers of a copy number given as VRS JSON (taken as given).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<PyCopyNumber> {
        copy_number_from_json(text)
            .map(|inner| PyCopyNumber { inner })
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

    /// The bare digest (the id without `ga4gh:CN.` / `ga4gh:CX.`).
    #[getter]
    fn digest(&self) -> String {
        self.inner.digest.to_string()
    }

    /// `CopyNumberCount` or `CopyNumberChange`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.type_name()
    }

    /// Refget accession (`SQ.…`) of the location's sequence.
    #[getter]
    fn accession(&self) -> &str {
        &self.inner.location.accession
    }

    /// The location's start: an int, a range `(min, max)` (either may be None), or None.
    #[getter]
    fn start(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        bound(py, self.inner.location.start)
    }

    /// The location's end, as `start`.
    #[getter]
    fn end(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        bound(py, self.inner.location.end)
    }

    /// A count's copies (an int or a range), None for a change.
    #[getter]
    fn copies(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.inner.kind {
            Kind::Count(c) => bound(py, Some(c)),
            Kind::Change(_) => Ok(py.None()),
        }
    }

    /// A change's `copyChange` (`"loss"`, …), None for a count.
    #[getter]
    fn copy_change(&self) -> Option<&'static str> {
        match self.inner.kind {
            Kind::Change(c) => Some(c.as_str()),
            Kind::Count(_) => None,
        }
    }

    /// The copy number as vrs-python dumps it (`model_dump_json(exclude_none=True)`).
    fn json(&self) -> String {
        self.inner.to_json()
    }

    /// The location alone, as it appears in `json()` (with its `id` and `digest`).
    fn location_json(&self) -> String {
        self.inner.location_json()
    }

    fn __repr__(&self) -> String {
        format!("CopyNumber({})", self.inner.id())
    }
}

/// Translates an HGVS `del`/`dup` definition into a copy number as AnyVar (vrs-python's
/// `CnvTranslator`) does for `input_type` `CopyNumberCount` or `CopyNumberChange`: with
/// `copies` a CopyNumberCount, otherwise a CopyNumberChange with `copy_change` (`loss` for a
/// deletion, `gain` for a duplication when None). `assembly` is accepted for symmetry with
/// `SequenceSource.translate`; HGVS names its sequence itself.
#[pyfunction]
#[pyo3(signature = (source, definition, input_type, copies=None, copy_change=None, assembly="GRCh38"))]
pub(crate) fn translate_copy_number(
    py: Python<'_>,
    source: &SequenceSource,
    definition: String,
    input_type: &str,
    copies: Option<i64>,
    copy_change: Option<&str>,
    assembly: &str,
) -> PyResult<PyCopyNumber> {
    let _ = assembly;
    if !matches!(input_type, "CopyNumberCount" | "CopyNumberChange") {
        return Err(PyValueError::new_err(format!(
            "input_type {input_type:?} is not CopyNumberCount or CopyNumberChange"
        )));
    }
    let copy_change = copy_change
        .map(CopyChange::parse)
        .transpose()
        .map_err(PyValueError::new_err)?;
    let inner = &source.inner;
    let result = py.detach(|| {
        anyvar_core::translate::translate_copy_number(inner, &definition, copies, copy_change)
    });
    match result.map_err(to_py)? {
        Ok(inner) => Ok(PyCopyNumber { inner }),
        Err(message) => Err(TranslationError::new_err(message)),
    }
}

/// The `copyChange` values, in vrs-python's order.
pub(crate) fn copy_changes() -> Vec<&'static str> {
    CopyChange::ALL.iter().map(|c| c.as_str()).collect()
}
