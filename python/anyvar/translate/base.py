"""AnyVar's translator interface, and the failure texts AnyVar answers with."""

from __future__ import annotations

from abc import ABC, abstractmethod

from anyvar.core.objects import VrsVariation
from anyvar.exceptions import TranslationError

__all__ = [
    "TranslationError",
    "Translator",
    "TranslatorConnectionError",
    "TranslatorSetupError",
    "anyvar_message",
]


class TranslatorSetupError(Exception):
    """The translator cannot be created (e.g. invalid parameters)."""


class TranslatorConnectionError(Exception):
    """The translator's sequence source does not answer."""


class Translator(ABC):
    """Turns definitions into VRS variations and accessions into sequence ids."""

    @abstractmethod
    def translate_variation(self, var: str, **kwargs) -> VrsVariation:
        """``var`` as a VRS variation. kwargs: ``input_type`` (Allele, CopyNumberCount,
        CopyNumberChange), ``copies``, ``copy_change``, ``assembly_name`` (GRCh38 or
        GRCh37). Raises TranslationError when it cannot be translated."""

    @abstractmethod
    def translate_allele(self, var: str) -> VrsVariation | None: ...

    @abstractmethod
    def translate_cnv(self, var: str) -> VrsVariation | None: ...

    @abstractmethod
    def get_sequence_id(self, accession_id: str) -> str:
        """The ``ga4gh:SQ.…`` id of an accession; KeyError when there is none."""


def anyvar_message(definition: str, reason: str) -> str:
    """AnyVar's text for a definition that does not translate, from the core's reason: a
    reference mismatch is told as vrs-python tells it, a malformed HGVS expression as a parse
    failure, anything else as 'Unable to translate'. (Our own reason goes to the log and the
    ``X-AnyVar-Error-Detail`` header: AnyVar's bodies carry AnyVar's texts only.)"""
    if reason.startswith("Reference mismatch"):
        return reason
    if reason.startswith("HGVS "):
        return f'Unable to parse HGVS expression "{definition}"'
    return f'Unable to translate "{definition}"'
