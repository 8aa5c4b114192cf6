"""The console's sign-in with the organisation's identity provider: OpenID Connect, authorization code
with PKCE (``ConsoleOidcSettings``; off while no issuer is set).

* ``GET /signin/oidc`` reads the provider's discovery document (its ``issuer`` must be the configured
  one), keeps a fresh ``state``, ``nonce`` and PKCE verifier in a short-lived signed cookie
  (SameSite=Lax: the provider's redirect back is a cross-site navigation, which a Strict cookie would
  not survive) and redirects to the provider with the S256 challenge;
* ``GET /signin/oidc/callback`` checks the state, exchanges the code with the verifier, and checks the
  ID token: signature against the provider's JWKS, issuer, audience (this console's client id), nonce,
  expiry. The user name and the groups come from the configured claims; the groups map to roles through
  ``oidc_groups`` of the governed approvers config. No mapped group: refused.

A role from a group narrows, never widens: the inbox and the approvals still require the name on the
role's allow-list, and an approval is still signed with the approver's pinned passkey. Every sign-in and
every refusal is recorded through the journal.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool

from releasegate.console_settings import ConsoleOidcSettings
from releasegate.errors import Refused
from releasegate.policy.approvers import ApproverConfig

if TYPE_CHECKING:
    from releasegate.console.app import Console, Problem

COOKIE = "rg_oidc"
PATH = "/signin/oidc"
LEEWAY_S = 60  # clock skew allowed on exp/iat


class OidcRefused(Refused):
    what = "OIDC sign-in refused"


@dataclass
class Provider:
    """The identity provider as the console sees it: discovery (cached), the code exchange, the JWKS."""

    settings: ConsoleOidcSettings
    timeout_s: float = 10.0
    metadata_: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.settings.issuer.strip().rstrip("/")

    def metadata(self) -> dict[str, Any]:
        if not self.metadata_:
            data = self._get(f"{self.issuer}/.well-known/openid-configuration")
            if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcRefused(
                    "issuer",
                    f"the provider's discovery document names issuer {data.get('issuer')!r}, not the configured "
                    f"{self.issuer!r}",
                )
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(key), str):
                    raise OidcRefused("issuer", f"the provider's discovery document has no {key}")
            self.metadata_ = data
        return self.metadata_

    def client(self, redirect_url: str) -> OAuth2Client:
        s = self.settings
        return OAuth2Client(
            client_id=s.client_id,
            client_secret=s.client_secret.get_secret_value() or None,
            scope=s.scopes,
            redirect_uri=redirect_url,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if s.client_secret.get_secret_value() else "none",
            timeout=self.timeout_s,
        )

    def keys(self) -> KeySet:
        data = self._get(str(self.metadata()["jwks_uri"]))
        try:
            return KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcRefused("jwks", f"the provider's signing keys are unreadable ({exc})") from None

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.timeout_s, follow_redirects=False)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused("issuer", f"the identity provider did not answer at {url} ({exc})") from None
        if not isinstance(data, dict):
            raise OidcRefused("issuer", f"the identity provider's answer at {url} is not a JSON object")
        return data


def check_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None,
    now: datetime,
    algorithms: list[str] | None = None,
) -> dict[str, Any]:
    """The ID token's claims once its signature (``keys``), issuer, audience, nonce and expiry check out;
    ``OidcRefused`` naming what failed otherwise."""
    try:
        token = jwt.decode(id_token, keys, algorithms=algorithms or ["RS256", "ES256", "PS256", "EdDSA"])
    except BadSignatureError:
        raise OidcRefused("signature", "the ID token's signature does not verify with the provider's keys") from None
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcRefused("id_token", f"the ID token is unreadable ({type(exc).__name__}: {exc})") from None
    claims = CodeIDToken(
        token.claims,
        token.header,
        {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        {"nonce": nonce, "client_id": client_id, **({"access_token": access_token} if access_token else {})},
    )
    try:
        claims.validate(now=int(now.timestamp()), leeway=LEEWAY_S)
    except ExpiredTokenError:
        raise OidcRefused("exp", "the ID token has expired") from None
    except ClaimError as exc:
        raise OidcRefused(exc.claim or "id_token", _claim_sentence(exc, dict(claims), issuer, client_id)) from None
    return dict(claims)


def _claim_sentence(exc: ClaimError, claims: dict[str, Any], issuer: str, client_id: str) -> str:
    name = exc.claim
    if name == "iss":
        return f"the ID token was issued by {claims.get('iss')!r}, not the configured issuer {issuer!r}"
    if name in ("aud", "azp"):
        return f"the ID token is for {claims.get('aud')!r}, not for this console (client id {client_id!r})"
    if name == "nonce":
        return "the ID token's nonce is not this sign-in's (a replayed or injected token)"
    return f"the ID token's {name!r} claim is not valid ({exc.description})"


def identity(claims: dict[str, Any], settings: ConsoleOidcSettings, config: ApproverConfig) -> tuple[str, list[str]]:
    """(user name, roles its groups map to) from checked ID token claims; ``OidcRefused`` when the name
    claim is missing or no group maps to a role in ``oidc_groups``."""
    name = claims.get(settings.username_claim)
    if not isinstance(name, str) or not name.strip():
        raise OidcRefused(
            "username_claim", f"the ID token carries no user name in the {settings.username_claim!r} claim"
        )
    raw = claims.get(settings.groups_claim) or []
    groups = [raw] if isinstance(raw, str) else [str(g) for g in raw] if isinstance(raw, list) else []
    roles = sorted({str(config.oidc_groups[g]) for g in groups if g in config.oidc_groups})
    if not roles:
        shown = ", ".join(groups) or "none"
        raise OidcRefused(
            "groups",
            f"none of {name.strip()}'s groups ({shown}) maps to a role in the governed approvers config "
            "(oidc_groups): ask an admin",
        )
    return name.strip(), roles


def register(app: FastAPI, c: Console) -> None:  # noqa: C901 - one closure per route
    from releasegate.console.app import Problem

    ports, settings = c.ports, c.settings
    provider = Provider(settings.oidc) if settings.oidc is not None and settings.oidc.enabled else None
    secure = settings.origin.startswith("https:")

    def redirect_url() -> str:
        given = provider.settings.redirect_url if provider else ""
        return given or f"{settings.origin.rstrip('/')}{PATH}/callback"

    def refuse(request: Request, actor: str, status: int, exc: Refused) -> Problem:
        sentence = f"Sign-in refused: {exc.rule}."
        did = ports.journal.record(
            "signin",
            actor or "<anonymous>",
            False,
            f"console refused an OIDC sign-in: {exc.rule}",
            field=exc.field,
            rule=exc.rule,
            path=request.url.path,
            method="oidc",
        )
        return Problem(status, exc.field, sentence, did)

    @app.get(PATH)
    async def oidc_start(request: Request) -> Response:
        return await run_in_threadpool(oidc_start_, request)

    def oidc_start_(request: Request) -> Response:
        if provider is None:
            raise Problem(404, "oidc", "Sign-in with an identity provider is not configured: use your passkey.")
        try:
            endpoint = str(provider.metadata()["authorization_endpoint"])
        except OidcRefused as exc:
            raise refuse(request, "", 502, exc) from None
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        url, _ = provider.client(redirect_url()).create_authorization_url(
            endpoint, state=state, nonce=nonce, code_verifier=verifier
        )
        pending = {"state": state, "nonce": nonce, "verifier": verifier, "at": ports.clock.now().isoformat()}
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            COOKIE,
            c.store.serializer.dumps(pending, salt="releasegate-console-oidc"),
            max_age=settings.challenge_ttl_s,
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        return response

    def pending(request: Request) -> dict[str, str]:
        """The sign-in this browser started (its signed cookie), unanswered and not older than the TTL."""
        try:
            data = c.store.serializer.loads(request.cookies.get(COOKIE) or "", salt="releasegate-console-oidc")
            p = {k: str(data[k]) for k in ("state", "nonce", "verifier", "at")}
            age = (ports.clock.now() - datetime.fromisoformat(p["at"])).total_seconds()
        except Exception:  # missing, altered, from another key or unreadable: no sign-in in progress
            age, p = float("inf"), {}
        if age >= settings.challenge_ttl_s or p["state"] in c.answered:
            raise OidcRefused(
                "state",
                "no sign-in with the identity provider is in progress in this browser (or it took too "
                "long): start again",
            )
        return p

    @app.get(f"{PATH}/callback")
    async def oidc_callback(request: Request) -> Response:
        return await run_in_threadpool(oidc_callback_, request)

    def oidc_callback_(request: Request) -> Response:
        if provider is None:
            raise Problem(404, "oidc", "Sign-in with an identity provider is not configured: use your passkey.")
        q = request.query_params
        name = ""
        try:
            p = pending(request)
            if not hmac.compare_digest(p["state"].encode(), str(q.get("state") or "").encode()):
                raise OidcRefused(
                    "state", "the answer does not belong to the sign-in this browser started (state mismatch)"
                )
            c.answered[p["state"]] = ports.clock.now()  # one answer per sign-in
            if q.get("error"):
                raise OidcRefused(
                    "provider",
                    f"the identity provider answered {q.get('error')}: "
                    f"{q.get('error_description') or 'no reason given'}",
                )
            if not q.get("code"):
                raise OidcRefused("code", "the identity provider sent no authorization code")
            meta = provider.metadata()
            try:
                token = provider.client(redirect_url()).fetch_token(
                    str(meta["token_endpoint"]), code=str(q["code"]), code_verifier=p["verifier"]
                )
            except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
                raise OidcRefused("code", f"the identity provider did not exchange the code ({exc})") from None
            if not isinstance(token.get("id_token"), str):
                raise OidcRefused("id_token", "the identity provider returned no ID token (is 'openid' a scope?)")
            claims = check_id_token(
                token["id_token"],
                provider.keys(),
                issuer=provider.issuer,
                client_id=provider.settings.client_id,
                nonce=p["nonce"],
                access_token=token.get("access_token"),
                now=ports.clock.now(),
                algorithms=meta.get("id_token_signing_alg_values_supported"),
            )
            name = str(claims.get(provider.settings.username_claim) or "")
            name, roles = identity(claims, provider.settings, ports.directory.config())
        except OidcRefused as exc:
            raise refuse(request, name, 403 if exc.field != "issuer" else 502, exc) from None
        s = c.session(request)
        s.user, s.seen, s.roles, s.csrf = name, ports.clock.now().isoformat(), roles, secrets.token_urlsafe(24)
        s.pending = None
        did = ports.journal.record(
            "signin",
            name,
            True,
            f"{name} signed in to the console with the identity provider {provider.issuer} "
            f"(roles from groups: {', '.join(roles)})",
            method="oidc",
            issuer=provider.issuer,
            subject=str(claims.get("sub")),
            roles=roles,
        )
        # A page, not a redirect: after the provider's cross-site redirect a browser would withhold the
        # SameSite=Strict session cookie on a redirect chain; a same-site navigation from here sends it.
        response = c.render(request, "signed_in.html", next="/inbox", decision_id=did)
        response.delete_cookie(COOKIE, path=PATH)
        return response
