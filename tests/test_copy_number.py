"""Copy numbers (VRS CopyNumberCount ``ga4gh:CN.`` and CopyNumberChange ``ga4gh:CX.``)
against vrs-python, the oracle: translation of HGVS ``del``/``dup`` definitions (vrs-python's
``CnvTranslator``, as AnyVar calls it for ``PUT /variation``), and identification of copy
numbers given as VRS JSON (``PUT /vrs_variation``), ranged locations included. Ids and the
JSON must be vrs-python's, byte for byte."""

from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path

import pytest
from helpers import fetch_sdist
from service import build_seqrepo_with_refseq, vrs_python_translator

from anyvar import _core
from anyvar.exceptions import TranslationError
from anyvar.synthetic import make_reference, write_fasta

LENGTHS = {"chr1": 30_000, "chr2": 8_000}
# chr2 is also named NC_000013.11 so that AnyVar's copy-number fixtures (on GRCh38 chr13)
# translate here too, on another sequence.
REFSEQ = {"chr1": "NC_000001.11", "chr2": "NC_000013.11"}


@pytest.fixture(scope="module")
def seqrepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("copy-number")
    fasta = write_fasta(make_reference(LENGTHS, seed=11), root / "ref.fa")
    return build_seqrepo_with_refseq(fasta, root / "seqrepo", REFSEQ)


@pytest.fixture(scope="module")
def source(seqrepo: Path) -> _core.SequenceSource:
    return _core.SequenceSource(f"seqrepo+file://{seqrepo}")


@pytest.fixture(scope="module")
def accessions(source: _core.SequenceSource) -> dict[str, str]:
    found = {name: source.resolve(f"GRCh38:{name}") for name in LENGTHS}
    return {name: hit[0] for name, hit in found.items() if hit}


@pytest.fixture(scope="module")
def oracle(seqrepo: Path):
    """vrs-python's CnvTranslator over the same SeqRepo."""
    return vrs_python_translator(seqrepo, "cnv")


def vrs_python_object(obj: dict) -> tuple[str, str]:
    """(id, JSON) of a copy number given as VRS JSON, identified by vrs-python as AnyVar's
    ``recursive_identify`` does it: the location gets its id too."""
    from ga4gh.core import ga4gh_identify
    from ga4gh.vrs import models

    model = getattr(models, obj["type"])(**obj)
    model.id = ga4gh_identify(model)
    model.location.id = ga4gh_identify(model.location)
    return model.id, model.model_dump_json(exclude_none=True)


def translate_both(oracle, source, definition: str, input_type: str, copies, copy_change):
    """Ours and vrs-python's (id, JSON), with the keyword arguments AnyVar passes."""
    ours = _core.translate_copy_number(
        source, definition, input_type, copies=copies, copy_change=copy_change
    )
    theirs = oracle.translate_from(
        definition,
        fmt=None,
        definition=definition,
        input_type=input_type,
        copies=copies,
        copy_change=copy_change,
        assembly_name="GRCh38",
    )
    return (ours.id, ours.json()), (theirs.id, theirs.model_dump_json(exclude_none=True))


# --- translation -----------------------------------------------------------------------------


def random_definitions(rng: random.Random, n: int) -> list[tuple[str, str, int | None, str | None]]:
    cases = []
    for i in range(n):
        name = rng.choice(list(REFSEQ))
        ac = REFSEQ[name]
        length = LENGTHS[name]
        first = rng.randint(1, length)
        last = first if rng.random() < 0.2 else rng.randint(first, min(length, first + 5000))
        positions = f"{first}" if first == last else f"{first}_{last}"
        edit = rng.choice(["del", "dup"])
        tail = ""
        if rng.random() < 0.3:
            tail = "".join(rng.choices("ACGTN", k=rng.randint(1, 6)))
        elif edit == "del" and rng.random() < 0.2:
            tail = str(last - first + 1)
        kind = rng.choice(["g", "g", "g", "m", "n"])
        gene = "(GENE1)" if rng.random() < 0.1 else ""
        definition = f"{ac}{gene}:{kind}.{positions}{edit}{tail}"
        input_type = "CopyNumberCount" if i % 2 else "CopyNumberChange"
        copies = rng.choice([None, 0, 1, 2, 3, 4, rng.randint(5, 1000), -1])
        copy_change = rng.choice([None, *_core.COPY_CHANGES])
        if input_type == "CopyNumberCount" and rng.random() < 0.8:
            copy_change = None
        elif input_type == "CopyNumberChange" and rng.random() < 0.8:
            copies = None
        cases.append((definition, input_type, copies, copy_change))
    return cases


