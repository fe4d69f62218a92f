"""AnyVar's storage interface over our registry database (the Rust core's ``Storage``):
SQLite or PostgreSQL, in AnyVar's tables. What AnyVar's library users call, for the few
objects they pass at a time; VCF runs register through the core's bulk loader instead."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ga4gh.vrs import models

from anyvar import _core
from anyvar.core import metadata, objects
from anyvar.storage.base import DataIntegrityError, IncompleteVrsObjectError, Storage

# The most rows one search returns, as AnyVar's PostgreSQL storage caps them.
MAX_ROWS = 500


def dump(obj: objects.VrsObject) -> str:
    return json.dumps(obj.model_dump(mode="json", exclude_none=True))


def core_allele(allele: models.Allele) -> _core.Allele:
    """Our allele of a vrs-python one, its ids computed from its content."""
    try:
        ours = _core.Allele.from_json(dump(allele))
    except ValueError as e:
        raise IncompleteVrsObjectError(str(e)) from e
    if allele.id is not None and allele.id != ours.id:
        raise DataIntegrityError(f"{allele.id} is not the id of this Allele ({ours.id})")
    return ours


class CoreObjectStore(Storage):
    def __init__(self, core: _core.Storage) -> None:
        self.core = core

    @classmethod
    def open(cls, uri: str) -> CoreObjectStore:
        return cls(_core.Storage(uri))

    def close(self) -> None:
        """Connections close with the object; writes are committed when calls return."""

    def wait_for_writes(self) -> None:
        """Every write is committed when its call returns."""

    def wipe_db(self) -> None:
        self.core.wipe()

    def add_objects(self, objects: Iterable[objects.VrsObject]) -> None:
        alleles: list[_core.Allele] = []
        others: list[tuple[str, str]] = []
        for obj in objects:
            if isinstance(obj, models.Allele):
                alleles.append(core_allele(obj))
                continue
            if isinstance(obj, models.SequenceReference):
                others.append((f"ga4gh:{obj.refgetAccession}", dump(obj)))
                continue
            if obj.id is None:
                raise IncompleteVrsObjectError(f"{type(obj).__name__} without an id")
            others.append((obj.id, dump(obj)))
        if alleles:
            self.core.put(alleles)
        if others:
            self.core.put_objects(others)

    def get_objects(
        self, object_type: type[objects.VrsObject], object_ids: Iterable[str]
    ) -> list[objects.VrsObject]:
        found = []
        for object_id in object_ids:
            text = self.core.get_object(object_id)
            if text is None:
                continue
            data = json.loads(text)
            if data.get("type") == object_type.__name__:
                found.append(object_type(**data))
        return found

    def delete_objects(
        self, object_type: type[objects.VrsObject], object_ids: Iterable[str]
    ) -> None:
        for object_id in object_ids:
            self.core.delete_object(object_id)

    def add_mapping(self, mapping: metadata.VariationMapping) -> None:
        if mapping.source_id == mapping.dest_id:
            raise ValueError(f"source_id cannot equal dest_id: {mapping.source_id}")
        self.core.add_mappings([(mapping.source_id, mapping.dest_id, mapping.mapping_type)])

    def delete_mapping(self, mapping: metadata.VariationMapping) -> None:
        self.core.delete_mapping(mapping.source_id, mapping.dest_id, mapping.mapping_type)

    def get_mappings(
        self,
        source_object_id: str,
        mapping_type: metadata.VariationMappingType | None = None,
        as_source: bool = True,
    ) -> list[metadata.VariationMapping]:
        rows = self.core.mappings(
            source_object_id, None if mapping_type is None else str(mapping_type), as_source
        )
        return [
            metadata.VariationMapping(source_id=s, dest_id=d, mapping_type=t) for s, d, t in rows
        ]

    def add_annotation(self, annotation: metadata.Annotation) -> int:
        return self.core.add_annotation(
            annotation.object_id,
            annotation.annotation_type,
            json.dumps(annotation.annotation_value),
        )

    def get_annotations(
        self, object_id: str, annotation_type: str | None = None
    ) -> list[metadata.Annotation]:
        return [
            metadata.Annotation(
                object_id=object_id, annotation_type=kind, annotation_value=json.loads(value)
            )
            for _, kind, value in self.core.annotations(object_id, annotation_type)
        ]

    def delete_annotation(self, annotation: metadata.Annotation) -> None:
        """Removes the object's annotations of this type (whatever their values)."""
        self.core.delete_annotations(annotation.object_id, annotation.annotation_type)

    def search_alleles(self, refget_accession: str, start: int, stop: int) -> list[models.Allele]:
        rows = self.core.find_alleles(
            refget_accession.removeprefix("ga4gh:"), start, stop, "", MAX_ROWS
        )
        return [models.Allele(**json.loads(r)) for r in rows]


class NoObjectStore(Storage):
    """No database (``ANYVAR_STORAGE_URI`` empty): nothing is kept, nothing is found."""

    def close(self) -> None: ...
    def wait_for_writes(self) -> None: ...
    def wipe_db(self) -> None: ...
    def add_objects(self, objects: Iterable[objects.VrsObject]) -> None: ...

    def get_objects(self, object_type, object_ids) -> list:
        return []

    def delete_objects(self, object_type, object_ids) -> None: ...
    def add_mapping(self, mapping: metadata.VariationMapping) -> None: ...
    def delete_mapping(self, mapping: metadata.VariationMapping) -> None: ...

    def get_mappings(self, source_object_id, mapping_type=None, as_source=True) -> list:
        return []

    def add_annotation(self, annotation: metadata.Annotation) -> int:
        return 0

    def get_annotations(self, object_id, annotation_type=None) -> list:
        return []

    def delete_annotation(self, annotation: metadata.Annotation) -> None: ...

    def search_alleles(self, refget_accession, start, stop) -> list:
        return []
