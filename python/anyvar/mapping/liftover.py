"""GRCh37 <-> GRCh38 liftover of Alleles, with AnyVar's names (``anyvar.mapping.liftover``).

The work is the Rust core's (``anyvar._core.Liftover``): UCSC chain files read with the crate
agct wraps, coordinates converted as agct's ``Converter`` and AnyVar's ``_convert_coordinate``
do, the lifted allele lifted back to check the round trip and then normalized on the target
reference, as AnyVar's ``add_liftover_mapping`` does before it registers the lifted allele.

A sequence's assembly and chromosome come from the sequence source's aliases (``GRCh38:chr7``
and ``GRCh37:chr7``, or the bare ``7``), so the source must hold both assemblies. Chain files
are read from a directory (``ANYVAR_LIFTOVER_CHAIN_DIR``, by default agct's data directory);
nothing is downloaded.
"""

from __future__ import annotations

import os
from enum import Enum
from functools import lru_cache
from pathlib import Path

from anyvar import _core
from anyvar.exceptions import AnyVarError

CHAIN_DIR_SETTING = "ANYVAR_LIFTOVER_CHAIN_DIR"
"""The environment variable naming the directory of the chain files."""


class ReferenceAssembly(Enum):
    """Supported reference assemblies"""

    GRCH37 = "GRCh37"
    GRCH38 = "GRCh38"


class LiftoverError(AnyVarError):
    """Indicates a failure to liftover a variant between GRCh37 & GRCh38.

    ``str(error)`` is the message AnyVar reports for it (``get_error_message()``, or for a
    failed round trip the message naming both identifiers).
    """

    base_error_message = "Unable to complete liftover"
    error_details = ""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.get_error_message())

    @classmethod
    def get_error_message(cls) -> str:
        """Return the error message associated with the Exception"""
        return (
            f"{cls.base_error_message}: {cls.error_details}"
            if cls.error_details
            else cls.base_error_message
        )


class UnsupportedVariantLocationTypeError(LiftoverError):
    """Indicates a variant with a 'location' type that is unsupported"""

    error_details = (
        "Liftover is unsupported for variants without refget accession, start position, "
        "and end position"
    )


class UnsupportedReferenceAssemblyError(LiftoverError):
    """Indicates a failure to retrieve alias data for a refget accession in any supported
    reference assembly."""

    error_details = (
        "Could not resolve reference assembly - accession not found in any supported assembly"
    )


class CoordinateConversionFailureError(LiftoverError):
    """Indicates a failure to lift over a variant's coordinate"""

    error_details = "Could not convert start and/or end position(s)"


class AmbiguousCoordinateConversionError(LiftoverError):
    """Indicates AnyVar cannot lift over a variant because its start and/or end coordinates
    mapped to multiple possible locations"""

    error_details = "Start and/or end positions mapped to multiple possible locations"


class AccessionConversionError(LiftoverError):
    """Indicates a failure to convert a variant's refget accession"""

    error_details = "Could not convert refget accession"


class RoundtripMismatchError(LiftoverError):
    """The lifted-over variant does not lift back to the original. AnyVar has no class for it:
    ``add_liftover_mapping`` reports ``Unable to complete liftover: Roundtripped lifted-over id
    `<id>` does not match initial value of <id>``, which is this error's ``str()``."""

    error_details = "Roundtripped lifted-over id does not match initial value"


class ChainFileError(AnyVarError, OSError):
    """A liftover chain file is missing from the chain directory or cannot be read."""


def default_chain_dir() -> Path:
    """agct's data directory, where it keeps the chain files it downloads: wags-tails'
    ``get_data_dir()`` (``WAGS_TAILS_DIR``, else ``XDG_DATA_HOME/wags_tails``, else the first
    usable ``XDG_DATA_DIRS`` entry, else ``~/.local/share/wags_tails``) + ``ucsc-chainfile``."""
    if os.environ.get("WAGS_TAILS_DIR"):
        base = Path(os.environ["WAGS_TAILS_DIR"])
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"]) / "wags_tails"
    else:
        base = Path.home() / ".local" / "share" / "wags_tails"
        for directory in filter(None, os.environ.get("XDG_DATA_DIRS", "").split(":")):
            if not (Path(directory) / "wags_tails").is_file():
                base = Path(directory) / "wags_tails"
                break
    return base / "ucsc-chainfile"


@lru_cache(maxsize=4)
def _open(chain_dir: str) -> _core.Liftover:
    try:
        return _core.Liftover(chain_dir)
    except ChainFileError as e:
        msg = (
            f"{e} (the chain directory is the setting {CHAIN_DIR_SETTING}; agct's default is "
            f"{default_chain_dir()}; nothing is downloaded)"
        )
        raise ChainFileError(msg) from None


def get_liftover(chain_dir: str | os.PathLike[str]) -> _core.Liftover:
    """The chain files of ``chain_dir`` (``Settings.liftover_chain_dir``), read once per
    process and directory.

    :raise ChainFileError: if a chain file is missing or unreadable; the message names the
        files looked for and the setting
    """
    return _open(str(Path(chain_dir).expanduser().absolute()))


def lift_over(
    source: _core.SequenceSource, allele: _core.Allele, chain_dir: str | os.PathLike[str]
) -> _core.Allele:
    """The allele lifted to the other assembly (GRCh38 -> GRCh37 or GRCh37 -> GRCh38) and
    normalized there: the allele AnyVar registers beside ``allele``, with the two liftover
    mappings between them.

    :raise LiftoverError: (a subclass) when AnyVar would register no liftover; ``str()`` is
        the message AnyVar reports
    :raise ChainFileError: if the chain files cannot be read
    """
    return get_liftover(chain_dir).lift(source, allele)
