"""The registry component: a sequence source plus storage, shared by the REST API and the
Celery tasks. Every operation is one call into the Rust core."""

from __future__ import annotations

import datetime
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyvar import _core
from anyvar.annotation import AnnotateOptions, AnnotationSummary, ProgressCallback, annotate_vcf
from anyvar.config import Settings
from anyvar.core.metadata import AnnotationType, VariationMappingType
from anyvar.exceptions import TranslationError
from anyvar.mapping.liftover import ChainFileError, LiftoverError, get_liftover
from anyvar.restapi.schema import VariationRequest
from anyvar.sequence import open_sequence_source
from anyvar.translate.base import anyvar_message

if TYPE_CHECKING:
    from anyvar.anyvar import AnyVar

log = logging.getLogger(__name__)

CREATION_TIMESTAMP = AnnotationType.CREATION_TIMESTAMP.value
LIFTOVER = VariationMappingType.LIFTOVER.value


@dataclass
class Registry:
    source: _core.SequenceSource
    storage: _core.Storage | None
    settings: Settings
    """The service's settings: what a call leaves unset comes from here, never from the
    environment read again (``create_app(Settings(...))`` holds everywhere)."""
    finishing: set[threading.Thread] = field(default_factory=set, repr=False)
    """Registrations still being stored after their response was sent (``allow_async_write``)."""

    @classmethod
    def open(cls, settings: Settings) -> Registry:
        """Opens the configured sequence source and storage; raises with a clear message."""
        source = open_sequence_source(settings.seqrepo_dataproxy_uri)
        storage = _core.Storage(settings.storage_uri) if settings.storage_uri else None
        return cls(source, storage, settings)

    @classmethod
    def of(cls, av: AnyVar, settings: Settings) -> Registry:
        """The registry over an ``AnyVar``'s storage and sequence source (the REST app's)."""
        storage = getattr(av.object_store, "core", None)
        return cls(av.translator.source, storage, settings)

    def annotate(
        self,
        input_path: Path,
        output_path: Path,
        options: AnnotateOptions,
        *,
        allow_async_write: bool = False,
        progress: ProgressCallback | None = None,
        storing: Callable[[int, int], None] | None = None,
    ) -> AnnotationSummary:
        """Annotates and registers every computed allele. With ``allow_async_write`` the
        registration finishes in the background after this returns (errors are logged).
        Else ``storing``, if given, is called when the annotation is done and then a few times
        a second with (rows stored, rows to store) until the alleles are durable; an exception
        it raises is re-raised here once the registration has finished."""
        summary = annotate_vcf(
            input_path,
            output_path,
            options.resolved(self.settings),
            dataproxy_uri=self.source.uri,
            progress=progress,
            storage=self.storage,
            wait_for_storage=False,
        )
        pending = summary.pop("pending", None)  # type: ignore[misc]
        if pending is None:  # no storage
            return summary
        if allow_async_write:
            # Not a daemon: an exiting interpreter waits for it instead of dropping the alleles.
            thread = threading.Thread(
                target=self._finish_registration, args=(pending,), name="anyvar-register"
            )
            self.finishing.add(thread)
            thread.start()
        else:
            if storing is not None:
                storing(0, 0)
            summary["stored"] = pending.wait(storing)
        return summary

    def _finish_registration(self, pending: _core.PendingRegistration) -> None:
        try:
            stored = pending.wait()
            log.info("background registration stored %d alleles", stored)
        except Exception:
            log.exception("background registration failed")
        finally:
            self.finishing.discard(threading.current_thread())

    def wait_for_background(self) -> None:
        """Blocks until every registration still being stored in the background is stored
        (at shutdown: a server stopped right after answering loses nothing)."""
        threads = list(self.finishing)
        if threads:
            log.warning("waiting for %d background registration(s) to finish", len(threads))
        for thread in threads:
            thread.join()

    def ingest(
        self,
        input_path: Path,
        *,
        assembly: str,
        conflicts: Path | None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, int]:
        """Registers the alleles of an already annotated VCF; with ``conflicts``, writes there
        the CSV of ids that differ from a fresh annotation. ``progress(records)`` is called
        every few thousand records; an exception it raises stops the ingestion."""
        return _core.ingest_annotated_vcf(
            self.source,
            str(input_path),
            AnnotateOptions(assembly=assembly).resolved(self.settings),
            storage=self.storage,
            conflicts=str(conflicts) if conflicts else None,
            progress=progress,
        )

    def register(
        self, variations: list[_core.Allele | _core.CopyNumber]
    ) -> tuple[int, dict[str, str]]:
        """Registers variations as AnyVar's ``PUT /variation(s)`` does, in one call into the
        core: alleles in their tables, other variations as VRS objects, each stamped with
        AnyVar's ``creation_timestamp`` annotation unless it has one, and (with liftover on)
        each lifted to the other assembly and registered there with a ``liftover`` mapping
        each way. Returns how many alleles were new to the database, and by variation id
        AnyVar's text for each that could not be lifted."""
        if not variations or self.storage is None:
            return 0, {}
        lifted, failed = self._lift_over(variations)
        stored = variations + [b for _, b in lifted]
        now = json.dumps(datetime.datetime.now(tz=datetime.UTC).isoformat())
        new = self.storage.register(
            [v for v in stored if isinstance(v, _core.Allele)],
            [(v.id, v.json()) for v in stored if not isinstance(v, _core.Allele)],
            (CREATION_TIMESTAMP, now, [v.id for v in variations]),
            [m for a, b in lifted for m in ((a.id, b.id, LIFTOVER), (b.id, a.id, LIFTOVER))],
        )
        return new, failed

    def _lift_over(
        self, variations: list[_core.Allele | _core.CopyNumber]
    ) -> tuple[list[tuple[Any, Any]], dict[str, str]]:
        """AnyVar's liftover on registration: (variation, lifted) pairs, and by variation id
        AnyVar's text for each that could not be lifted."""
        if self.settings.liftover_chain_dir is None:
            return [], {}
        try:
            liftover = get_liftover(self.settings.liftover_chain_dir)
        except ChainFileError as e:
            log.error("no liftover: %s", e)
            return [], {v.id: f"{LiftoverError.base_error_message}: {e}" for v in variations}
        failed: dict[str, str] = {}
        pairs: list[tuple[Any, Any]] = []
        # Alleles (a batch's many) in one parallel call into the core; copy numbers one by one.
        alleles = [v for v in variations if isinstance(v, _core.Allele)]
        for allele, lifted in zip(alleles, liftover.lift_many(self.source, alleles), strict=True):
            if isinstance(lifted, str):
                failed[allele.id] = lifted
            else:
                pairs.append((allele, lifted))
        for cn in (v for v in variations if not isinstance(v, _core.Allele)):
            try:
                pairs.append((cn, liftover.lift_copy_number(self.source, cn)))
            except LiftoverError as e:
                failed[cn.id] = str(e)
        return pairs, failed


