//! Liftover (`anyvar_core::liftover`): argument conversion, GIL release, and failures raised as
//! the exception classes of `anyvar.mapping.liftover`, whose texts are AnyVar's.

use std::path::PathBuf;
use std::sync::Arc;

use anyvar_core::liftover::{self as core, LiftoverError, Strand};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::copy_number::PyCopyNumber;
use crate::{to_py, PyAllele, SequenceSource};

pyo3::import_exception!(anyvar.mapping.liftover, ChainFileError);
pyo3::import_exception!(anyvar.mapping.liftover, UnsupportedVariantLocationTypeError);
pyo3::import_exception!(anyvar.mapping.liftover, UnsupportedReferenceAssemblyError);
pyo3::import_exception!(anyvar.mapping.liftover, CoordinateConversionFailureError);
pyo3::import_exception!(anyvar.mapping.liftover, AmbiguousCoordinateConversionError);
pyo3::import_exception!(anyvar.mapping.liftover, AccessionConversionError);
pyo3::import_exception!(anyvar.mapping.liftover, RoundtripMismatchError);

fn liftover_err(e: LiftoverError) -> PyErr {
    let message = e.to_string();
    match e {
        LiftoverError::UnsupportedVariantLocationType => {
            UnsupportedVariantLocationTypeError::new_err(message)
        }
        LiftoverError::UnsupportedReferenceAssembly => {
            UnsupportedReferenceAssemblyError::new_err(message)
        }
        LiftoverError::CoordinateConversionFailure => {
            CoordinateConversionFailureError::new_err(message)
        }
        LiftoverError::AmbiguousCoordinateConversion => {
            AmbiguousCoordinateConversionError::new_err(message)
        }
        LiftoverError::AccessionConversion => AccessionConversionError::new_err(message),
        LiftoverError::RoundtripMismatch { .. } => RoundtripMismatchError::new_err(message),
    }
}

/// One UCSC chain file (plain or gzip), converting coordinates as agct's `Converter` does.
#[pyclass(frozen, module = "anyvar._core")]
pub(crate) struct ChainFile {
    inner: Arc<core::ChainFile>,
}

#[pymethods]
impl ChainFile {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| core::ChainFile::open(&path)).map_err(to_py)?;
        Ok(ChainFile {
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// agct's `Converter.convert_coordinate`: `(chrom, start, end, strand)` of every place the
    /// interbase interval maps to.
    #[pyo3(signature = (chrom, start, end, strand="+"))]
    fn convert_coordinate(
        &self,
        chrom: &str,
        start: u64,
        end: u64,
        strand: &str,
    ) -> PyResult<Vec<(String, u64, u64, String)>> {
        let strand: Strand = strand.parse().map_err(to_py)?;
        let converted = self
            .inner
            .convert(chrom, start, end, strand)
            .map_err(to_py)?;
        Ok(converted
            .into_iter()
            .map(|c| (c.chrom, c.start, c.end, c.strand.to_string()))
            .collect())
    }

    /// AnyVar's `_convert_coordinate`: the one positive-strand position `coordinate` maps to.
    fn convert_position(&self, chrom: &str, coordinate: u64) -> PyResult<u64> {
        self.inner
            .convert_position(chrom, coordinate)
            .map_err(liftover_err)
    }

    fn __repr__(&self) -> String {
        format!("ChainFile({:?})", self.inner.path())
    }
}

/// Both GRCh37 <-> GRCh38 chain files of a directory.
#[pyclass(frozen, module = "anyvar._core")]
pub(crate) struct Liftover {
    inner: Arc<core::Liftover>,
    chain_dir: PathBuf,
}

#[pymethods]
impl Liftover {
    #[new]
    fn new(py: Python<'_>, chain_dir: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| core::Liftover::open(&chain_dir))
            .map_err(to_py)?;
        Ok(Liftover {
            inner: Arc::new(inner),
            chain_dir,
        })
    }

    #[getter]
    fn chain_dir(&self) -> PathBuf {
        self.chain_dir.clone()
    }

    /// The allele lifted to the other assembly, checked by lifting it back, and normalized:
    /// what AnyVar's `add_liftover_mapping` registers.
    fn lift(
        &self,
        py: Python<'_>,
        source: &SequenceSource,
        allele: &PyAllele,
    ) -> PyResult<PyAllele> {
        let result = py
            .detach(|| self.inner.lift(&source.inner, &allele.inner))
            .map_err(to_py)?;
        result.map(|inner| PyAllele { inner }).map_err(liftover_err)
    }

    /// `lift` of each allele of a registration batch, in parallel and without the GIL: for
    /// each, in order, the lifted allele or AnyVar's text of why there is none.
    fn lift_many(
        &self,
        py: Python<'_>,
        source: &SequenceSource,
        alleles: Vec<PyRef<'_, PyAllele>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let alleles: Vec<_> = alleles.iter().map(|a| a.inner.clone()).collect();
        let lifted = py
            .detach(|| self.inner.lift_many(&source.inner, &alleles))
            .map_err(to_py)?;
        lifted
            .into_iter()
            .map(|l| match l {
                Ok(inner) => Ok(Py::new(py, PyAllele { inner })?.into_any()),
                Err(e) => e.to_string().into_py_any(py),
            })
            .collect()
    }

    /// A copy number lifted to the other assembly and checked by lifting it back.
    fn lift_copy_number(
        &self,
        py: Python<'_>,
        source: &SequenceSource,
        copy_number: &PyCopyNumber,
    ) -> PyResult<PyCopyNumber> {
        let result = py
            .detach(|| {
                self.inner
                    .lift_copy_number(&source.inner, &copy_number.inner)
            })
            .map_err(to_py)?;
        result
            .map(|inner| PyCopyNumber { inner })
            .map_err(liftover_err)
    }

    /// AnyVar's `get_liftover_variant`: one direction, no round trip, not normalized.
    fn lift_once(
        &self,
        py: Python<'_>,
        source: &SequenceSource,
        allele: &PyAllele,
    ) -> PyResult<PyAllele> {
        let result = py
            .detach(|| self.inner.lift_once(&source.inner, &allele.inner))
            .map_err(to_py)?;
        result.map(|inner| PyAllele { inner }).map_err(liftover_err)
    }

    fn __repr__(&self) -> String {
        format!("Liftover({:?})", self.chain_dir)
    }
}
