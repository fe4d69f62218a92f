"""AnyVar's Python modules, used the way AnyVLM's client uses them (create the storage and the
translator, translate and register, get, search, map, annotate), over our registry in SQLite
and PostgreSQL, with vrs-python as the oracle for identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ga4gh.vrs import models
from service import storage, vrs_python_translator

from anyvar import AnyVar, create_storage, create_translator
from anyvar.anyvar import ObjectNotFoundError, has_queueing_enabled
from anyvar.core.metadata import Annotation, VariationMapping, VariationMappingType
from anyvar.core.objects import VrsObject
from anyvar.storage.base import Storage
from anyvar.translate.base import TranslationError, Translator

DEFINITIONS = ["chr1-11-A-G", "chr1-56-GA-CG", "chr1-63-CAGG-CGGG", "chr1-397-C-G"]


@pytest.fixture(params=["sqlite", "postgresql"])
def av(request, tmp_path: Path, vector_seqrepo_uri: str) -> Iterator[AnyVar]:
    with storage(request.param, tmp_path / "db") as uri:
        store = create_storage(uri)
        yield AnyVar(translator=create_translator(vector_seqrepo_uri), object_store=store)
        store.close()


def test_factories_give_anyvars_interfaces(av: AnyVar) -> None:
    assert isinstance(av.object_store, Storage)
    assert isinstance(av.translator, Translator)
    with pytest.raises(ValueError, match="URI scheme snowflake is not implemented"):
        create_storage("snowflake://user@account/db")
    assert create_storage("").get_objects(models.Allele, ["ga4gh:VA.x"]) == []


def test_register_get_search_like_anyvlm(av: AnyVar, vectors: Path) -> None:
    oracle = vrs_python_translator(vectors / "seqrepo" / "2024-01-01")
    variations = [av.translator.translate_variation(d, assembly_name="GRCh38") for d in DEFINITIONS]
    expected = [oracle.translate_from(d, "gnomad") for d in DEFINITIONS]
    assert [v.id for v in variations] == [e.id for e in expected]
    av.put_objects(variations)

    for variation, oracle_allele in zip(variations, expected, strict=True):
        got = av.get_object(variation.id)
        assert isinstance(got, models.Allele)
        assert got.model_dump(exclude_none=True) == oracle_allele.model_dump(exclude_none=True)
        location = av.get_object(variation.location.id, models.SequenceLocation)
        assert location.start == oracle_allele.location.start
    with pytest.raises(KeyError):
        av.get_object("ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")

    accession = variations[0].location.sequenceReference.refgetAccession
    found = av.object_store.search_alleles(accession, 0, 60)
    assert {a.id for a in found} == {variations[0].id, variations[1].id}
    assert av.translator.get_sequence_id("GRCh38:chr1") == f"ga4gh:{accession}"
    with pytest.raises(KeyError):
        av.translator.get_sequence_id("GRCh38:nonsense")
    with pytest.raises(TranslationError):
        av.translator.translate_variation("chr1-11-T-G", assembly_name="GRCh38")


def test_mappings_and_annotations(av: AnyVar) -> None:
    a, b = (av.translator.translate_variation(d) for d in DEFINITIONS[:2])
    av.put_objects([a, b])
    lift = VariationMapping(source_id=a.id, dest_id=b.id, mapping_type="liftover")
    av.put_mapping(lift)
    av.put_mapping(lift)
    assert list(av.get_object_mappings(a.id, VariationMappingType.LIFTOVER)) == [lift]
    assert list(av.get_object_mappings(b.id, VariationMappingType.LIFTOVER)) == []
    with pytest.raises(ValueError, match="source_id cannot equal dest_id"):
        av.put_mapping(VariationMapping(source_id=a.id, dest_id=a.id, mapping_type="liftover"))
    with pytest.raises(ObjectNotFoundError):
        av.get_object_mappings("ga4gh:VA.nope", VariationMappingType.LIFTOVER)

    av.put_annotation(Annotation(object_id=a.id, annotation_type="note", annotation_value=[1, 2]))
    assert av.create_timestamp_annotation_if_missing(a.id) is not None
    assert av.create_timestamp_annotation_if_missing(a.id) is None
    notes = av.get_object_annotations(a.id, "note")
    assert [n.annotation_value for n in notes] == [[1, 2]]
    assert len(av.get_object_annotations(a.id)) == 2

    av.delete_object(a.id)
    with pytest.raises(KeyError):
        av.get_object(a.id)
    assert list(av.get_object_mappings(b.id)) == []
    with pytest.raises(ObjectNotFoundError):
        av.delete_object(a.id)


def test_copy_numbers_and_other_objects_are_stored_as_they_are(av: AnyVar) -> None:
    location = av.translator.translate_variation(DEFINITIONS[0]).location
    count = models.CopyNumberCount(location=location, copies=3)
    from anyvar.core.objects import recursive_identify

    count = recursive_identify(count)
    av.put_objects([count])
    got: VrsObject = av.get_object(count.id)
    assert isinstance(got, models.CopyNumberCount)
    assert got.model_dump(exclude_none=True) == count.model_dump(exclude_none=True)


def test_queueing_is_read_from_the_environment_each_time(monkeypatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("ANYVAR_VCF_ASYNC_WORK_DIR", "/tmp")
    assert has_queueing_enabled()
    monkeypatch.setenv("ANYVAR_VCF_ASYNC_WORK_DIR", "")
    assert not has_queueing_enabled()
