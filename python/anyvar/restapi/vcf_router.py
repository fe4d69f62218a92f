"""AnyVar 1.0.0's module path for the VCF routes."""

from pathlib import Path

from anyvar.restapi.routers.vcf import router as vcf_router


def _working_file_cleanup(path: str | Path) -> None:
    """Removes a run's working file (AnyVar's name; our runs remove their own files)."""
    Path(path).unlink(missing_ok=True)


__all__ = ["_working_file_cleanup", "vcf_router"]