COPY_NUMBER_TYPES = ("CopyNumberCount", "CopyNumberChange")


def translate(
    source: _core.SequenceSource, request: VariationRequest
) -> _core.Allele | _core.CopyNumber:
    """The variation a request defines, as AnyVar's translator finds it: an Allele, a copy
    number (``input_type`` CopyNumberCount or CopyNumberChange), or with no ``input_type`` an
    Allele else a copy number. TranslationError says why there is none."""
    if request.input_type in COPY_NUMBER_TYPES:
        return _copy_number(source, request, request.input_type)
    try:
        return source.translate(request.definition, request.assembly_name or "GRCh38")
    except TranslationError as as_allele:
        return _unless_allele(source, request, as_allele)


def _copy_number(
    source: _core.SequenceSource, request: VariationRequest, copy_type: str
) -> _core.CopyNumber:
    return _core.translate_copy_number(
        source,
        request.definition,
        copy_type,
        copies=request.copies,
        copy_change=request.copy_change,
    )


def _unless_allele(
    source: _core.SequenceSource, request: VariationRequest, as_allele: TranslationError
) -> _core.CopyNumber:
    """What a definition that is no allele may still be: with no ``input_type``, a copy
    number; else ``as_allele`` is raised (why it is no allele says more, a reference
    mismatch…)."""
    if request.input_type is not None:
        raise as_allele
    try:
        copy_type = "CopyNumberChange" if request.copies is None else "CopyNumberCount"
        return _copy_number(source, request, copy_type)
    except TranslationError:
        raise as_allele from None


