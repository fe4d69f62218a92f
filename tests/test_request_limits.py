"""The request limits (restapi/limits.py) against a real uvicorn and PostgreSQL: a body, a
batch or a definition over its setting is refused naming the setting, with nothing stored; a
slow client gets 408 and its spooled upload is gone; uploads past the cap wait their turn."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from service import Server, start_server, storage, table_counts

LIMITS = {
    "ANYVAR_MAX_JSON_BODY_BYTES": "20000",
    "ANYVAR_MAX_DEFINITIONS": "5",
    "ANYVAR_MAX_DEFINITION_BYTES": "100",
    "ANYVAR_BODY_READ_TIMEOUT": "1",
    "ANYVAR_MIN_BODY_BYTES_PER_SECOND": "1000",
    "ANYVAR_MAX_UPLOADS_IN_FLIGHT": "1",
}


@pytest.fixture(scope="module")
def server(vector_seqrepo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits")
    with storage("postgresql", tmp / "db") as uri:
        env = {"SEQREPO_DATAPROXY_URI": vector_seqrepo_uri, "ANYVAR_STORAGE_URI": uri, **LIMITS}
        srv = start_server(tmp, env)
        try:
            yield srv
        finally:
            srv.stop()


def test_a_json_body_over_the_limit_is_413_naming_the_setting(server: Server) -> None:
    before = table_counts(server.storage_uri)
    batch = [{"definition": f"1-{100 + i}-A-G"} for i in range(1000)]  # about 30 KB
    r = server.client.put("/variations", json=batch)
    assert r.status_code == 413, r.text
    assert "ANYVAR_MAX_JSON_BODY_BYTES" in r.json()["error"]
    assert r.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    # Without a Content-Length (chunked), found while it arrives.
    big = b"[" + b",".join(b'{"definition": "1-100-A-G"}' for _ in range(1000)) + b"]"
    r = server.client.put("/variations", content=iter([big[:10000], big[10000:]]), headers=JSON)
    assert r.status_code == 413, r.text
    assert table_counts(server.storage_uri) == before
    r = server.client.put("/variations", content=iter([big[:28], b"]"]), headers=JSON)
    assert r.status_code == 200, "a small chunked body still passes"


JSON = {"Content-Type": "application/json"}


def test_too_many_or_too_long_definitions_are_422_naming_the_setting(server: Server) -> None:
    before = table_counts(server.storage_uri)
    six = [{"definition": f"1-{200 + i}-A-G"} for i in range(6)]
    r = server.client.put("/variations", json=six)
    assert r.status_code == 422, r.text
    assert "ANYVAR_MAX_DEFINITIONS" in r.json()["detail"][0]["msg"]
    long = "1-100-A-" + "G" * 200
    for method, path, body, loc in [
        ("PUT", "/variation", {"definition": long}, ["body", "definition"]),
        ("POST", "/variation", {"definition": long}, ["body", "definition"]),
        ("PUT", "/variations", [{"definition": "1-300-A-G"}, {"definition": long}],
         ["body", 1, "definition"]),
    ]:  # fmt: skip
        r = server.client.request(method, path, json=body)
        assert r.status_code == 422, (path, r.text)
        (problem,) = r.json()["detail"]
        assert problem["loc"] == loc and "ANYVAR_MAX_DEFINITION_BYTES" in problem["msg"], problem
    allele = {
        "type": "Allele",
        "location": {
            "type": "SequenceLocation",
            "sequenceReference": {
                "type": "SequenceReference",
                "refgetAccession": "SQ.ss8r_wB0-b9r44TQTMmVTI92884QvBiB",
            },
            "start": 100,
            "end": 101,
        },
        "state": {"type": "LiteralSequenceExpression", "sequence": "A" * 200},
    }
    r = server.client.put("/vrs_variation", json=allele)
    assert r.status_code == 422 and "ANYVAR_MAX_DEFINITION_BYTES" in r.json()["detail"], r.text
    assert table_counts(server.storage_uri) == before


def multipart_head(boundary: str, length: int) -> bytes:
    return (
        f"PUT /vcf HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}"
        f"\r\nContent-Length: {length}\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="vcf"; filename="a.vcf"\r\nContent-Type: text/plain\r\n\r\n'
    ).encode()


def open_upload(server: Server) -> socket.socket:
    """A ``PUT /vcf`` whose headers and first 2 MB have arrived (spooled to a temporary file)
    and that promises 100 MB more."""
    host, port = server.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(multipart_head("b0undary", 102 << 20) + b"##fileformat=VCFv4.2\n" * 100_000)
    return s


def deleted_temp_files(server: Server) -> list[str]:
    """Files the server holds open that were removed (spooled uploads) under its TMPDIR."""
    found = []
    for fd in Path(f"/proc/{server.proc.pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith(str(server.tmpdir)):
            found.append(target)
    return found


def read_response(s: socket.socket, timeout: float) -> tuple[int, bytes]:
    """The status and body of the response on ``s``."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length and (chunk := s.recv(65536)):
        body += chunk
    return int(head.split(b" ", 2)[1]), body


def test_a_slow_upload_is_408_and_its_temporary_file_goes(server: Server) -> None:
    s = open_upload(server)
    try:
        time.sleep(0.5)
        assert deleted_temp_files(server), "the upload is spooled to a file meanwhile"
        started = time.monotonic()
        # Then one byte a second: below ANYVAR_MIN_BODY_BYTES_PER_SECOND.
        for _ in range(4):
            try:
                s.sendall(b"#")
            except OSError:
                break
            time.sleep(1)
        status, data = read_response(s, timeout=10)
        assert status == 408, data
        assert b"ANYVAR_BODY_READ_TIMEOUT" in data
        assert time.monotonic() - started < 10
    finally:
        s.close()
    deadline = time.monotonic() + 5
    while deleted_temp_files(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert deleted_temp_files(server) == []
    assert server.client.get("/service-info").status_code == 200


def test_uploads_past_the_cap_are_503_with_retry_after(server: Server) -> None:
    first = open_upload(server)
    try:
        time.sleep(0.3)
        r = server.client.put("/vcf", files={"vcf": ("b.vcf", b"##fileformat=VCFv4.2\n")})
        assert r.status_code == 503, r.text
        assert r.json()["error_code"] == "TOO_MANY_UPLOADS" and r.headers["Retry-After"]
        assert "ANYVAR_MAX_UPLOADS_IN_FLIGHT" in r.json()["error"]
    finally:
        first.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the first is dropped within the read timeout
        r = server.client.put("/vcf", files={"vcf": ("b.vcf", b"##fileformat=VCFv4.2\n")})
        if r.status_code != 503:
            break
        time.sleep(0.2)
    assert r.status_code != 503, "the slot is freed"


def test_an_upload_under_another_field_name_is_told_where_the_vcf_goes(server: Server) -> None:
    """Starlette's words for a large non-file part alone (``Part exceeded maximum size``)
    did not say that the VCF was sent under the wrong name."""
    r = server.client.put("/vcf", files={"file": (None, b"#" * (2 << 20))})
    assert r.status_code == 400, r.text
    assert "multipart file field `vcf`" in r.json()["detail"], r.text
