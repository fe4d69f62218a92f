"""Type stubs of the Rust extension (kept in step with rust/python/src/lib.rs)."""

from collections.abc import Callable
from os import PathLike
from pathlib import Path

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

class SequenceSource:
    def __init__(self, uri: str, cache_dir: str | None = None) -> None: ...
    @property
    def uri(self) -> str: ...
    def resolve(self, name: str) -> tuple[str, int] | None: ...
    def translate(self, definition: str, assembly: str = "GRCh38") -> Allele: ...

class ChainFile:
    """One UCSC chain file (plain or gzip), converting as agct's ``Converter`` does."""

    def __init__(self, path: str | PathLike[str]) -> None: ...
    @property
    def path(self) -> Path: ...
    def convert_coordinate(
        self, chrom: str, start: int, end: int, strand: str = "+"
    ) -> list[tuple[str, int, int, str]]: ...
    def convert_position(self, chrom: str, coordinate: int) -> int: ...

class Liftover:
    """The GRCh38 -> GRCh37 and GRCh37 -> GRCh38 chain files of a directory."""

    def __init__(self, chain_dir: str | PathLike[str]) -> None: ...
    @property
    def chain_dir(self) -> Path: ...
    def lift(self, source: SequenceSource, allele: Allele) -> Allele: ...
    def lift_once(self, source: SequenceSource, allele: Allele) -> Allele: ...

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
