"""Liftover between GRCh37 and GRCh38 (AnyVar's ``anyvar.mapping.liftover``)."""

from enum import Enum


class ReferenceAssembly(Enum):
    GRCH37 = "GRCh37"
    GRCH38 = "GRCh38"
