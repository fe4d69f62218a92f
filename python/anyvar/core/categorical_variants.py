"""AnyVar main's categorical variants: a Cat-VRS CategoricalVariant with exactly one
DefiningAlleleConstraint, whose allele is on a genomic sequence (canonical allele) or a
protein sequence (protein sequence consequence)."""

from __future__ import annotations

from ga4gh.cat_vrs import models as cat_vrs
from ga4gh.vrs import models as vrs
from pydantic import Field, field_validator

from anyvar import _core

# The molecule a RefSeq accession prefix names (vrs-python's extract_sequence_type).
REFSEQ_MOLECULE = {
    "NC_": vrs.MoleculeType.GENOMIC,
    "NG_": vrs.MoleculeType.GENOMIC,
    "NT_": vrs.MoleculeType.GENOMIC,
    "NW_": vrs.MoleculeType.GENOMIC,
    "NP_": vrs.MoleculeType.PROTEIN,
    "XP_": vrs.MoleculeType.PROTEIN,
}


class _SimpleAlleleCatVar(cat_vrs.CategoricalVariant):
    id: str
    constraints: list[cat_vrs.Constraint] = Field(min_length=1, max_length=1)

    @field_validator("constraints")
    @classmethod
    def validate_constraints(cls, constraints: list[cat_vrs.Constraint]):
        if not isinstance(constraints[0].root, cat_vrs.DefiningAlleleConstraint):
            raise ValueError("Constraint must be a DefiningAlleleConstraint")  # noqa: TRY004
        return constraints

    @property
    def defining_allele(self) -> vrs.Allele:
        return self.constraints[0].root.allele


class CanonicalAllele(_SimpleAlleleCatVar):
    """Its defining allele is on a genomic sequence."""


class ProteinSequenceConsequence(_SimpleAlleleCatVar):
    """Its defining allele is on a protein sequence."""


EXPECTED_MOLECULE = {
    CanonicalAllele: vrs.MoleculeType.GENOMIC,
    ProteinSequenceConsequence: vrs.MoleculeType.PROTEIN,
}
KIND = {
    CanonicalAllele: "canonical_allele",
    ProteinSequenceConsequence: "protein_sequence_consequence",
}


def is_expected_molecule_type(
    reference: vrs.SequenceReference, expected: vrs.MoleculeType, source: _core.SequenceSource
) -> bool:
    """As AnyVar: a given ``moleculeType`` is taken as it is; otherwise the sequence's RefSeq
    alias tells."""
    if reference.moleculeType:
        return reference.moleculeType == expected
    for alias in source.aliases(reference.refgetAccession.removeprefix("ga4gh:")):
        namespace, _, name = alias.partition(":")
        # SeqRepo keeps RefSeq names in the NCBI namespace; its REST service says refseq
        if namespace in ("refseq", "NCBI") and name[:3] in REFSEQ_MOLECULE:
            return REFSEQ_MOLECULE[name[:3]] == expected
    return False
