"""Exceptions of the anyvar package.

They are defined here, in Python, so Python owns the hierarchy (and pickling, which Celery
needs); the Rust extension imports them. Each also subclasses the standard exception a caller
would already catch.
"""

from __future__ import annotations


class AnyVarError(Exception):
    """Base class of every error anyvar raises on purpose."""


class VcfFormatError(AnyVarError, ValueError):
    """The input is not a VCF that can be annotated. ``line`` is 1-based (0: before any line)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


class SequenceSourceError(AnyVarError, OSError):
    """The reference sequence source (SeqRepo or FASTA) cannot be opened or read."""


class TranslationError(AnyVarError, ValueError):
    """A variation definition (gnomAD, SPDI, HGVS, VRS JSON) cannot be turned into an Allele."""


class SettingsError(AnyVarError, ValueError):
    """A setting (an environment variable or ``.env`` entry) has a value anyvar cannot use.
    ``problems`` holds one line per bad setting, naming it, its value and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StorageError(AnyVarError, OSError):
    """The registry's database cannot be reached or refused an operation."""


class RequiredAnnotationsError(VcfFormatError):
    """An annotated VCF given for ingestion lacks some of the six VRS INFO fields."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)

    def __str__(self) -> str:
        return self.message
