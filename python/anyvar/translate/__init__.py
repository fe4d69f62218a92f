"""Translation of variation definitions into VRS objects (AnyVar's ``anyvar.translate``)."""

from anyvar.translate.base import (
    TranslationError,
    Translator,
    TranslatorConnectionError,
    TranslatorSetupError,
)

__all__ = [
    "TranslationError",
    "Translator",
    "TranslatorConnectionError",
    "TranslatorSetupError",
]
