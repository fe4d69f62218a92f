"""Bearer authentication as AnyVar 1.0.0's (anyvar/restapi/auth.py): literal tokens
(ANYVAR_AUTH_TOKEN_LIST) and RS256 JWTs checked against a real JWKS served on loopback, with
the issuer, audience, app id, scope, email and subject allow-lists. The app is the real one
(create_app with its lifespan, registry and storage), driven through FastAPI's TestClient."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from anyvar.config import Settings
from anyvar.restapi.main import create_app

ISSUER = "https://login.example.org/tenant/v2.0"
KID = "test-key-1"
PROTECTED = "/service-info"
OPEN = ["/docs", "/redoc", "/openapi.json", "/"]

INVALID = {"detail": "Invalid token"}
"""AnyVar's body, exactly (our error code is in the X-AnyVar-Error-Code header)."""
NOT_AUTHENTICATED = {"detail": "Not authenticated"}

DROP = object()
"""A claim value meaning: leave the claim out."""


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


class Jwks:
    """The issuer's JWKS on a loopback port, counting the times it is fetched."""

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        body = json.dumps(
            {
                "keys": [
                    {**json.loads(RSAAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig"}
                    for kid, k in keys.items()
                ]
            }
        ).encode()
        jwks = self
        self.fetches = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                jwks.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def jwks(key: rsa.RSAPrivateKey) -> Iterator[Jwks]:
    served = Jwks({KID: key})
    yield served
    served.close()


def make_token(key: rsa.RSAPrivateKey, kid: str = KID, **claims: object) -> str:
    """A token every allow-list of ``full_client`` accepts, but for ``claims``."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "api://anyvar",
        "iat": now,
        "exp": now + 600,
        "appid": "app-1",
        "scope": "openid anyvar.write",
        "email": "alice@example.org",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not DROP}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(tmp: Path, seqrepo: str, **auth: str) -> Settings:
    fields = {
        "auth_token_list": "",
        "auth_issuer_url": None,
        "auth_jwks_uri": None,
        "auth_audiences": "",
        "auth_appids": "",
        "auth_scopes": "",
        "auth_emails": "",
        "auth_subjects": "",
    }
    fields.update(auth)
    return Settings(
        seqrepo_dataproxy_uri=seqrepo,
        storage_uri=f"sqlite:///{tmp / 'db.sqlite3'}",
        cache_dir=tmp / "cache",
        vcf_async_work_dir=None,
        **fields,
    )


@contextmanager
def client_for(
    tmp_path_factory: pytest.TempPathFactory, seqrepo: str, **auth: str
) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("auth")
    with TestClient(create_app(settings_for(tmp, seqrepo, **auth))) as client:
        yield client


@pytest.fixture(scope="module")
def full_client(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str, jwks: Jwks
) -> Iterator[TestClient]:
    """Token list and JWTs, with every allow-list set (two entries each)."""
    with client_for(
        tmp_path_factory,
        vector_seqrepo_uri,
        auth_token_list="listed-1, listed-2",
        auth_issuer_url=ISSUER,
        auth_jwks_uri=jwks.uri,
        auth_audiences="api://anyvar,api://other",
        auth_appids="app-0,app-1",
        auth_scopes="anyvar.read,anyvar.write",
        auth_emails="Alice@Example.org,bob@example.org",
        auth_subjects="user-0,user-1",
    ) as client:
        yield client


@pytest.fixture(scope="module")
def jwt_client(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str, jwks: Jwks
) -> Iterator[TestClient]:
    """JWTs only, no allow-list: issuer, signature and times decide."""
    with client_for(
        tmp_path_factory, vector_seqrepo_uri, auth_issuer_url=ISSUER, auth_jwks_uri=jwks.uri
    ) as client:
        yield client


@pytest.fixture(scope="module")
def list_client(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str
) -> Iterator[TestClient]:
    """The token list alone, as before JWTs."""
    with client_for(tmp_path_factory, vector_seqrepo_uri, auth_token_list="a,b") as client:
        yield client


def assert_rejected(response, body: dict) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == body
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-anyvar-error-code"] == "UNAUTHORIZED"


# --- JWTs -----------------------------------------------------------------------------------------


def test_valid_jwt_passes(full_client: TestClient, key: rsa.RSAPrivateKey) -> None:
    r = full_client.get(PROTECTED, headers=bearer(make_token(key)))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "org.biocommons.anyvar"
    # Another protected route: past authentication to the route's own answer.
    r = full_client.get(
        "/object/ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", headers=bearer(make_token(key))
    )
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": ["api://elsewhere", "api://other"]}, id="one-of-several-audiences"),
        pytest.param({"email": "BOB@example.ORG"}, id="email-ignoring-case"),
        pytest.param({"scope": ["anyvar.read"]}, id="scope-as-list"),
        pytest.param({"scope": "anyvar.read profile"}, id="any-one-allowed-scope"),
        pytest.param({"sub": "user-0", "appid": "app-0"}, id="other-listed-subject-and-appid"),
    ],
)
def test_allow_lists_accept(full_client: TestClient, key: rsa.RSAPrivateKey, claims: dict) -> None:
    r = full_client.get(PROTECTED, headers=bearer(make_token(key, **claims)))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
        pytest.param({"iss": "https://evil.example.org/"}, id="wrong-issuer"),
        pytest.param({"aud": "api://elsewhere"}, id="wrong-audience"),
        pytest.param({"aud": DROP}, id="no-audience"),
        pytest.param({"appid": "app-9"}, id="appid-not-allowed"),
        pytest.param({"scope": "openid profile"}, id="scope-not-allowed"),
        pytest.param({"scope": DROP}, id="no-scope"),
        pytest.param({"email": "mallory@example.org"}, id="email-not-allowed"),
        pytest.param({"email": DROP}, id="no-email"),
        pytest.param({"sub": "user-9"}, id="subject-not-allowed"),
        pytest.param({"sub": DROP}, id="no-subject"),
        pytest.param({"exp": DROP}, id="no-expiry"),
        pytest.param({"iat": DROP}, id="no-issued-at"),
    ],
)
def test_jwt_rejected(full_client: TestClient, key: rsa.RSAPrivateKey, claims: dict) -> None:
    """Each token differs from an accepted one (test_valid_jwt_passes) in the claims named."""
    assert_rejected(full_client.get(PROTECTED, headers=bearer(make_token(key, **claims))), INVALID)


def test_bad_signature_rejected(full_client: TestClient, key: rsa.RSAPrivateKey) -> None:
    # Signed by another key under the issuer's key id.
    forged = make_token(new_key())
    assert_rejected(full_client.get(PROTECTED, headers=bearer(forged)), INVALID)
    # The accepted token with its signature's last bytes altered.
    head, payload, signature = make_token(key).split(".")
    tampered = ".".join(
        [head, payload, signature[:-6] + ("AAAAAA" if signature[-6:] != "AAAAAA" else "BBBBBB")]
    )
    assert_rejected(full_client.get(PROTECTED, headers=bearer(tampered)), INVALID)
    # The accepted token's signature over other claims.
    other = make_token(key, sub="user-0").split(".")[1]
    assert_rejected(
        full_client.get(PROTECTED, headers=bearer(f"{head}.{other}.{signature}")), INVALID
    )


def test_unknown_key_and_other_algorithms_rejected(
    full_client: TestClient, key: rsa.RSAPrivateKey
) -> None:
    assert_rejected(
        full_client.get(PROTECTED, headers=bearer(make_token(key, kid="no-such-key"))), INVALID
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user-1", "aud": "api://anyvar", "iat": now, "exp": now + 60}
    hs256 = jwt.encode(
        claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": KID}
    )
    assert_rejected(full_client.get(PROTECTED, headers=bearer(hs256)), INVALID)
    for garbage in ["not-a-jwt", "a.b.c", "listed-1x"]:
        assert_rejected(full_client.get(PROTECTED, headers=bearer(garbage)), INVALID)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer"}, id="no-token"),
        pytest.param({"Authorization": "Bearer   "}, id="blank-token"),
        pytest.param({"Authorization": "Basic bGlzdGVkLTE6"}, id="basic-scheme"),
        pytest.param({"Authorization": "listed-1"}, id="no-scheme"),
    ],
)
def test_missing_token_rejected(full_client: TestClient, headers: dict) -> None:
    assert_rejected(full_client.get(PROTECTED, headers=headers), NOT_AUTHENTICATED)


def test_jwt_without_allow_lists(jwt_client: TestClient, key: rsa.RSAPrivateKey) -> None:
    """Without allow-lists a token with only the required claims passes; issuer, signature
    and expiry still decide, and a listed token of another app does not pass."""
    now = int(time.time())
    minimal = jwt.encode(
        {"iss": ISSUER, "sub": "anyone", "iat": now, "exp": now + 60},
        key,
        algorithm="RS256",
        headers={"kid": KID},
    )
    assert jwt_client.get(PROTECTED, headers=bearer(minimal)).status_code == 200
    assert_rejected(jwt_client.get(PROTECTED, headers=bearer(make_token(key, iss="x"))), INVALID)
    assert_rejected(jwt_client.get(PROTECTED, headers=bearer(make_token(new_key()))), INVALID)
    assert_rejected(jwt_client.get(PROTECTED, headers=bearer("listed-1")), INVALID)


def test_jwks_fetched_once(full_client: TestClient, key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    """The JWKS is fetched once for many tokens (keys kept an hour, as AnyVar)."""
    token = make_token(key, sub="user-0")
    assert full_client.get(PROTECTED, headers=bearer(token)).status_code == 200
    fetches = jwks.fetches
    assert fetches >= 1
    for i in range(5):
        token_i = make_token(key, jti=f"t{i}")
        assert full_client.get(PROTECTED, headers=bearer(token_i)).status_code == 200
    assert jwks.fetches == fetches


def test_remembered_jwt_still_expires(full_client: TestClient, key: rsa.RSAPrivateKey) -> None:
    """An accepted token is remembered until its ``exp``, not beyond."""
    now = int(time.time())
    token = make_token(key, iat=now, exp=now + 2)
    assert full_client.get(PROTECTED, headers=bearer(token)).status_code == 200
    assert full_client.get(PROTECTED, headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, now + 2.2 - time.time()))
    assert_rejected(full_client.get(PROTECTED, headers=bearer(token)), INVALID)


def test_jwks_unreachable_is_invalid_token(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str, key: rsa.RSAPrivateKey
) -> None:
    """As AnyVar: a JWKS that cannot be fetched rejects the token (401, not 500)."""
    gone = Jwks({KID: key})
    gone.close()  # a port nothing listens on any more
    with client_for(
        tmp_path_factory, vector_seqrepo_uri, auth_issuer_url=ISSUER, auth_jwks_uri=gone.uri
    ) as client:
        assert_rejected(client.get(PROTECTED, headers=bearer(make_token(key))), INVALID)


def test_issuer_without_jwks_uri_rejects_every_jwt(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str, key: rsa.RSAPrivateKey
) -> None:
    """As AnyVar: the issuer alone turns authentication on, but no JWT can pass."""
    with client_for(tmp_path_factory, vector_seqrepo_uri, auth_issuer_url=ISSUER) as client:
        assert_rejected(client.get(PROTECTED, headers=bearer(make_token(key))), INVALID)
        assert_rejected(client.get(PROTECTED), NOT_AUTHENTICATED)


# --- the token list, alone and beside JWTs --------------------------------------------------------


def test_token_list_beside_jwts(full_client: TestClient) -> None:
    """Either a listed token or a valid JWT passes (AnyVar tries the list first)."""
    for token in ["listed-1", "listed-2"]:
        assert full_client.get(PROTECTED, headers=bearer(token)).status_code == 200
    assert (
        full_client.get(PROTECTED, headers={"Authorization": "bearer listed-2"}).status_code == 200
    )
    assert_rejected(full_client.get(PROTECTED, headers=bearer("listed-1,listed-2")), INVALID)


def test_token_list_alone(list_client: TestClient, key: rsa.RSAPrivateKey) -> None:
    assert list_client.get(PROTECTED, headers=bearer("a")).status_code == 200
    assert list_client.get(PROTECTED, headers=bearer("b")).status_code == 200
    for token in ["c", "bb", "a,b", make_token(key)]:
        assert_rejected(list_client.get(PROTECTED, headers=bearer(token)), INVALID)
    assert_rejected(list_client.get(PROTECTED), NOT_AUTHENTICATED)


def test_no_auth_configured(
    tmp_path_factory: pytest.TempPathFactory, vector_seqrepo_uri: str
) -> None:
    with client_for(tmp_path_factory, vector_seqrepo_uri) as client:
        assert client.get(PROTECTED).status_code == 200
        assert client.get(PROTECTED, headers=bearer("anything")).status_code == 200


# --- open paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["full_client", "jwt_client", "list_client"])
def test_docs_stay_open(request: pytest.FixtureRequest, fixture: str) -> None:
    client: TestClient = request.getfixturevalue(fixture)
    for path in OPEN:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
    assert "/service-info" in client.get("/openapi.json").json()["paths"]
    assert_rejected(client.get(PROTECTED), NOT_AUTHENTICATED)
