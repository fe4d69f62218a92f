"""Type stubs of the Rust extension (kept in step with rust/python/src/lib.rs)."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__version__: str
VRS_VERSION: str

class Allele:
    """An identified VRS Allele."""

    @staticmethod
    def from_json(text: str) -> Allele: ...
    @property
    def id(self) -> str: ...
    @property
    def location_id(self) -> str: ...
    def json(self) -> str: ...

Bound = int | tuple[int | None, int | None]
"""A VRS `Range | int`: a number, or an inclusive range (min, max) with one open end at most."""

COPY_CHANGES: tuple[str, ...]
"""vrs-python's `CopyChange` values ("complete genomic loss", ..., "high-level gain")."""

class CopyNumber:
    """An identified VRS CopyNumberCount (ga4gh:CN.) or CopyNumberChange (ga4gh:CX.)."""

    @staticmethod
    def from_json(text: str) -> CopyNumber: ...
    @property
    def id(self) -> str: ...
    @property
    def location_id(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def accession(self) -> str: ...
    @property
    def start(self) -> Bound | None: ...
    @property
    def end(self) -> Bound | None: ...
    @property
    def copies(self) -> Bound | None: ...
    @property
    def copy_change(self) -> str | None: ...
    def json(self) -> str: ...
    def location_json(self) -> str: ...

def translate_copy_number(
    source: SequenceSource,
    definition: str,
    input_type: str,
    copies: int | None = None,
    copy_change: str | None = None,
    assembly: str = "GRCh38",
) -> CopyNumber: ...

class SequenceSource:
    def __init__(self, uri: str, cache_dir: str | None = None) -> None: ...
    @property
    def uri(self) -> str: ...
    def resolve(self, name: str) -> tuple[str, int] | None: ...
    def translate(self, definition: str, assembly: str = "GRCh38") -> Allele: ...

class Storage:
    def __init__(self, uri: str) -> None: ...
    def put(self, alleles: list[Allele]) -> None: ...
    def get_object(self, id: str) -> str | None: ...
    def find_alleles(
        self, accession: str, start: int, end: int, after: str = "", limit: int = 100
    ) -> list[str]: ...

class PendingRegistration:
    def wait(self) -> int: ...
    def progress(self) -> tuple[int, int]: ...

def annotate_vcf(
    source: SequenceSource,
    input: str | None,
    output: str | None,
    *,
    assembly: str,
    for_ref: bool,
    vrs_attributes: bool,
    require_validation: bool,
    threads: int,
    compression: str,
    tabix: bool,
    producer: str,
    progress: Callable[[int, int, int | None], object] | None = None,
    sink: Callable[[list[tuple]], object] | None = None,
    storage: Storage | None = None,
    wait_for_storage: bool = True,
    range: Range | None = None,
    missing_string: str = ".",
) -> dict[str, object]: ...
def allele_ids(
    source: SequenceSource,
    chrom: list[str],
    pos: npt.NDArray[np.int64],
    reference: list[str],
    alt: list[str],
    *,
    assembly: str,
    require_validation: bool,
    threads: int,
) -> npt.NDArray[np.object_]: ...
def ingest_annotated_vcf(
    source: SequenceSource,
    input: str,
    *,
    assembly: str,
    storage: Storage | None = None,
    conflicts: str | None = None,
) -> dict[str, int]: ...
def set_limits(max_line_bytes: int, max_header_bytes: int) -> None: ...

Range = tuple[int, int, int | None, bool]
"""Lines of a VCF: (offset or BGZF virtual position, first line, lines or None, header)."""

def check_vcf(
    input: str, threads: int = 1, annotated: bool = False, chunk_records: int = 0
) -> tuple[int, list[Range]]: ...
def join_parts(
    parts: list[str], output: str, *, compression: str, tabix: bool = False, threads: int = 1
) -> None: ...
