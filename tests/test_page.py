"""The web page at / and the offline API docs, in headless Debian chromium driven by
Playwright, against a real uvicorn API, Celery worker and Redis (tests/async_service.py).
Every request that is not to the test server is aborted: the pages must work offline."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from async_service import (
    AsyncData,
    Stack,
    allele_ids,
    library_annotation,
    make_async_data,
    redis_client,
    start_stack,
)
from playwright.sync_api import sync_playwright  # the test extra: a failure, never a skip

CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/setup.sh); never `playwright install`


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> AsyncData:
    return make_async_data(tmp_path_factory.mktemp("page-data"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data: AsyncData) -> Iterator[Stack]:
    redis_client()  # starts the machine's Redis when it is not running
    root = tmp_path_factory.mktemp("page-stack")
    s = start_stack(root, "anyvar-page", data.source_uri, f"sqlite:///{root / 'db.sqlite3'}")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, stack: Stack):
    """A page that can reach only the test server; what else it asked for is recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    blocked: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(stack.api.url + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    p = context.new_page()
    p.blocked = blocked
    yield p
    context.close()


def test_docs_render_offline(page, stack: Stack, tmp_path: Path) -> None:
    page.goto(stack.api.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    page.screenshot(path=tmp_path / "docs.png", full_page=False)
    assert page.locator(".swagger-ui").count() == 1
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/vcf" in [p.replace("\u200b", "") for p in paths]
    assert page.locator(".opblock-put").count() >= 1
    assert page.blocked == []
    page.goto(stack.api.url + "/redoc")
    page.get_by_role("heading", name="Annotate Vcf").first.wait_for(timeout=30_000)
    # ReDoc's bundle hard-codes its "API docs by Redocly" logo; offline only that image is
    # missing (when it was asked for yet).
    assert set(page.blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def submit(page, vcf: Path, run_async: bool = True, run_id: str | None = None) -> None:
    page.set_input_files("#vcf-file", str(vcf))
    page.set_checked("#run-async", run_async)
    page.fill("#run-id", run_id or "")
    page.click("#submit-vcf")


def test_vcf_run_download_matches_library(page, stack: Stack, data: AsyncData, tmp_path) -> None:
    vcf = data.slow_vcf("page-small.vcf", 0, synthetic=300, seed=4)
    expected = allele_ids(library_annotation(vcf, tmp_path / "lib.vcf", data.source_uri))
    assert sum(map(bool, expected)) > 100  # most records have alleles
    page.goto(stack.api.url + "/")
    submit(page, vcf, run_id="page-run-1")
    page.wait_for_selector("#download:not([hidden])", timeout=60_000)
    assert page.inner_text("#run-run-id") == "page-run-1"
    assert page.inner_text("#run-state") == "succeeded"
    assert page.eval_on_selector("#run-progress", "e => e.value") == 100
    with page.expect_download() as info:
        page.click("#download-link")
    got = Path(info.value.path()).read_text()
    assert allele_ids(got) == expected
    assert page.locator("#error").is_hidden()
    page.screenshot(path=tmp_path / "page.png")

    # The same file synchronously: the answer itself is offered for download.
    page.evaluate("document.getElementById('download').hidden = true")
    submit(page, vcf, run_async=False)
    page.wait_for_selector("#download:not([hidden])", timeout=60_000)
    with page.expect_download() as info:
        page.click("#download-link")
    assert allele_ids(Path(info.value.path()).read_text()) == expected
    assert page.blocked == []


def test_cancel_and_run_list(page, stack: Stack, data: AsyncData) -> None:
    slow = data.slow_vcf("page-slow.vcf.gz", 1500, pad=16000)  # seconds of work
    page.goto(stack.api.url + "/")
    submit(page, slow, run_id="page-cancel")
    page.wait_for_function(
        "document.getElementById('run-state').textContent === 'running'", timeout=60_000
    )
    # Live progress from the 202 polls: the record total is known from the submission.
    assert page.inner_text("#run-records").endswith("/ 1500 records")
    page.click("#cancel-run")
    page.wait_for_function(
        "document.getElementById('run-state').textContent === 'cancelled'", timeout=60_000
    )
    assert "cancelled" in page.inner_text("#error")  # the 410's error text, shown

    page.click("#refresh-runs")
    row = page.locator("#runs tr[data-run-id='page-cancel']")
    row.wait_for(timeout=10_000)
    assert row.locator("td").nth(2).inner_text() == "cancelled"
    assert row.locator("td").nth(1).inner_text() == "vcf"
    page.select_option("#runs-state", "cancelled")
    page.wait_for_function(
        "[...document.querySelectorAll('#runs tbody tr')].every("
        "r => r.children[2].textContent === 'cancelled')",
        timeout=10_000,
    )
    assert page.locator("#runs tbody tr").count() >= 1
    assert page.blocked == []


def test_variation_and_object_lookup(page, stack: Stack, data: AsyncData) -> None:
    chr1 = data.reference.contigs["chr1"]
    ref = chr1[100]
    alt = "A" if ref != "A" else "C"
    page.goto(stack.api.url + "/")
    page.fill("#definition", f"chr1-101-{ref}-{alt}")
    page.select_option("#input-type", "Allele")
    page.click("#register-variation")
    page.wait_for_function(
        "document.getElementById('lookup-result').textContent.includes('ga4gh:VA.')",
        timeout=10_000,
    )
    registered = json.loads(page.inner_text("#lookup-result"))
    wanted = stack.api.client.put(
        "/variation", json={"definition": f"chr1-101-{ref}-{alt}"}
    ).json()["object_id"]
    assert registered["object_id"] == wanted

    page.fill("#object-id", wanted)
    page.click("#get-object")
    page.wait_for_function(
        "document.getElementById('lookup-result').textContent.includes('\"data\"')",
        timeout=10_000,
    )
    assert json.loads(page.inner_text("#lookup-result"))["data"]["id"] == wanted

    # An error's text is shown to the user.
    page.fill("#definition", "chr1-101-not-a-variant")
    page.click("#register-variation")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert page.inner_text("#error").strip()
    page.fill("#object-id", "ga4gh:VA.missing")
    page.click("#get-object")
    page.wait_for_function(
        "document.getElementById('error').textContent.includes('not found')", timeout=10_000
    )
    assert page.blocked == []


def test_bearer_token(browser, stack: Stack, data: AsyncData) -> None:
    """With ANYVAR_AUTH_TOKEN_LIST set the page and the docs still load (open paths), every
    API call needs the token, and the page sends the one typed in its field."""
    api = stack.add_api("api-auth", {"ANYVAR_AUTH_TOKEN_LIST": "page-secret"})
    context = browser.new_context()
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(api.url + "/") else route.abort()
        ),
    )
    page = context.new_page()
    try:
        page.goto(api.url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        page.goto(api.url + "/")
        page.wait_for_selector("#variation-form")
        assert page.evaluate("typeof refreshRuns") == "function"  # page.js loaded
        page.click("#refresh-runs")
        page.wait_for_function(
            "document.getElementById('error').textContent === 'Not authenticated'", timeout=10_000
        )
        page.fill("#token", "page-secret")
        with page.expect_response(lambda r: "/runs?" in r.url) as answer:
            page.click("#refresh-runs")
        assert answer.value.status == 200
        ref = data.reference.contigs["chr2"][200]
        page.fill("#definition", f"chr2-201-{ref}-{'G' if ref != 'G' else 'T'}")
        page.click("#register-variation")
        page.wait_for_function(
            "document.getElementById('lookup-result').textContent.includes('ga4gh:VA.')",
            timeout=10_000,
        )
    finally:
        context.close()


def test_bad_vcf_error_shown(page, stack: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.vcf"
    bad.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\tx\n")
    page.goto(stack.api.url + "/")
    for run_async in (False, True):
        page.evaluate("document.getElementById('error').hidden = true")
        submit(page, bad, run_async=run_async)
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert page.inner_text("#error").startswith("Invalid VCF"), page.inner_text("#error")
    assert page.locator("#download").is_hidden()
