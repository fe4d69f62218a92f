"""Type stubs of the Rust extension, checked against it by mypy's stubtest (tests/test_stubs.py)."""

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Protocol, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = [
    "__version__", "VRS_VERSION", "SequenceSource", "Allele", "CopyNumber",
    "translate_copy_number", "COPY_CHANGES", "Storage", "PendingRegistration", "ChainFile",
    "Liftover", "annotate_vcf", "allele_ids", "ingest_annotated_vcf", "check_vcf",
    "join_parts",
]  # fmt: skip

__version__: str
VRS_VERSION: str

@final
class Allele:
    """An identified VRS Allele."""

    @staticmethod
    def from_json(text: str) -> Allele: ...
    @property
    def id(self) -> str: ...
    @property
    def location_id(self) -> str: ...
    def json(self) -> str: ...

_Bound = int | tuple[int | None, int | None]
"""A VRS `Range | int`: a number, or an inclusive range (min, max) with one open end at most."""

COPY_CHANGES: tuple[str, ...]
"""vrs-python's `CopyChange` values ("complete genomic loss", ..., "high-level gain")."""

@final
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
    def start(self) -> _Bound | None: ...
    @property
    def end(self) -> _Bound | None: ...
    @property
    def copies(self) -> _Bound | None: ...
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

@final
class SequenceSource:
    def __new__(cls, uri: str, cache_dir: str | None = None) -> Self: ...
    @property
    def uri(self) -> str: ...
    def resolve(self, name: str) -> tuple[str, int] | None: ...
    def aliases(self, accession: str) -> list[str]: ...
    def translate(self, definition: str, assembly: str = "GRCh38") -> Allele: ...
    def translate_many(
        self, definitions: list[str], assembly: str = "GRCh38"
    ) -> list[Allele | str]: ...

@final
class ChainFile:
    """One UCSC chain file (plain or gzip), converting as agct's ``Converter`` does."""

    def __new__(cls, path: str | PathLike[str]) -> Self: ...
    @property
    def path(self) -> Path: ...
    def convert_coordinate(
        self, chrom: str, start: int, end: int, strand: str = "+"
    ) -> list[tuple[str, int, int, str]]: ...
    def convert_position(self, chrom: str, coordinate: int) -> int: ...

@final
class Liftover:
    """The GRCh38 -> GRCh37 and GRCh37 -> GRCh38 chain files of a directory."""

    def __new__(cls, chain_dir: str | PathLike[str]) -> Self: ...
    @property
    def chain_dir(self) -> Path: ...
    def lift(self, source: SequenceSource, allele: Allele) -> Allele: ...
    def lift_once(self, source: SequenceSource, allele: Allele) -> Allele: ...
    def lift_many(self, source: SequenceSource, alleles: list[Allele]) -> list[Allele | str]: ...
    def lift_copy_number(self, source: SequenceSource, copy_number: CopyNumber) -> CopyNumber: ...

@final
class Storage:
    def __new__(cls, uri: str) -> Self: ...
    def put(self, alleles: list[Allele]) -> int: ...
    def get_object(self, id: str) -> str | None: ...
    def find_alleles(
        self, accession: str, start: int, end: int, after: str = "", limit: int = 100
    ) -> list[str]: ...
    def put_objects(self, objects: list[tuple[str, str]]) -> None: ...
    def delete_object(self, id: str) -> bool: ...
    def add_annotation(self, object_id: str, annotation_type: str, value: str) -> int: ...
    def register(
        self,
        alleles: list[Allele],
        objects: list[tuple[str, str]],
        stamp: tuple[str, str, list[str]],
        mappings: list[tuple[str, str, str]],
    ) -> int: ...
    def annotations(
        self, object_id: str, annotation_type: str | None = None
    ) -> list[tuple[int, str, str]]: ...
    def delete_annotations(self, object_id: str, annotation_type: str) -> int: ...
    def add_mappings(self, mappings: list[tuple[str, str, str]]) -> None: ...
    def mappings(
        self, object_id: str, mapping_type: str | None = None, as_source: bool = True
    ) -> list[tuple[str, str, str]]: ...
    def delete_mapping(self, source_id: str, dest_id: str, mapping_type: str) -> bool: ...
    def put_catvar(self, kind: str, id: str, name: str, allele_id: str) -> None: ...
    def get_catvar(self, kind: str, id: str) -> tuple[str, str] | None: ...
    def wipe(self) -> None: ...

@final
class PendingRegistration:
    def wait(self, progress: Callable[[int, int], object] | None = None) -> int: ...
    def progress(self) -> tuple[int, int]: ...

class _AnnotateOptions(Protocol):
    """What the core reads of ``anyvar.annotation.AnnotateOptions`` (resolved: no None)."""

    assembly: str
    for_ref: bool
    vrs_attributes: bool
    require_validation: bool
    compression: str
    tabix: bool
    threads: int | None
    range: _Range | None
    vrs_python_output: str | None
    max_line_bytes: int | None
    max_header_bytes: int | None

def annotate_vcf(
    source: SequenceSource,
    input: str | None,
    output: str | None,
    options: _AnnotateOptions,
    *,
    progress: Callable[[int, int, int | None], object] | None = None,
    alleles_to: Storage | Callable[[list[tuple]], object] | None = None,
) -> dict[str, Any]: ...
def allele_ids(
    source: SequenceSource,
    chrom: list[str],
    pos: npt.NDArray[np.int64],
    reference: list[str],
    alt: list[str],
    options: _AnnotateOptions,
) -> npt.NDArray[np.object_]: ...
def ingest_annotated_vcf(
    source: SequenceSource,
    input: str,
    options: _AnnotateOptions,
    *,
    storage: Storage | None = None,
    conflicts: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, int]: ...

_Range = tuple[int, int, int | None, bool]
"""Lines of a VCF: (offset or BGZF virtual position, first line, lines or None, header)."""

def check_vcf(
    input: str,
    limits: tuple[int, int],
    threads: int = 1,
    annotated: bool = False,
    chunk_records: int = 0,
) -> tuple[int, list[_Range]]: ...
def join_parts(
    parts: list[str], output: str, *, compression: str, tabix: bool = False, threads: int = 1
) -> None: ...
