"""What keeps the API's event loop answering under load (restapi/latency.py): here, that a
batch of definitions leaves no reference cycle behind, whatever fails in it. A batch held in a
cycle lives until Python's full collection, which then stops every thread, the event loop with
them, for as long as it scans (100-250 ms under benchmarks/bench_load.py before this held)."""

from __future__ import annotations

import gc

from anyvar.exceptions import TranslationError
from anyvar.registry import translate_all
from anyvar.restapi.schema import VariationRequest
from anyvar.sequence import open_sequence_source

REQUESTS = [
    {"definition": "chr1-11-A-G"},  # an allele
    {"definition": "nonsense"},  # neither an allele nor a copy number
    {"definition": "chr1-11-T-G"},  # the reference is A
    # a copy number: translated one by one, not in the core's parallel call
    {"definition": "nonsense", "input_type": "CopyNumberCount", "copies": 2},
]


def test_a_batch_with_failed_definitions_leaves_no_reference_cycle(
    vector_seqrepo_uri: str,
) -> None:
    source = open_sequence_source(vector_seqrepo_uri)
    requests = [VariationRequest(**r) for r in REQUESTS]
    gc.collect()
    gc.disable()
    try:
        found = translate_all(source, requests)
        failed = [type(v) for v in found if isinstance(v, TranslationError)]
        del found, requests
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable stays to be seen
        gc.collect()
        left = [
            type(o).__name__ for o in gc.garbage if isinstance(o, VariationRequest | BaseException)
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert len(failed) == 3
    assert left == []
