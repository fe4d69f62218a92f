"""AnyVar with a Rust core: GA4GH VRS identifiers for VCFs, a registry and a REST service."""

from anyvar._core import VRS_VERSION, SequenceSource, __version__
from anyvar.annotation import AnnotateOptions, AnnotationSummary, allele_ids, annotate_vcf
from anyvar.exceptions import AnyVarError, SequenceSourceError, VcfFormatError
from anyvar.sequence import open_sequence_source

__all__ = [
    "VRS_VERSION",
    "AnnotateOptions",
    "AnyVar",
    "AnnotationSummary",
    "AnyVarError",
    "SequenceSource",
    "SequenceSourceError",
    "VcfFormatError",
    "__version__",
    "allele_ids",
    "annotate_vcf",
    "create_storage",
    "create_translator",
    "open_sequence_source",
]

# AnyVar's library interface (``from anyvar import AnyVar``), imported when first used: it
# brings vrs-python's models, which the CLI and the workers do not need.
_LIBRARY = {"AnyVar", "create_storage", "create_translator"}


def __getattr__(name: str):
    if name in _LIBRARY:
        from anyvar import anyvar as library

        return getattr(library, name)
    raise AttributeError(f"module 'anyvar' has no attribute {name!r}")
