"""The VRS object types AnyVar stores, as vrs-python models (``anyvar.core.objects``)."""

from __future__ import annotations

from typing import TypeVar, get_args

from ga4gh.core import ga4gh_identify
from ga4gh.vrs import models, vrs_deref, vrs_enref

VrsObject = (
    models.Allele
    | models.CopyNumberChange
    | models.CopyNumberCount
    | models.SequenceLocation
    | models.SequenceReference
)
VrsVariation = models.Allele | models.CopyNumberChange | models.CopyNumberCount

vrs_object_class_map: dict[str, type[VrsObject]] = {
    cls.__name__: cls for cls in get_args(VrsObject)
}

Type_VrsObject = TypeVar("Type_VrsObject", bound=VrsObject)


def recursive_identify(vrs_object: Type_VrsObject) -> Type_VrsObject:
    """Fills in the GA4GH ids of an object and of every identifiable object inside it."""
    storage: dict = {}
    dereffed = vrs_deref(vrs_enref(vrs_object, storage), storage)
    dereffed.id = None
    dereffed.digest = None
    ga4gh_identify(dereffed, in_place="always")
    return dereffed


def parse_object(data: dict) -> VrsObject:
    """The vrs-python model of a stored object's JSON (by its ``type``)."""
    cls = vrs_object_class_map.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unsupported VRS object type {data.get('type')!r}")
    return cls(**data)
