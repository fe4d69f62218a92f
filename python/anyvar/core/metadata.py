"""Metadata on top of stored objects, as AnyVar names it: annotations (AnyVar 1.0.0) or
extensions (AnyVar's main branch), and mappings between variations. One store holds both
spellings: 1.0.0's names are what the database keeps."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, JsonValue


class VariationMappingType(StrEnum):
    """AnyVar 1.0.0's mapping types (the spelling the database keeps)."""

    LIFTOVER = "liftover"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"


class MappingTypeMain(StrEnum):
    """AnyVar main's names of the same mapping types."""

    LIFTOVER_TO = "liftover_to"
    TRANSCRIBE_TO = "transcribe_to"
    TRANSLATE_TO = "translate_to"


TO_MAIN = dict(zip(VariationMappingType, MappingTypeMain, strict=True))
FROM_MAIN = {main: stored for stored, main in TO_MAIN.items()}


class VariationMapping(BaseModel):
    """A directed mapping between two variations."""

    source_id: str
    dest_id: str
    mapping_type: VariationMappingType


class AnnotationType(StrEnum):
    """Commonly used annotation types."""

    CREATION_TIMESTAMP = "creation_timestamp"


class Annotation(BaseModel):
    """Any JSON value attached to an object id (AnyVar 1.0.0)."""

    object_id: str
    annotation_type: str
    annotation_value: JsonValue


class Extension(BaseModel):
    """AnyVar main's name for an annotation: ``name`` is the type, ``value`` the value."""

    object_id: str
    name: str
    value: JsonValue
