"""Bearer-token authentication: literal tokens (``ANYVAR_AUTH_TOKEN_LIST``) and, as AnyVar
1.0.0's ``anyvar/restapi/auth.py``, JWTs of an OpenID Connect issuer
(``ANYVAR_AUTH_ISSUER_URL``, ``ANYVAR_AUTH_JWKS_URI``, and the allow-lists
``ANYVAR_AUTH_AUDIENCES``, ``_APPIDS``, ``_SCOPES``, ``_EMAILS``, ``_SUBJECTS``).

As in AnyVar, authentication is on when the token list or the issuer is set, and a request
passes when its token is in the list *or* is a valid JWT (the list is tried first). Every
route but the docs and the web page's files needs ``Authorization: Bearer <token>``.

Answers, AnyVar's status and body (``detail`` alone), with our code in the
``X-AnyVar-Error-Code`` header:

* no ``Authorization`` header, another scheme, or an empty token: 401
  ``{"detail": "Not authenticated"}`` (FastAPI's ``HTTPBearer``, which AnyVar uses);
* a token neither listed nor a valid JWT (expired, not yet valid, wrong issuer, audience,
  app id, scope, email or subject, bad signature, unknown key, JWKS unreachable): 401
  ``{"detail": "Invalid token"}``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import jwt
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from jwt import PyJWKClient

from anyvar.config import Settings

log = logging.getLogger("anyvar.restapi.auth")

NOT_AUTHENTICATED = "Not authenticated"
"""AnyVar's ``detail`` without a bearer token (FastAPI's HTTPBearer)."""
INVALID_TOKEN = "Invalid token"
"""AnyVar's ``detail`` for a token it does not accept."""


def split_list(value: str | None) -> list[str]:
    """A comma-separated setting as AnyVar parses it: items stripped, empty ones dropped."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass
class AuthConfig:
    """What requests must show; AnyVar's BearerTokenAuthConfig."""

    token_list: list[str] = field(default_factory=list)
    issuer_url: str | None = None
    jwks_uri: str | None = None
    audiences: list[str] = field(default_factory=list)
    appids: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    """Lower-cased: emails compare ignoring case."""
    subjects: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        return cls(
            token_list=sorted(settings.auth_tokens()),
            issuer_url=settings.auth_issuer_url or None,
            jwks_uri=settings.auth_jwks_uri or None,
            audiences=split_list(settings.auth_audiences),
            appids=split_list(settings.auth_appids),
            scopes=split_list(settings.auth_scopes),
            emails=[e.lower() for e in split_list(settings.auth_emails)],
            subjects=split_list(settings.auth_subjects),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.token_list or self.issuer_url)


class ValidTokenCache:
    """JWTs already accepted, each until its ``exp``: a token is checked once, not on every
    request (AnyVar's ValidTokenCache, with a lock: checks run on several threads)."""

    PURGE_INTERVAL_SECONDS = 3600

    def __init__(self) -> None:
        self.last_purge = time.time()
        self.cache: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self.cache.get(token)
            if expiry is None:
                return False
            if time.time() < expiry:
                return True
            del self.cache[token]
            return False

    def add_token(self, token: str, exp: float) -> None:
        with self._lock:
            self.cache[token] = exp

    def purge(self) -> None:
        """Drops expired tokens, at most once an hour."""
        now = time.time()
        with self._lock:
            if now - self.last_purge < self.PURGE_INTERVAL_SECONDS:
                return
            self.last_purge = now
            for token in [t for t, exp in self.cache.items() if exp < now]:
                del self.cache[token]


