"""AnyVar's translator interface over our sequence source (the Rust core's translation)."""

from __future__ import annotations

import json

from ga4gh.vrs import models

from anyvar import _core
from anyvar.core.objects import VrsVariation
from anyvar.exceptions import TranslationError
from anyvar.translate.base import Translator


class CoreTranslator(Translator):
    def __init__(self, source: _core.SequenceSource) -> None:
        self.source = source

    def translate_variation(self, var: str, **kwargs) -> VrsVariation:
        input_type = kwargs.get("input_type")
        if input_type not in (None, "Allele"):
            raise NotImplementedError(f"{input_type} is not supported")
        return self.translate_allele(var, assembly_name=kwargs.get("assembly_name"))

    def translate_allele(self, var: str, assembly_name: str | None = None) -> models.Allele:
        """Raises TranslationError with the core's reason (see ``anyvar_message``)."""
        allele = self.source.translate(var, assembly_name or "GRCh38")
        return models.Allele(**json.loads(allele.json()))

    def translate_cnv(self, var: str) -> VrsVariation | None:
        raise NotImplementedError("copy number translation")

    def get_sequence_id(self, accession_id: str) -> str:
        name = accession_id.removeprefix("ga4gh:")
        if name.startswith("SQ."):
            return f"ga4gh:{name}"
        found = self.source.resolve(accession_id) or self.source.resolve(f"refseq:{accession_id}")
        if not found:
            raise KeyError(accession_id)
        return f"ga4gh:{found[0]}"


__all__ = ["CoreTranslator", "TranslationError"]
