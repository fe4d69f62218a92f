"""AnyVar with a Rust core: GA4GH VRS identifiers for VCFs, a registry and a REST service."""

from anyvar._core import VRS_VERSION, SequenceSource, __version__
from anyvar.annotation import AnnotationSummary, allele_ids, annotate_vcf
from anyvar.exceptions import AnyVarError, SequenceSourceError, VcfFormatError
from anyvar.sequence import open_sequence_source

__all__ = [
    "VRS_VERSION",
    "AnnotationSummary",
    "AnyVarError",
    "SequenceSource",
    "SequenceSourceError",
    "VcfFormatError",
    "__version__",
    "allele_ids",
    "annotate_vcf",
    "open_sequence_source",
]
