"""AnyVar main's categorical variants: canonical alleles and protein sequence consequences,
validated as AnyVar validates them (Cat-VRS models, one defining allele on a genomic or protein
sequence), stored with their defining allele, returned. Projection between them (AnyVar's
cool-seq-tool and UTA) is not done here."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from anyvar.core.categorical_variants import (
    EXPECTED_MOLECULE,
    KIND,
    CanonicalAllele,
    ProteinSequenceConsequence,
    is_expected_molecule_type,
)
from anyvar.registry import Registry
from anyvar.restapi.deps import RegistryDep
from anyvar.restapi.errors import detail_response
from anyvar.storage.base import StorageError
from anyvar.storage.core import core_allele

router = APIRouter(prefix="/categorical_variants", tags=["Categorical Variants"])

INVALID = "Validation checks failed -- see description for data requirements"


def _register(registry: Registry, catvar: CanonicalAllele | ProteinSequenceConsequence):
    kind = type(catvar)
    allele = catvar.defining_allele
    if registry.storage is None:
        raise HTTPException(status_code=503, detail="No storage is configured")
    location = getattr(allele, "location", None)
    reference = getattr(location, "sequenceReference", None)
    if not getattr(reference, "refgetAccession", None):
        # An IRI in place of the allele, its location or its sequence: nothing to check or
        # store.
        return detail_response(
            422,
            INVALID,
            "INVALID_CATEGORICAL_VARIANT",
            "the defining allele needs a SequenceLocation with a SequenceReference, "
            "not an IRI reference",  # the allele, too, may be one
        )
    if not is_expected_molecule_type(
        allele.location.sequenceReference, EXPECTED_MOLECULE[kind], registry.source
    ):
        return detail_response(
            422,
            INVALID,
            "INVALID_CATEGORICAL_VARIANT",
            f"the defining allele is not {kind.__name__}",
        )
    try:
        ours = core_allele(allele)
    except StorageError as e:
        return detail_response(422, INVALID, "INVALID_CATEGORICAL_VARIANT", str(e))
    registry.storage.put([ours])
    registry.storage.put_catvar(KIND[kind], catvar.id, catvar.name or "", ours.id)
    return None


def _get(registry: Registry, kind, catvar_id: str) -> dict | None:
    found = registry.storage.get_catvar(KIND[kind], catvar_id) if registry.storage else None
    if found is None:
        return None
    name, allele_id = found
    allele = registry.storage.get_object(allele_id)
    if allele is None:
        return None
    catvar = kind(
        id=catvar_id,
        name=name or None,
        constraints=[{"type": "DefiningAlleleConstraint", "allele": json.loads(allele)}],
    )
    return catvar.model_dump(mode="json", exclude_none=True)


@router.put("/canonical_alleles", operation_id="put_canonical_allele", response_model=None)
async def put_canonical_allele(
    registry: RegistryDep, catvar: Annotated[CanonicalAllele, Body()]
) -> JSONResponse | None:
    """Register a canonical allele: one defining allele, on a genomic sequence."""
    return await run_in_threadpool(_register, registry, catvar)


@router.get("/canonical_alleles/{ca_id}", operation_id="get_canonical_allele", response_model=None)
async def get_canonical_allele(registry: RegistryDep, ca_id: str) -> dict | JSONResponse:
    found = await run_in_threadpool(_get, registry, CanonicalAllele, ca_id)
    return found if found is not None else detail_response(404, "Not Found", "NOT_FOUND")


@router.put("/protein_sequence_consequences", operation_id="put_psq", response_model=None)
async def put_protein_sequence_consequence(
    registry: RegistryDep, catvar: Annotated[ProteinSequenceConsequence, Body()]
) -> JSONResponse | None:
    """Register a protein sequence consequence: one defining allele, on a protein sequence."""
    return await run_in_threadpool(_register, registry, catvar)


@router.get(
    "/protein_sequence_consequences/{psq_id}",
    operation_id="get_protein_sequence_consequence",
    response_model=None,
)
async def get_protein_sequence_consequence(
    registry: RegistryDep, psq_id: str
) -> dict | JSONResponse:
    found = await run_in_threadpool(_get, registry, ProteinSequenceConsequence, psq_id)
    return found if found is not None else detail_response(404, "Not Found", "NOT_FOUND")