def claims_problem(cfg: AuthConfig, claims: dict) -> str | None:
    """Why decoded, signature-checked claims are not accepted (AnyVar's checks, in its
    order), or None."""
    if claims.get("iss") != cfg.issuer_url:
        return f"issuer {claims.get('iss')!r} is not {cfg.issuer_url!r}"
    if cfg.audiences:
        aud = claims.get("aud")
        token_audiences = aud if isinstance(aud, list) else [aud]
        if not any(a in token_audiences for a in cfg.audiences):
            return f"audience {token_audiences!r} is none of {cfg.audiences!r}"
    if cfg.appids and claims.get("appid") not in cfg.appids:
        return f"appid {claims.get('appid')!r} is none of {cfg.appids!r}"
    if cfg.scopes:
        scope = claims.get("scope", "")
        token_scopes = scope.split() if isinstance(scope, str) else scope
        if not isinstance(token_scopes, list) or not any(s in token_scopes for s in cfg.scopes):
            return f"scope {scope!r} holds none of {cfg.scopes!r}"
    if cfg.emails:
        email = claims.get("email", "")
        if not isinstance(email, str) or email.lower() not in cfg.emails:
            return f"email {email!r} is none of {cfg.emails!r}"
    if cfg.subjects and claims.get("sub") not in cfg.subjects:
        return f"subject {claims.get('sub')!r} is none of {cfg.subjects!r}"
    return None


class JwtValidator:
    """Accepts RS256 JWTs signed by a key of the issuer's JWKS, with AnyVar's claims checks."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.cache = ValidTokenCache()
        # Keys are fetched on first use and kept an hour, as AnyVar does; a token with an
        # unknown key id makes PyJWKClient fetch the set again (key rotation).
        self.client = (
            PyJWKClient(cfg.jwks_uri, cache_keys=True, lifespan=3600) if cfg.jwks_uri else None
        )

    def is_cached(self, token: str) -> bool:
        return self.cache.is_token_valid(token)

    def is_valid(self, token: str) -> bool:
        """Blocks (it may fetch the JWKS): call it off the event loop."""
        if not token or self.client is None or not self.cfg.issuer_url:
            return False
        if self.cache.is_token_valid(token):
            return True
        self.cache.purge()
        try:
            key = self.client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                options={
                    "require": ["iat", "exp", "iss", "sub"],
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_iat": True,
                    "verify_nbf": True,
                    "verify_aud": False,  # checked against the allow-list below
                    "verify_iss": False,  # checked below
                    "verify_jti": False,
                    "verify_sub": True,
                },
            )
            problem = claims_problem(self.cfg, claims)
        except Exception as e:  # as AnyVar: whatever fails (JWKS down too) is an invalid token
            problem = f"{type(e).__name__}: {e}"
        if problem:
            log.info("bearer JWT rejected: %s", problem)
            return False
        self.cache.add_token(token, claims["exp"])
        return True


def unauthorized(detail: str) -> JSONResponse:
    return JSONResponse(
        status_code=401,
        content={"detail": detail},
        headers={"WWW-Authenticate": "Bearer", "X-AnyVar-Error-Code": "UNAUTHORIZED"},
    )


class BearerCheck:
    """The decision for one ``Authorization`` header: None to let the request through, or
    the 401 ``detail``."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.tokens = [t.encode() for t in cfg.token_list]
        self.jwt = JwtValidator(cfg) if cfg.issuer_url else None
        if cfg.issuer_url and not cfg.jwks_uri:
            log.warning("ANYVAR_AUTH_ISSUER_URL is set without ANYVAR_AUTH_JWKS_URI: no JWT passes")

    def listed(self, token: str) -> bool:
        given = token.encode()
        return any(secrets.compare_digest(given, t) for t in self.tokens)

    async def problem(self, authorization: str | None) -> str | None:
        # Parsed as FastAPI's HTTPBearer parses it (AnyVar's dependency).
        scheme, token = get_authorization_scheme_param(authorization)
        if not (authorization and scheme and token) or scheme.lower() != "bearer":
            return NOT_AUTHENTICATED
        if self.tokens and self.listed(token):
            return None
        if self.jwt is not None and (
            self.jwt.is_cached(token) or await asyncio.to_thread(self.jwt.is_valid, token)
        ):
            return None
        return INVALID_TOKEN


def install(
    app: FastAPI, settings: Settings, open_paths: set[str], open_prefixes: tuple[str, ...]
) -> None:
    """Requires a bearer token on every path but ``open_paths`` and those starting with one
    of ``open_prefixes``, when the settings ask for one; else does nothing."""
    cfg = AuthConfig.from_settings(settings)
    if not cfg.enabled:
        return
    check = BearerCheck(cfg)

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path not in open_paths and not path.startswith(open_prefixes):
            detail = await check.problem(request.headers.get("authorization"))
            if detail is not None:
                return unauthorized(detail)
        return await call_next(request)
