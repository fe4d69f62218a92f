"""AnyVar's library interface (``anyvar.anyvar``): storage and translator factories and the
``AnyVar`` class, as AnyVar 1.0.0 and its main branch define them, over our registry."""

from __future__ import annotations

import datetime
import importlib.util
import logging
import os
from collections.abc import Iterable

from ga4gh.vrs import models

from anyvar.core import metadata, objects
from anyvar.storage.base import Storage
from anyvar.translate.base import Translator

_logger = logging.getLogger(__name__)


def create_storage(uri: str | None = None) -> Storage:
    """Storage for ``uri`` (default ``ANYVAR_STORAGE_URI``): ``postgresql://…``,
    ``sqlite:///path``, or the empty string for none."""
    from anyvar.config import get_settings
    from anyvar.storage.core import CoreObjectStore, NoObjectStore

    if uri is None:
        uri = get_settings().storage_uri
    if uri == "":
        return NoObjectStore()
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in ("postgresql", "postgres", "sqlite"):
        raise ValueError(f"URI scheme {scheme} is not implemented")
    return CoreObjectStore.open(uri)


def create_translator(dataproxy_uri: str | None = None) -> Translator:
    """A translator over the sequence source ``dataproxy_uri`` names (default
    ``SEQREPO_DATAPROXY_URI``)."""
    from anyvar.sequence import open_sequence_source
    from anyvar.translate.core import CoreTranslator

    return CoreTranslator(open_sequence_source(dataproxy_uri))


def has_queueing_enabled() -> bool:
    """Whether asynchronous runs are configured, read from the environment at each call as
    AnyVar does (emptying ``CELERY_BROKER_URL`` or ``ANYVAR_VCF_ASYNC_WORK_DIR`` turns them
    off at once)."""
    return (
        importlib.util.find_spec("celery") is not None
        and os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0") != ""
        and os.environ.get("ANYVAR_VCF_ASYNC_WORK_DIR", "") != ""
    )


class ObjectNotFoundError(Exception):
    """The object a request names is not stored."""


class AnyVar:
    """A translator and a storage together (AnyVar's central class)."""

    def __init__(self, /, translator: Translator, object_store: Storage) -> None:
        self.object_store = object_store
        self.translator = translator

    def put_objects(self, variation_objects: list[objects.VrsObject]) -> None:
        self.object_store.add_objects(variation_objects)

    def get_object(
        self, object_id: str, object_type: type[objects.VrsObject] | None = None
    ) -> objects.VrsObject:
        """The stored object; KeyError when there is none."""
        types = [object_type] if object_type else list(objects.vrs_object_class_map.values())
        for kind in types:
            found = list(self.object_store.get_objects(object_type=kind, object_ids=[object_id]))
            if found:
                return found[0]
        raise KeyError(f"Object {object_id} not found")

    def delete_object(self, object_id: str) -> None:
        """Removes the object with its extensions and its mappings in both directions."""
        found = self.get_object_or_none(object_id)
        if found is None:
            raise ObjectNotFoundError(object_id)
        self.object_store.delete_objects(type(found), [object_id])

    def get_object_or_none(self, object_id: str) -> objects.VrsObject | None:
        try:
            return self.get_object(object_id)
        except KeyError:
            return None

    def put_annotation(self, annotation: metadata.Annotation) -> int | None:
        return self.object_store.add_annotation(annotation)

    def get_object_annotations(
        self, object_id: str, annotation_type: str | None = None
    ) -> list[metadata.Annotation]:
        """ObjectNotFoundError when there are none and the object is not stored."""
        found = self.object_store.get_annotations(object_id, annotation_type)
        if not found and self.get_object_or_none(object_id) is None:
            raise ObjectNotFoundError(object_id)
        return found

    def create_timestamp_annotation_if_missing(self, object_id: str) -> int | None:
        kind = metadata.AnnotationType.CREATION_TIMESTAMP.value
        if self.get_object_annotations(object_id, kind):
            return None
        return self.put_annotation(
            metadata.Annotation(
                object_id=object_id,
                annotation_type=kind,
                annotation_value=datetime.datetime.now(tz=datetime.UTC).isoformat(),
            )
        )

    # AnyVar main's names for annotations.
    def put_extension(self, extension: metadata.Extension) -> int | None:
        return self.put_annotation(
            metadata.Annotation(
                object_id=extension.object_id,
                annotation_type=extension.name,
                annotation_value=extension.value,
            )
        )

    def get_object_extensions(
        self, object_id: str, extension_name: str | None = None
    ) -> list[metadata.Extension]:
        return [
            metadata.Extension(
                object_id=a.object_id, name=a.annotation_type, value=a.annotation_value
            )
            for a in self.get_object_annotations(object_id, extension_name)
        ]

    def delete_object_extensions(self, object_id: str, extension_name: str) -> None:
        if self.get_object_or_none(object_id) is None:
            raise ObjectNotFoundError(object_id)
        self.object_store.delete_annotation(
            metadata.Annotation(
                object_id=object_id, annotation_type=extension_name, annotation_value=None
            )
        )

    def put_mapping(self, mapping: metadata.VariationMapping) -> None:
        self.object_store.add_mapping(mapping)

    def get_object_mappings(
        self,
        source_object_id: str,
        mapping_type: metadata.VariationMappingType | None = None,
        as_source: bool = True,
    ) -> Iterable[metadata.VariationMapping]:
        """ObjectNotFoundError when there are none and the object is not stored."""
        found = self.object_store.get_mappings(source_object_id, mapping_type, as_source)
        if not found and self.get_object_or_none(source_object_id) is None:
            raise ObjectNotFoundError(source_object_id)
        return found

    def search(self, refget_accession: str, start: int, stop: int) -> list[models.Allele]:
        return self.object_store.search_alleles(refget_accession, start, stop)
