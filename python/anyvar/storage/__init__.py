"""Storage of VRS objects and their metadata (AnyVar's ``anyvar.storage``)."""

from anyvar.storage.base import Storage

# AnyVar's documented default; ours (Settings.storage_uri) is an embedded SQLite file.
DEFAULT_STORAGE_URI = "postgresql://postgres@localhost:5432/anyvar"

__all__ = ["DEFAULT_STORAGE_URI", "Storage"]
