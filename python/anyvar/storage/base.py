"""AnyVar's storage interface (``anyvar.storage.base``) and its errors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ga4gh.vrs import models

from anyvar.core import metadata, objects
from anyvar.exceptions import StorageError as _OurStorageError


class StorageError(_OurStorageError):
    """A storage operation failed."""


class DataIntegrityError(StorageError):
    """The operation would break a reference between stored objects."""


class MissingVariationReferenceError(StorageError):
    """A mapping or annotation names an object that is not stored."""


class IncompleteVrsObjectError(StorageError):
    """An object lacks required properties or ids."""


class InvalidSearchParamsError(StorageError):
    """Search coordinates out of order or negative."""


class Storage(ABC):
    """What AnyVar's code (and its users' code) calls on a storage backend."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def wait_for_writes(self) -> None: ...

    @abstractmethod
    def wipe_db(self) -> None: ...

    @abstractmethod
    def add_objects(self, objects: Iterable[objects.VrsObject]) -> None:
        """Stores objects; one whose id is stored already is skipped."""

    @abstractmethod
    def get_objects(
        self, object_type: type[objects.VrsObject], object_ids: Iterable[str]
    ) -> Iterable[objects.VrsObject]:
        """The stored objects of this type among the ids (unknown ids are skipped)."""

    @abstractmethod
    def delete_objects(
        self, object_type: type[objects.VrsObject], object_ids: Iterable[str]
    ) -> None: ...

    @abstractmethod
    def add_mapping(self, mapping: metadata.VariationMapping) -> None:
        """Stores a mapping (once); MissingVariationReferenceError when an end is unknown."""

    @abstractmethod
    def delete_mapping(self, mapping: metadata.VariationMapping) -> None: ...

    @abstractmethod
    def get_mappings(
        self,
        source_object_id: str,
        mapping_type: metadata.VariationMappingType | None = None,
    ) -> Iterable[metadata.VariationMapping]: ...

    @abstractmethod
    def add_annotation(self, annotation: metadata.Annotation) -> int: ...

    @abstractmethod
    def get_annotations(
        self, object_id: str, annotation_type: str | None = None
    ) -> list[metadata.Annotation]: ...

    @abstractmethod
    def delete_annotation(self, annotation: metadata.Annotation) -> None: ...

    @abstractmethod
    def search_alleles(self, refget_accession: str, start: int, stop: int) -> list[models.Allele]:
        """Alleles on ``refget_accession`` (``SQ.…``) overlapping ``[start, stop]``."""
