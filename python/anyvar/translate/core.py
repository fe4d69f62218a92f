"""AnyVar's translator interface over our sequence source (the Rust core's translation)."""

from __future__ import annotations

import json

from ga4gh.vrs import models

from anyvar import _core
from anyvar.core.objects import VrsVariation, parse_object
from anyvar.exceptions import TranslationError
from anyvar.translate.base import Translator


class CoreTranslator(Translator):
    def __init__(self, source: _core.SequenceSource) -> None:
        self.source = source

    def translate_variation(self, var: str, **kwargs) -> VrsVariation:
        """As ``PUT /variation`` translates: kwargs ``input_type``, ``copies``,
        ``copy_change``, ``assembly_name``. Raises TranslationError with the core's reason
        (see ``anyvar_message``)."""
        from anyvar.registry import translate
        from anyvar.restapi.schema import VariationRequest

        fields = {k: v for k, v in kwargs.items() if k in VariationRequest.model_fields}
        found = translate(self.source, VariationRequest(definition=var, **fields))
        return parse_object(json.loads(found.json()))

    def translate_allele(self, var: str, assembly_name: str | None = None) -> models.Allele:
        return self.translate_variation(var, input_type="Allele", assembly_name=assembly_name)

    def translate_cnv(self, var: str, **kwargs) -> VrsVariation:
        kind = "CopyNumberCount" if kwargs.get("copies") is not None else "CopyNumberChange"
        return self.translate_variation(var, **{"input_type": kind, **kwargs})

    def get_sequence_id(self, accession_id: str) -> str:
        name = accession_id.removeprefix("ga4gh:")
        if name.startswith("SQ."):
            return f"ga4gh:{name}"
        found = self.source.resolve(accession_id) or self.source.resolve(f"refseq:{accession_id}")
        if not found:
            raise KeyError(accession_id)
        return f"ga4gh:{found[0]}"


__all__ = ["CoreTranslator", "TranslationError"]