def test_translation_matches_vrs_python(oracle, source):
    cases = random_definitions(random.Random(20261207), 400)
    # Every copy_change value, with and without copies, and the defaults for del and dup.
    for change in [None, *_core.COPY_CHANGES]:
        for copies in (None, 2):
            for edit in ("del", "dup"):
                cases.append((f"NC_000001.11:g.100_2000{edit}", "CopyNumberChange", copies, change))
    kinds = set()
    for definition, input_type, copies, copy_change in cases:
        ours, theirs = translate_both(oracle, source, definition, input_type, copies, copy_change)
        assert ours == theirs, (definition, input_type, copies, copy_change)
        kinds.add(ours[0][:9])
    assert kinds == {"ga4gh:CN.", "ga4gh:CX."}


def test_kind_follows_copies_as_in_anyvar(oracle, source):
    """AnyVar hands both input types to one CnvTranslator: copies make a count, no copies a
    change (loss for a deletion, gain for a duplication), whatever input_type said."""
    d = "NC_000001.11:g.501_900del"
    cn = _core.translate_copy_number(source, d, "CopyNumberCount")
    assert (cn.kind, cn.copy_change, cn.copies) == ("CopyNumberChange", "loss", None)
    cn = _core.translate_copy_number(source, d.replace("del", "dup"), "CopyNumberCount")
    assert (cn.kind, cn.copy_change) == ("CopyNumberChange", "gain")
    cn = _core.translate_copy_number(source, d, "CopyNumberChange", copies=3, copy_change="gain")
    assert (cn.kind, cn.copies, cn.copy_change) == ("CopyNumberCount", 3, None)
    assert (cn.start, cn.end) == (500, 900)
    assert cn.accession == source.resolve("GRCh38:chr1")[0]
    assert cn.id.startswith("ga4gh:CN.") and cn.location_id.startswith("ga4gh:SL.")
    for copies, change in [(None, None), (3, "gain"), (None, "low-level loss")]:
        ours, theirs = translate_both(oracle, source, d, "CopyNumberCount", copies, change)
        assert ours == theirs


def test_definitions_neither_translates(oracle, source):
    """What vrs-python's CnvTranslator refuses, we refuse (TranslationError, a ValueError;
    AnyVar answers 422 'Unable to translate ...' for these)."""
    refused = [
        "1-100-A-T",  # gnomAD-style: the CNV translator reads HGVS only
        "NC_000001.11:100:A:T",  # SPDI
        "NC_000001.11:g.100_200delinsA",  # not a del or dup
        "NC_000001.11:g.100A>T",
        "NC_000001.11:g.100_200inv",
        "NC_000001.11:g.0del",  # position 0: start -1
        "NC_000077.1:g.100del",  # not in the sequence source
    ]
    for definition in refused:
        with pytest.raises(TranslationError):
            _core.translate_copy_number(source, definition, "CopyNumberChange")
        with pytest.raises(ValueError):
            oracle.translate_from(definition, fmt=None, copies=None, copy_change=None)
    with pytest.raises(TranslationError, match="Must provide a 'del' or 'dup'"):
        _core.translate_copy_number(source, refused[2], "CopyNumberCount", copies=1)
    with pytest.raises(ValueError, match="Must provide a 'del' or 'dup'"):
        oracle.translate_from(refused[2], fmt=None, copies=1)


def test_invalid_copy_change_and_input_type(source):
    from ga4gh.vrs import models
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError) as pydantic_error:
        TypeAdapter(models.CopyChange).validate_python("EFO:0030067")
    expected = pydantic_error.value.errors()[0]["msg"]
    for bad in ("EFO:0030067", "Loss", "amplification", ""):
        with pytest.raises(ValueError) as e:
            _core.translate_copy_number(
                source, "NC_000001.11:g.5_10del", "CopyNumberChange", copy_change=bad
            )
        assert str(e.value) == expected
        assert not isinstance(e.value, TranslationError)
    assert _core.COPY_CHANGES == tuple(c.value for c in models.CopyChange)
    with pytest.raises(ValueError, match="input_type"):
        _core.translate_copy_number(source, "NC_000001.11:g.5_10del", "Allele")


