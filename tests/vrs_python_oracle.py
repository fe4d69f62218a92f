"""Runs vrs-python's ``VcfAnnotator`` in whatever interpreter runs this file: the tests call
it with the virtualenv of an older vrs-python release (scripts/setup.sh makes
``.venv-vrs-python-2.2``), whose output a setting of ours reproduces.

    python vrs_python_oracle.py SEQREPO_INSTANCE INPUT OUTPUT VRS_ATTRIBUTES FOR_REF VALIDATION
"""

import logging
import sys
from pathlib import Path

from ga4gh.vrs.dataproxy import create_dataproxy
from ga4gh.vrs.extras.annotator.vcf import VcfAnnotator

instance, source, output, *flags = sys.argv[1:]
vrs_attributes, for_ref, require_validation = (f == "true" for f in flags)
# vrs-python logs a traceback for every REF mismatch.
logging.disable(logging.CRITICAL)
VcfAnnotator(create_dataproxy(f"seqrepo+file://{instance}")).annotate(
    Path(source),
    Path(output),
    vrs_attributes=vrs_attributes,
    assembly="GRCh38",
    compute_for_ref=for_ref,
    require_validation=require_validation,
)
