"""The one annotation-options object and the one settings path, in process: AnyVar's names
converted once, the options object and the library's keywords giving the same file, and the
input limits travelling with each call (two calls in one process with different limits)
rather than set for the whole process."""

from __future__ import annotations

from pathlib import Path

import pytest

import anyvar
from anyvar.annotation import AnnotateOptions, VcfParameters
from anyvar.config import Settings
from anyvar.exceptions import VcfFormatError
from anyvar.registry import Registry


def test_anyvars_names_are_converted_once():
    options = VcfParameters(
        assembly="GRCh37",
        for_ref=False,
        add_vrs_attributes=True,
        require_validation=False,
        output_compression="bgzip",
    ).options(threads=3)
    assert options == AnnotateOptions(
        assembly="GRCh37",
        for_ref=False,
        vrs_attributes=True,
        require_validation=False,
        compression="bgzip",
        tabix=True,
        threads=3,
    )
    assert VcfParameters().options().tabix is False, "a plain result has no index"


@pytest.mark.parametrize(
    ("field", "value"),
    [("compression", "zip"), ("vrs_python_output", "2.1"), ("threads", 0)],
)
def test_a_bad_option_is_refused_when_it_is_made(field, value):
    with pytest.raises(ValueError, match=field):
        AnnotateOptions(**{field: value})


def test_the_options_object_and_the_keywords_write_the_same_file(
    vectors: Path, vector_seqrepo_uri: str, tmp_path: Path
):
    by_object, by_keywords = tmp_path / "object.vcf", tmp_path / "keywords.vcf"
    options = AnnotateOptions(vrs_attributes=True, for_ref=False, threads=2)
    anyvar.annotate_vcf(vectors / "input.vcf", by_object, options, dataproxy_uri=vector_seqrepo_uri)
    anyvar.annotate_vcf(
        vectors / "input.vcf",
        by_keywords,
        dataproxy_uri=vector_seqrepo_uri,
        vrs_attributes=True,
        for_ref=False,
        threads=2,
    )
    assert "VRS_Starts=" in by_object.read_text()
    assert by_object.read_bytes() == by_keywords.read_bytes()


def test_limits_travel_with_each_call(vectors: Path, vector_seqrepo_uri: str, tmp_path: Path):
    """A registry whose settings bound lines at 64 bytes refuses the vectors (their header
    lines are longer); one with the defaults, used next in the same process, does not."""
    tight = Registry.open(
        Settings(seqrepo_dataproxy_uri=vector_seqrepo_uri, storage_uri="", max_line_bytes=64)
    )
    roomy = Registry.open(Settings(seqrepo_dataproxy_uri=vector_seqrepo_uri, storage_uri=""))
    with pytest.raises(VcfFormatError, match="longer than 64 bytes"):
        tight.annotate(vectors / "input.vcf", tmp_path / "tight.vcf", AnnotateOptions())
    summary = roomy.annotate(vectors / "input.vcf", tmp_path / "roomy.vcf", AnnotateOptions())
    assert summary["records"] > 0
    with pytest.raises(VcfFormatError, match="longer than 64 bytes"):
        tight.annotate(vectors / "input.vcf", tmp_path / "again.vcf", AnnotateOptions())
