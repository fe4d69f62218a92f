"""Annotating VCFs with GA4GH VRS identifiers, and vectorised identifier lookups.

Both run in the Rust core with the GIL released; Python only passes arguments through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypedDict

from anyvar import _core
from anyvar.config import get_settings
from anyvar.sequence import open_sequence_source

if TYPE_CHECKING:  # numpy is imported only by allele_ids: the CLI starts faster without it
    import numpy as np

ProgressCallback = Callable[[int, int, "int | None"], None]
"""Called with (records done, input bytes read, total input bytes or None)."""

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


def _threads(threads: int | None) -> int:
    if threads is None:
        return get_settings().annotation_threads()
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    return threads


def _path(p: str | os.PathLike[str] | None) -> str | None:
    if p is None:
        return None
    s = os.fspath(p)
    return None if s == "-" else s


def annotate_vcf(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    dataproxy_uri: str | None = None,
    assembly: str = "GRCh38",
    for_ref: bool = True,
    vrs_attributes: bool = False,
    require_validation: bool = True,
    threads: int | None = None,
    compression: Literal["auto", "none", "bgzip"] = "auto",
    tabix: bool = False,
    progress: ProgressCallback | None = None,
    sink: Callable[[AlleleBatch], None] | None = None,
    storage: _core.Storage | None = None,
    wait_for_storage: bool = True,
    range: _core.Range | None = None,
    vrs_python_output: Literal["2.3", "2.2"] | None = None,
) -> AnnotationSummary:
    """Annotate ``input`` (plain, gzip or bgzip VCF; ``-`` for stdin) into ``output``.

    ``compression="auto"`` writes BGZF when ``output`` ends in ``.gz``/``.bgz``. The output
    appears only when the run succeeded. An exception raised by ``progress`` cancels the run
    and is re-raised here. ``sink`` receives every computed allele in input order, in batches;
    ``storage`` registers them instead (on a loader thread of the core; with
    ``wait_for_storage=False`` the summary's ``pending`` handle finishes that later).
    ``range`` (from ``_core.check_vcf``) annotates only those lines of ``input``: a chunk of a
    run whose parts ``_core.join_parts`` joins into what one run writes.
    ``vrs_python_output`` (default ``ANYVAR_VRS_PYTHON_OUTPUT``, ``2.3``) picks the release
    whose output to match where they differ: ``2.2`` writes missing String entries as empty
    strings instead of ``.``.
    """
    settings = get_settings()
    settings.apply_limits()
    release = vrs_python_output or settings.vrs_python_output
    if release not in ("2.3", "2.2"):
        raise ValueError(f"vrs_python_output must be 2.3 or 2.2, not {release!r}")
    source = open_sequence_source(dataproxy_uri)
    summary = _core.annotate_vcf(
        source,
        _path(input),
        _path(output),
        assembly=assembly,
        for_ref=for_ref,
        vrs_attributes=vrs_attributes,
        require_validation=require_validation,
        threads=_threads(threads),
        compression=compression,
        tabix=tabix,
        producer=f"AnyVar version={_core.__version__}",
        progress=progress,
        sink=sink,
        storage=storage,
        wait_for_storage=wait_for_storage,
        range=range,
        missing_string="" if release == "2.2" else ".",
    )
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

    source = open_sequence_source(dataproxy_uri)
    return _core.allele_ids(
        source,
        _strings(chrom),
        np.ascontiguousarray(pos, dtype=np.int64),
        _strings(ref),
        _strings(alt),
        assembly=assembly,
        require_validation=require_validation,
        threads=_threads(threads),
    )
