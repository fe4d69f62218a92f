"""Helpers for the REST service tests: real ``uvicorn`` processes on free ports, real
databases (an embedded SQLite file or a PostgreSQL database of the test's own), SeqRepo
instances with RefSeq names, and vrs-python as the oracle for identifiers."""

from __future__ import annotations

import collections
import contextlib
import itertools
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from helpers import REPO, SEQREPO_CLI, build_seqrepo

from anyvar.processes import Process, clean_env, free_port

PG_ADMIN_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
STORAGE_KINDS = ("sqlite", "postgresql")
TABLES = ("alleles", "locations", "sequence_references")


@dataclass
class Server:
    """A running ``uvicorn anyvar.restapi.main:app`` and an HTTP client for it."""

    url: str
    proc: subprocess.Popen
    log: Path
    tmpdir: Path
    """The server's TMPDIR: where its upload/output temporary files go."""
    storage_uri: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def stop(self) -> None:
        self.client.close()
        Process(self.url, self.proc, self.log).stop(grace=15)

    def leftovers(self) -> list[str]:
        """Temporary files of ours still in the server's TMPDIR."""
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name.startswith("anyvar-"))

    def counts(self) -> dict[str, int]:
        return table_counts(self.storage_uri)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    workdir: Path, env: dict[str, str], timeout: float = 60, gunicorn_workers: int = 0
) -> Server:
    """Starts the app on a free port with exactly ``env`` (plus PATH etc.), the working
    directory ``workdir`` (so no stray ``.env`` is read) and a private TMPDIR; waits until
    ``/service-info`` answers (any status: it may require a token). Retries on another port
    if the chosen one was taken in the meantime. With ``gunicorn_workers``, the app runs under
    gunicorn with that many uvicorn worker processes instead of a single uvicorn."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmpdir = workdir / "tmp"
    tmpdir.mkdir(exist_ok=True)
    for attempt in range(3):
        server = _launch(workdir, tmpdir, env, gunicorn_workers)
        deadline = time.monotonic() + timeout
        while True:
            if server.proc.poll() is not None:
                server.stop()
                log = server.log_text()
                if "address already in use" in log.lower() and attempt < 2:
                    break
                pytest.fail(f"the server exited with {server.proc.returncode}:\n{log}")
            try:
                server.client.get("/service-info", timeout=2)
                return server
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    server.stop()
                    pytest.fail(f"the server did not answer in {timeout}s:\n{server.log_text()}")
                time.sleep(0.1)
    raise AssertionError("unreachable")


def _launch(workdir: Path, tmpdir: Path, env: dict[str, str], gunicorn_workers: int) -> Server:
    port = free_port()
    if gunicorn_workers:
        log = workdir / f"gunicorn-{port}.log"
        command = ["gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", str(gunicorn_workers)]
        command += ["-b", f"127.0.0.1:{port}", "anyvar.restapi.main:app"]
        # Recent gunicorn opens a control socket under $HOME/.gunicorn: keep it in the test's
        # directory, away from the user's and from other tests' servers.
        env = {"HOME": str(workdir), **env}
    else:
        log = workdir / f"uvicorn-{port}.log"
        command = ["uvicorn", "anyvar.restapi.main:app", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
    env = clean_env({"TMPDIR": str(tmpdir), **env})
    proc = Process.start(log.stem, [sys.executable, "-m", *command], workdir, env, log).proc
    return Server(f"http://127.0.0.1:{port}", proc, log, tmpdir, env.get("ANYVAR_STORAGE_URI", ""))


def run_until_exit(workdir: Path, env: dict[str, str], timeout: float = 60):
    """Runs the app expecting it to refuse to start; returns the CompletedProcess (text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "anyvar.restapi.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        cwd=workdir,
        env=clean_env({"TMPDIR": str(workdir), **env}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- storage ----------------------------------------------------------------------------------


def ensure_postgres() -> None:
    """Starts the machine's PostgreSQL (scripts/services.sh) when it is not accepting
    connections; fails the test if it cannot be had."""
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URI, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    subprocess.run(["bash", str(REPO / "scripts" / "services.sh")], check=True, timeout=120)
    psycopg.connect(PG_ADMIN_URI, connect_timeout=10).close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database of our own; dropped afterwards."""
    import psycopg

    ensure_postgres()
    name = f"anyvar_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URI, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URI, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def storage(kind: str, directory: Path) -> Iterator[str]:
    """An ANYVAR_STORAGE_URI naming a fresh, empty database of ``kind``."""
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{directory / 'db.sqlite3'}"
    elif kind == "postgresql":
        with postgres_database() as uri:
            yield uri
    else:
        raise ValueError(kind)


def table_counts(uri: str) -> dict[str, int]:
    """Row counts of the registry's tables, read directly from the database."""
    if uri.startswith("sqlite:///"):
        conn = sqlite3.connect(uri.removeprefix("sqlite:///"))
        try:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(uri) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def allele_ids_on(
    uri: str, accession: str, start: int | None = None, end: int | None = None
) -> set[str]:
    """Ids of the registered alleles located on ``accession`` (``SQ.…``), from the database;
    with ``start`` and ``end``, those whose location overlaps ``[start, end]`` (closed, as
    AnyVar's search)."""
    query = (
        "SELECT a.id FROM alleles a JOIN locations l ON a.location_id = l.id "
        "WHERE l.sequence_reference_id = {0}"
    )
    args: tuple = (accession,)
    if start is not None and end is not None:
        query += " AND l.start_pos <= {0} AND l.end_pos >= {0}"
        args += (end, start)
    if uri.startswith("sqlite:///"):
        conn = sqlite3.connect(uri.removeprefix("sqlite:///"))
        try:
            return {r[0] for r in conn.execute(query.format("?"), args)}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(uri) as conn:
        return {r[0] for r in conn.execute(query.format("%s"), args)}


# --- talking to the service ---------------------------------------------------------------------


def put_vcf(
    server: Server,
    data: bytes | Path,
    filename: str = "input.vcf",
    endpoint: str = "/vcf",
    **params,
) -> httpx.Response:
    if isinstance(data, Path):
        data = data.read_bytes()
    return server.client.put(
        endpoint, params=params, files={"vcf": (filename, data, "application/octet-stream")}
    )


def put_vcfs_at_once(server: Server, data: bytes, params: list[dict]) -> list[httpx.Response]:
    """One ``PUT /vcf`` of ``data`` per entry of ``params``, all sent at once, each on its own
    connection; checks that every one answered 200."""
    responses: dict[int, object] = {}

    def send(i: int) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                responses[i] = client.put(
                    "/vcf", params=params[i], files={"vcf": ("input.vcf", data)}
                )
        except BaseException as e:  # reported by the caller's thread below
            responses[i] = e

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(params))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done: list[httpx.Response] = []
    for i in range(len(params)):
        r = responses.get(i)
        assert isinstance(r, httpx.Response), r
        assert r.status_code == 200, r.text[:500]
        done.append(r)
    return done


def records(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def id_entries(text: str) -> list[str]:
    """Every VRS_Allele_IDs entry of every record, `.` included."""
    out: list[str] = []
    for fields in records(text):
        info = info_of(fields)
        if "VRS_Allele_IDs" in info:
            out.extend(info["VRS_Allele_IDs"].split(","))
    return out


def allele_ids(text: str) -> set[str]:
    return {v for v in id_entries(text) if v.startswith("ga4gh:VA.")}


def alleles_by_chrom(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for fields in records(text):
        ids = info_of(fields).get("VRS_Allele_IDs", "")
        out.setdefault(fields[0], set()).update(
            v for v in ids.split(",") if v.startswith("ga4gh:VA.")
        )
    return out


def get_object(server: Server, object_id: str) -> dict:
    r = server.client.get(f"/object/{object_id}")
    assert r.status_code == 200, (object_id, r.status_code, r.text)
    body = r.json()
    assert body["messages"] == []
    return body["data"]


def all_pages(
    server: Server, accession: str, start: int, end: int, page_size: int
) -> tuple[list[dict], int]:
    """Follows next_page_token to the end; returns the alleles in page order and the number
    of pages."""
    found: list[dict] = []
    token = None
    for pages in itertools.count(1):
        params = {"accession": accession, "start": start, "end": end, "page_size": page_size}
        if token:
            params["page_token"] = token
        r = server.client.get("/variations", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["variations"]) <= page_size
        found.extend(body["variations"])
        token = body["next_page_token"]
        if not token:
            return found, pages
        assert pages < 10_000, "pagination does not end"
    raise AssertionError("unreachable")


def unique_ids(alleles: list[dict]) -> set[str]:
    ids = [a["id"] for a in alleles]
    duplicates = {i for i, n in collections.Counter(ids).items() if n > 1}
    assert not duplicates, f"alleles listed more than once: {sorted(duplicates)[:5]}"
    return set(ids)


# --- sequences and the oracle -----------------------------------------------------------------


def build_seqrepo_with_refseq(fasta: Path, root: Path, refseq: dict[str, str]) -> Path:
    """conftest.build_seqrepo plus the same sequences under namespace NCBI with RefSeq names
    (``refseq`` maps FASTA names to accessions, e.g. ``{"chr1": "NC_000001.11"}``)."""
    instance = build_seqrepo(fasta, root)
    renamed = root / "refseq.fa"
    with fasta.open() as src, renamed.open("w") as dst:
        for line in src:
            if line.startswith(">"):
                name = line[1:].split()[0]
                line = f">{refseq.get(name, name)}\n"
            dst.write(line)
    subprocess.run(
        [SEQREPO_CLI, "-r", root, "load", "-i", instance.name, "-n", "NCBI", renamed],
        check=True,
        capture_output=True,
    )
    return instance


def vrs_python_translator(seqrepo_instance: Path, kind: str = "allele"):
    """vrs-python's AlleleTranslator (``kind="cnv"``: CnvTranslator) over a local SeqRepo. Its
    HGVS tools normally connect to UTA at first use; genomic (g.) HGVS needs only the parser
    and the data proxy, so those are given without the UTA connection."""
    import hgvs.parser
    from ga4gh.vrs.dataproxy import create_dataproxy
    from ga4gh.vrs.extras.translator import AlleleTranslator, CnvTranslator
    from ga4gh.vrs.utils.hgvs_tools import HgvsTools

    proxy = create_dataproxy(f"seqrepo+file://{seqrepo_instance}")
    translator = (CnvTranslator if kind == "cnv" else AlleleTranslator)(proxy)
    tools = HgvsTools.__new__(HgvsTools)
    tools.parser = hgvs.parser.Parser()
    tools.data_proxy = proxy
    tools.uta_conn = None
    translator._lazy_hgvs_tools = tools  # what ga4gh.vrs's lazy_property caches
    return translator


def info_of(fields: list[str]) -> dict[str, str]:
    """INFO of a tab-split VCF data line as a dict (flags map to "")."""
    if fields[7] == ".":
        return {}
    return dict((kv.split("=", 1) + [""])[:2] for kv in fields[7].split(";"))


def read_fasta(path: Path) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = ""
    with path.open() as f:
        for line in f:
            if line.startswith(">"):
                name = line[1:].split()[0]
                seqs[name] = []
            else:
                seqs[name].append(line.strip())
    return {k: "".join(v) for k, v in seqs.items()}