def translate_all(
    source: _core.SequenceSource, requests: list[VariationRequest]
) -> list[_core.Allele | _core.CopyNumber | TranslationError]:
    """``translate`` of each request, in order (the error where there is none): the alleles
    of each assembly in one parallel call into the core, the rest one by one."""
    found: list[Any] = [None] * len(requests)
    alleles: dict[str, list[int]] = {}
    for i, request in enumerate(requests):
        if request.input_type in (None, "Allele"):
            alleles.setdefault(request.assembly_name or "GRCh38", []).append(i)
    for assembly, positions in alleles.items():
        definitions = [requests[i].definition for i in positions]
        for i, allele in zip(positions, source.translate_many(definitions, assembly), strict=True):
            if isinstance(allele, str):  # no allele, and why: a copy number, perhaps
                try:
                    allele = _unless_allele(source, requests[i], TranslationError(allele))
                except TranslationError as e:
                    allele = _untraced(e)
            found[i] = allele
    for i, request in enumerate(requests):
        if found[i] is None:
            try:
                found[i] = translate(source, request)
            except TranslationError as e:
                found[i] = _untraced(e)
    return found


def _untraced(error: TranslationError) -> TranslationError:
    """``error`` kept as an answer without the frames it was raised through: they hold the
    whole batch, which a reference cycle would then keep until Python's full collection (under
    load, gen2 collections of 30,000 objects that held the event loop 100-250 ms)."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


@functools.lru_cache(maxsize=64)
def _messages(text: str) -> str:
    """``messages`` holding one text, as JSON: a batch's liftover failures share a few texts,
    and encoding each answer's anew was a tenth of a batch's time."""
    return json.dumps([text])


def register_variations(
    registry: Registry, requests: list[VariationRequest]
) -> tuple[list[str], dict[str, int]]:
    """AnyVar's ``PUT /variation(s)``: each definition translated, every variation registered
    in one bulk write; the answers in input order, each as JSON text, with AnyVar's texts in
    ``messages`` for those that fail (AnyVar leaves out ``object`` and ``object_id`` then).
    Also the figures of the batch for the metrics: ``records`` (definitions), ``alleles``
    (variations found) and ``stored`` (alleles new to the database)."""
    found = translate_all(registry.source, requests)
    variations = [v for v in found if not isinstance(v, TranslationError)]
    failed = len(found) - len(variations)
    if failed:
        log.info("%d of %d definitions not translated", failed, len(found))
    new, not_lifted = registry.register(variations)
    answers = []
    for request, variation in zip(requests, found, strict=True):
        given = request.model_dump_json(exclude_none=True)
        if isinstance(variation, TranslationError):
            log.debug("definition %r not translated: %s", request.definition, variation)
            messages = json.dumps([anyvar_message(request.definition, str(variation))])
            answers.append(f'{{"input_variation":{given},"messages":{messages}}}')
            continue
        messages = _messages(not_lifted[variation.id]) if variation.id in not_lifted else "[]"
        # The core's JSON spliced in as it is (ids are plain ASCII): decoding it only to
        # encode it again was a third of a batch's time.
        answers.append(
            f'{{"input_variation":{given},"messages":{messages},'
            f'"object":{variation.json()},"object_id":"{variation.id}"}}'
        )
    return answers, {"records": len(requests), "alleles": len(variations), "stored": new}