def test_where_we_deliberately_differ(oracle, source):
    """vrs-python registers a location whose end is before its start; we refuse it. We take a
    refget accession as the sequence, which its HGVS parser does not."""
    backwards = "NC_000001.11:g.900_500del"
    assert oracle.translate_from(backwards, fmt=None, copies=1).location.end == 500
    with pytest.raises(TranslationError, match="ascending"):
        _core.translate_copy_number(source, backwards, "CopyNumberCount", copies=1)
    sq = source.resolve("GRCh38:chr1")[0]
    by_sq = _core.translate_copy_number(source, f"{sq}:g.501_900del", "CopyNumberChange")
    by_refseq = _core.translate_copy_number(source, "NC_000001.11:g.501_900del", "CopyNumberChange")
    assert by_sq.json() == by_refseq.json()


# --- VRS JSON ------------------------------------------------------------------------------


def random_bound(rng: random.Random, low: int, high: int, ranged: float) -> int | list:
    if rng.random() >= ranged:
        return rng.randint(low, high)
    a, b = sorted(rng.randint(low, high) for _ in range(2))
    return rng.choice([[None, b], [a, None], [a, b], [a, a]])


def random_objects(rng: random.Random, accessions: list[str], n: int) -> list[dict]:
    objects = []
    for i in range(n):
        location: dict = {
            "sequenceReference": {
                "type": "SequenceReference",
                "refgetAccession": rng.choice(accessions),
            },
        }
        if rng.random() < 0.7:
            location["type"] = "SequenceLocation"
        for key in ("start", "end"):
            if rng.random() < 0.95:
                location[key] = random_bound(rng, 0, 250_000_000, 0.5)
        obj: dict = {"location": location}
        if i % 2:
            obj["type"] = "CopyNumberCount"
            obj["copies"] = random_bound(rng, -2, 12, 0.3)
        else:
            obj["type"] = "CopyNumberChange"
            obj["copyChange"] = _core.COPY_CHANGES[(i // 2) % len(_core.COPY_CHANGES)]
        # pydantic's lax integers: "2" and 2.0 are 2
        if rng.random() < 0.05 and isinstance(obj.get("copies"), int):
            obj["copies"] = str(obj["copies"])
        if rng.random() < 0.05 and isinstance(location.get("end"), int):
            location["end"] = float(location["end"])
        items = list(obj.items())
        rng.shuffle(items)  # key order is not significant
        objects.append(dict(items))
    return objects


def test_vrs_json_matches_vrs_python(accessions):
    rng = random.Random(7)
    objects = random_objects(rng, list(accessions.values()) + ["SQ." + "x" * 32], 600)
    for obj in objects:
        cn = _core.CopyNumber.from_json(json.dumps(obj))
        expected_id, expected_json = vrs_python_object(json.loads(json.dumps(obj)))
        assert (cn.id, cn.json()) == (expected_id, expected_json), obj
        assert cn.kind == obj["type"]
        loc = obj["location"]
        expected = json.loads(expected_json)
        as_bound = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
        assert (cn.start, cn.end) == tuple(
            as_bound(expected["location"].get(k)) for k in ("start", "end")
        )
        assert cn.accession == loc["sequenceReference"]["refgetAccession"]
        assert cn.copies == as_bound(expected.get("copies"))
        assert cn.copy_change == obj.get("copyChange")
        assert cn.location_id == expected["location"]["id"]
        assert cn.id == f"ga4gh:{cn.id[6:8]}.{cn.digest}"
        assert json.loads(cn.location_json()) == expected["location"]
        # What we emit reads back as the same copy number, here and in vrs-python.
        again = _core.CopyNumber.from_json(cn.json())
        assert again.json() == cn.json()
        assert vrs_python_object(json.loads(cn.json()))[0] == cn.id


LAX = [True, False, " 2 ", "+3", "-0", "07", "1_000", "2.00", "2.", "1e3", "2.5", "0x10", "1__0"]
LAX += ["", "-4", 2.0, -0.0, 2.5, 1.5e15, [True, "3"], ["1_0", None], [None, 2.0], None, {}]


def test_lax_integers_as_pydantic_reads_them(accessions):
    """pydantic (lax mode) reads "2", 2.0 and True as integers: vrs-python accepts such a
    copy number and so do we, with the same id; what it refuses we refuse."""
    from pydantic import ValidationError

    acc = next(iter(accessions.values()))
    for value in LAX:
        for field in ("copies", "start", "end"):
            loc = {"sequenceReference": {"refgetAccession": acc}, "start": 3, "end": 9}
            obj = {"type": "CopyNumberCount", "location": loc, "copies": 2}
            (loc if field != "copies" else obj)[field] = value
            try:
                expected = vrs_python_object(json.loads(json.dumps(obj)))
            except ValidationError:
                with pytest.raises(TranslationError):
                    _core.CopyNumber.from_json(json.dumps(obj))
                continue
            cn = _core.CopyNumber.from_json(json.dumps(obj))
            assert (cn.id, cn.json()) == expected, (field, value)


def test_given_identifiers_are_recomputed(accessions):
    obj = random_objects(random.Random(3), list(accessions.values()), 1)[0]
    truth = _core.CopyNumber.from_json(json.dumps(obj))
    obj["id"] = "ga4gh:CX.wrongwrongwrongwrongwrongwrong"
    obj["digest"] = "wrongwrongwrongwrongwrongwrong12"
    obj["location"]["digest"] = "wrongwrongwrongwrongwrongwrong12"
    assert _core.CopyNumber.from_json(json.dumps(obj)).json() == truth.json()


def test_invalid_vrs_json_says_what_pydantic_says(accessions):
    from ga4gh.vrs import models
    from pydantic import ValidationError

    acc = next(iter(accessions.values()))
    loc = {"sequenceReference": {"refgetAccession": acc}, "start": 1, "end": 9}
    cases = [
        {"type": "CopyNumberCount", "location": loc},
        {"type": "CopyNumberChange", "location": loc},
        {"type": "CopyNumberChange", "location": loc, "copyChange": "EFO:0030067"},
        {"type": "CopyNumberCount", "location": loc, "copies": [None, None]},
        {"type": "CopyNumberCount", "location": loc, "copies": [3, 2]},
        {"type": "CopyNumberCount", "location": dict(loc, start=-1), "copies": 1},
        {"type": "CopyNumberCount", "location": dict(loc, end=[9, 4]), "copies": 1},
    ]
    for obj in cases:
        with pytest.raises(ValidationError) as theirs:
            getattr(models, obj["type"])(**obj)
        messages = {e["msg"].removeprefix("Value error, ") for e in theirs.value.errors()}
        with pytest.raises(TranslationError) as ours:
            _core.CopyNumber.from_json(json.dumps(obj))
        field, _, message = str(ours.value).partition(": ")
        assert message in messages, (obj, str(ours.value), messages)
    for text in ("{", '{"type": "Allele"}', '{"type": "CopyNumberCount", "copies": 1}'):
        with pytest.raises(TranslationError):
            _core.CopyNumber.from_json(text)


def test_anyvar_fixture_copy_numbers(oracle, source):
    """AnyVar 1.0.0's ``copy_numbers`` fixtures. Where a fixture's variation carries its
    digest (vrs-python made it) our id is the fixture's key; the one without (a liftover
    counterpart keyed by a hand-set id) gets the id vrs-python computes for its content.
    Definitions (``register_params``) are on GRCh38 chr13, which is not here: they are
    translated on the synthetic sequence named NC_000013.11, then moved to chr13's
    accession."""
    with tarfile.open(fetch_sdist()) as tar:
        data = tar.extractfile("anyvar-1.0.0/tests/data/variations.json")
        fixtures = json.load(data)["copy_numbers"]
    assert fixtures
    ours_for_chr13 = source.resolve("GRCh38:chr2")[0]
    for key, fixture in fixtures.items():
        variation = fixture["variation"]
        cn = _core.CopyNumber.from_json(json.dumps(variation))
        content = {k: v for k, v in variation.items() if k not in ("id", "digest")}
        content["location"] = {
            k: v for k, v in variation["location"].items() if k not in ("id", "digest")
        }
        assert (cn.id, cn.json()) == vrs_python_object(content)
        if "digest" in variation:
            assert cn.id == key
            assert json.loads(cn.json()) == {
                **variation,
                "location": {**variation["location"], "type": "SequenceLocation"},
            }
        params = fixture.get("register_params")
        if params:
            translated = _core.translate_copy_number(
                source,
                params["definition"],
                params["input_type"],
                copies=params.get("copies"),
                copy_change=params.get("copy_change"),
            )
            assert translated.accession == ours_for_chr13
            fixture_accession = variation["location"]["sequenceReference"]["refgetAccession"]
            moved = _core.CopyNumber.from_json(
                translated.json().replace(ours_for_chr13, fixture_accession)
            )
            assert moved.id == key
            assert (moved.start, moved.end) == (
                variation["location"]["start"],
                variation["location"]["end"],
            )
