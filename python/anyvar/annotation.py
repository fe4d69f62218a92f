"""Annotating VCFs with GA4GH VRS identifiers, and vectorised identifier lookups.

Both run in the Rust core with the GIL released; Python only passes arguments through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import BaseModel

from anyvar import _core
from anyvar.config import Settings, get_settings
from anyvar.sequence import open_sequence_source

if TYPE_CHECKING:  # numpy is imported only by allele_ids: the CLI starts faster without it
    import numpy as np

ProgressCallback = Callable[[int, int, "int | None"], None]
"""Called with (records done, input bytes read, total input bytes or None)."""

VcfRange = tuple[int, int, "int | None", bool]
"""Lines of a VCF (``_core.check_vcf``): byte offset, first line, lines (None: to the end),
whether the header is written."""

AlleleBatch = list[tuple]
"""(va_id, sl_id, accession, start, end, state_type, sequence, length, repeat_subunit_length)"""


class AnnotationSummary(TypedDict, total=False):
    records: int
    alleles: int
    errors: int
    seconds: float
    stored: int
    """Alleles written to storage (when it was waited for)."""
    pending: _core.PendingRegistration
    """Registration still running (``wait_for_storage=False``)."""


@dataclass(frozen=True)
class AnnotateOptions:
    """How a VCF is annotated: the one parameter list, filled in once by the REST route (from
    AnyVar's names, ``VcfParameters.options``), the Celery tasks, the library and the CLI,
    and read by the core (the binding takes these attributes by name)."""

    assembly: str = "GRCh38"
    for_ref: bool = True
    """Also compute the REF allele's id."""
    vrs_attributes: bool = False
    """Also write VRS_Starts, VRS_Ends and VRS_States."""
    require_validation: bool = True
    """A REF that does not match the reference gets VRS_Error."""
    compression: Literal["auto", "none", "bgzip"] = "auto"
    """``auto`` writes BGZF when the output ends in ``.gz``/``.bgz``."""
    tabix: bool = False
    """Write a tabix (or CSI) index beside BGZF output."""
    threads: int | None = None
    """Default ``ANYVAR_THREADS``, else the cores the process may use."""
    range: VcfRange | None = None
    """Only these lines of the input (from ``_core.check_vcf``): a chunk of a run whose parts
    ``_core.join_parts`` joins into what one run writes."""
    vrs_python_output: Literal["2.3", "2.2"] | None = None
    """The vrs-python release whose output to match where they differ (default
    ``ANYVAR_VRS_PYTHON_OUTPUT``, 2.3): 2.2 writes missing String entries as empty strings
    instead of ``.``."""
    max_line_bytes: int | None = None
    """The longest line read (default ``ANYVAR_MAX_LINE_BYTES``): a longer one is bad input."""
    max_header_bytes: int | None = None
    """The longest header read (default ``ANYVAR_MAX_HEADER_BYTES``)."""

    def __post_init__(self) -> None:
        if self.compression not in ("auto", "none", "bgzip"):
            raise ValueError(f"compression must be auto, none or bgzip, not {self.compression!r}")
        if self.vrs_python_output not in (None, "2.3", "2.2"):
            raise ValueError(
                f"vrs_python_output must be 2.3 or 2.2, not {self.vrs_python_output!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")

    def resolved(self, settings: Settings) -> AnnotateOptions:
        """With the settings' defaults in place of what was left unset."""
        max_line_bytes, max_header_bytes = settings.limits()
        return replace(
            self,
            threads=self.threads or settings.annotation_threads(),
            vrs_python_output=self.vrs_python_output or settings.vrs_python_output,
            max_line_bytes=self.max_line_bytes or max_line_bytes,
            max_header_bytes=self.max_header_bytes or max_header_bytes,
        )


class VcfParameters(BaseModel):
    """AnyVar's parameters of ``PUT /vcf`` under its names: the route's query parameters and
    the keyword arguments of AnyVar's Celery task (which AnyVar's own clients may publish)."""

    assembly: str = "GRCh38"
    for_ref: bool = True
    allow_async_write: bool = False
    add_vrs_attributes: bool = False
    require_validation: bool = True
    output_compression: Literal["none", "bgzip"] = "none"

    def options(self, **more: Any) -> AnnotateOptions:
        """The one conversion from AnyVar's names (``more`` sets other fields); a BGZF result
        comes with its index."""
        options = AnnotateOptions(
            assembly=self.assembly,
            for_ref=self.for_ref,
            vrs_attributes=self.add_vrs_attributes,
            require_validation=self.require_validation,
            compression=self.output_compression,
            tabix=self.output_compression == "bgzip",
        )
        return replace(options, **more)


def _path(p: str | os.PathLike[str] | None) -> str | None:
    if p is None:
        return None
    s = os.fspath(p)
    return None if s == "-" else s


def annotate_vcf(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: AnnotateOptions | None = None,
    *,
    dataproxy_uri: str | None = None,
    progress: ProgressCallback | None = None,
    sink: Callable[[AlleleBatch], None] | None = None,
    storage: _core.Storage | None = None,
    wait_for_storage: bool = True,
    **fields: Any,
) -> AnnotationSummary:
    """Annotate ``input`` (plain, gzip or bgzip VCF; ``-`` for stdin) into ``output``, as
    ``options`` say (or the ``AnnotateOptions`` fields given as keywords).

    The output appears only when the run succeeded. An exception raised by ``progress``
    cancels the run and is re-raised here. ``sink`` receives every computed allele in input
    order, in batches; ``storage`` registers them instead (on a loader thread of the core;
    with ``wait_for_storage=False`` the summary's ``pending`` handle finishes that later).
    """
    if sink is not None and storage is not None:
        raise ValueError("pass either sink or storage, not both")
    options = replace(options or AnnotateOptions(), **fields).resolved(get_settings())
    summary = _core.annotate_vcf(
        open_sequence_source(dataproxy_uri),
        _path(input),
        _path(output),
        options,
        progress=progress,
        alleles_to=storage if storage is not None else sink,
    )
    if wait_for_storage and "pending" in summary:
        summary["stored"] = summary.pop("pending").wait()
    return AnnotationSummary(**summary)  # type: ignore[typeddict-item]


def _strings(values: Sequence[str] | np.ndarray) -> list[str]:
    import numpy as np

    return (
        values.astype(str).tolist() if isinstance(values, np.ndarray) else [str(v) for v in values]
    )


def allele_ids(
    chrom: Sequence[str] | np.ndarray,
    pos: Sequence[int] | np.ndarray,
    ref: Sequence[str] | np.ndarray,
    alt: Sequence[str] | np.ndarray,
    *,
    assembly: str = "GRCh38",
    dataproxy_uri: str | None = None,
    require_validation: bool = True,
    threads: int | None = None,
) -> np.ndarray:
    """VRS Allele ids (``ga4gh:VA.…``) of VCF-style variants, as a numpy object array.

    An entry is None where vrs-python's annotator gives no ALT id: unknown contig, symbolic,
    ``*`` or breakend ALT, or (with ``require_validation``) a REF that does not match.
    """
    import numpy as np

    options = AnnotateOptions(
        assembly=assembly, require_validation=require_validation, threads=threads
    ).resolved(get_settings())
    return _core.allele_ids(
        open_sequence_source(dataproxy_uri),
        _strings(chrom),
        np.ascontiguousarray(pos, dtype=np.int64),
        _strings(ref),
        _strings(alt),
        options,
    )
