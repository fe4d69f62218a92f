"""Type stubs of the Rust extension (kept in step with rust/python/src/lib.rs)."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__version__: str
VRS_VERSION: str

class SequenceSource:
    def __init__(self, uri: str, cache_dir: str | None = None) -> None: ...
    @property
    def uri(self) -> str: ...
    def resolve(self, name: str) -> tuple[str, int] | None: ...

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
) -> dict[str, int | float]: ...
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
