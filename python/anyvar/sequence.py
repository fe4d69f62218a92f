"""Opening reference sequence sources once per process."""

from __future__ import annotations

from functools import lru_cache

from anyvar import _core
from anyvar.config import get_settings
from anyvar.exceptions import SequenceSourceError


@lru_cache(maxsize=8)
def _open(uri: str, cache_dir: str) -> _core.SequenceSource:
    return _core.SequenceSource(uri, cache_dir)


def open_sequence_source(uri: str | None = None) -> _core.SequenceSource:
    """The source a URI names (default ``SEQREPO_DATAPROXY_URI``), opened once and reused."""
    settings = get_settings()
    uri = uri or settings.seqrepo_dataproxy_uri
    if not uri:
        raise SequenceSourceError(
            "no sequence source: pass dataproxy_uri or set SEQREPO_DATAPROXY_URI "
            "(seqrepo+file:///path/to/instance, seqrepo+http://host:port/seqrepo or "
            "fasta+file:///path/ref.fa?assembly=GRCh38)"
        )
    return _open(uri, str(settings.cache_dir))
