"""The console's WebAuthn ceremonies, each two JSON requests (options, then the browser's answer):

* sign-in: a random challenge, answered by the passkey pinned for the name in the governed config;
* enrolment: ``navigator.credentials.create`` for a name the config knows, by someone signed in as that
  name or holding an admin's one-time invitation code for it (``releasegate approvers invite``, checked
  at both requests), recorded as a proposal of the config naming the invitation (it takes effect when
  admins approve it: ``releasegate approvers approve``);
* approval: the approval statement (``policy.signatures.ApprovalStatement``) whose hash is the challenge;
  the assertion is checked against the pinned passkey (``policy.passkey_approvals``) and the paused run
  is resumed with it through the approvals desk, which checks and records it again.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from webauthn import verify_registration_response
from webauthn.helpers.exceptions import InvalidJSONStructure, InvalidRegistrationResponse

from releasegate.errors import Refused
from releasegate.policy.handshake import ApprovalFields, ApprovalRefused, check_approval
from releasegate.policy.passkey_approvals import PasskeyApproval, challenge, check_passkey
from releasegate.policy.passkeys import Assertion, Passkey, PasskeyRefused, b64url, check_assertion, unb64url
from releasegate.policy.signatures import ApprovalStatement, statement_for

if TYPE_CHECKING:
    from releasegate.console.app import Console
    from releasegate.console_ports import PendingApproval


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        from releasegate.console.app import Problem

        raise Problem(400, "body", "Send a JSON object.")
    return data


def register(app: FastAPI, c: Console) -> None:  # noqa: C901 - one closure per route
    from releasegate.console.app import Problem

    ports, settings = c.ports, c.settings

    def begin(request: Request, purpose: str, name: str) -> bytes:
        nonce = os.urandom(32)
        c.session(request).pending = {
            "purpose": purpose,
            "name": name,
            "challenge": b64url(nonce),
            "at": ports.clock.now().isoformat(),
        }
        return nonce

    def pending(request: Request, purpose: str) -> tuple[str, bytes]:
        p = c.session(request).pending or {}
        c.session(request).pending = None  # one answer per challenge
        fresh = p.get("at") and (ports.clock.now() - datetime.fromisoformat(p["at"])).total_seconds() < (
            settings.challenge_ttl_s
        )
        now = ports.clock.now()
        for old, at in list(c.answered.items()):  # forget what has expired anyway
            if (now - at).total_seconds() > settings.challenge_ttl_s:
                del c.answered[old]
        if p.get("purpose") != purpose or not fresh or str(p.get("challenge")) in c.answered:
            raise c.refuse(
                request, 400, "challenge", f"No {purpose} is in progress (or it took too long): start again."
            )
        c.answered[str(p["challenge"])] = now  # a copy of the old cookie cannot answer it again
        return str(p["name"]), unb64url(str(p["challenge"]), "challenge")

    def admitted(request: Request, name: str, body: dict[str, Any]) -> str | None:
        """None when signed in as ``name``; else the id of the valid invitation whose code the body holds."""
        if c.session(request).user == name:
            return None
        code = str(body.get("code") or "").strip()
        if not code:
            raise c.refuse(
                request,
                403,
                "code",
                f"Enrolling as {name!r} needs an identity first: sign in as {name!r}, or type the invitation code "
                "an admin gave you (releasegate approvers invite).",
                "enrol",
            )
        try:
            return ports.directory.check_invitation(name, code)
        except Refused as exc:
            raise c.refuse(request, 403, exc.field, f"Enrolment refused: {exc.rule}.", "enrol") from None

    @app.post("/signin/options")
    async def signin_options(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(signin_options_, request, body)

    def signin_options_(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        c.csrf(request)
        name = str(body.get("name") or "").strip()
        passkey = ports.directory.config().passkeys.get(name)
        if passkey is None:
            raise c.refuse(
                request,
                403,
                "name",
                f"No passkey is pinned for {name!r} in the governed approvers config: enrol one, then ask two "
                "admins to approve the enrolment.",
                "signin",
            )
        nonce = begin(request, "sign-in", name)
        return {
            "challenge": b64url(nonce),
            "rpId": settings.rp_id,
            "allowCredentials": [{"type": "public-key", "id": passkey.credential_id}],
            "userVerification": "required",
            "timeout": settings.challenge_ttl_s * 1000,
        }

    @app.post("/signin/verify")
    async def signin_verify(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(signin_verify_, request, body)

    def signin_verify_(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        c.csrf(request)
        name, nonce = pending(request, "sign-in")
        passkey = ports.directory.config().passkeys.get(name)
        try:
            if passkey is None:
                raise PasskeyRefused("name", f"no passkey is pinned for {name!r}")
            check_assertion(Assertion.from_browser(body.get("credential") or {}), passkey, nonce, name)
        except PasskeyRefused as exc:
            raise c.refuse(request, 403, exc.field, f"Sign-in refused: {exc.rule}.", "signin") from None
        s = c.session(request)
        s.user, s.seen, s.csrf = name, ports.clock.now().isoformat(), b64url(os.urandom(24))
        did = ports.journal.record("signin", name, True, f"{name} signed in to the console with a passkey")
        return {"ok": True, "next": "/inbox", "decision_id": did}

    @app.post("/enrol/options")
    async def enrol_options(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(enrol_options_, request, body)

    def enrol_options_(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        c.csrf(request)
        s = c.session(request)
        name = s.user or str(body.get("name") or "").strip()
        if name not in ports.directory.config().names():
            raise c.refuse(
                request, 403, "name", f"{name!r} is on no list of the governed approvers config: ask an admin.", "enrol"
            )
        admitted(request, name, body)
        nonce = begin(request, "enrolment", name)
        return {
            "challenge": b64url(nonce),
            "rp": {"id": settings.rp_id, "name": "releasegate"},
            "user": {"id": b64url(hashlib.sha256(name.encode()).digest()[:16]), "name": name, "displayName": name},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "authenticatorSelection": {"residentKey": "preferred", "userVerification": "required"},
            "attestation": "none",
            "timeout": settings.challenge_ttl_s * 1000,
        }

    @app.post("/enrol/verify")
    async def enrol_verify(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(enrol_verify_, request, body)

    def enrol_verify_(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        c.csrf(request)
        name, nonce = pending(request, "enrolment")
        invitation = admitted(request, name, body)  # checked again: it may have been used meanwhile
        try:
            made = verify_registration_response(
                credential=body.get("credential") or {},
                expected_challenge=nonce,
                expected_rp_id=settings.rp_id,
                expected_origin=settings.origin,
                require_user_verification=True,
            )
        except (InvalidRegistrationResponse, InvalidJSONStructure, ValueError, KeyError, TypeError) as exc:
            raise c.refuse(request, 400, "credential", f"The new passkey was not accepted: {exc}.", "enrol") from None
        passkey = Passkey(
            credential_id=b64url(made.credential_id),
            public_key=b64url(made.credential_public_key),
            rp_id=settings.rp_id,
            origin=settings.origin,
        )
        try:
            pid, changes = ports.directory.enrol(name, passkey, f"console:{name}", invitation)
        except Refused as exc:  # recorded by the directory
            raise Problem(409, exc.field, f"Enrolment refused: {exc.rule}.") from None
        return {
            "ok": True,
            "proposal_id": pid,
            "credential_id": passkey.credential_id,
            "message": f"Enrolment recorded as proposal {pid} ({'; '.join(changes)}). It takes effect when two "
            f"admins approve it: releasegate approvers approve {pid} --by ADMIN.",
        }

    def waiting(request: Request, run_id: str) -> PendingApproval:
        item = ports.desk.item(run_id)
        if item is not None:
            return item
        raise c.refuse(request, 404, "run", f"Run {run_id} does not wait for an approval (see the inbox).", "approval")

    def refused(request: Request, item: PendingApproval, fields: dict[str, Any], exc: Refused) -> Problem:
        raw = {**fields, "role": item.awaiting.value}
        did = ports.desk.record_refusal(item, item.awaiting, f"{exc.field}: {exc.rule}", raw)
        auditor = fields.get("approver") in ports.directory.config().auditors
        extra = " Auditors read and cannot approve." if auditor else ""
        return Problem(403, exc.field, f"Approval refused: {exc.rule}.{extra}", did)

    def granted(request: Request, item: PendingApproval) -> None:
        """After an OIDC sign-in, the awaited role must be one the user's groups map to (the allow-list
        is checked as well, by ``check_approval``)."""
        roles = c.session(request).roles
        if roles is not None and item.awaiting.value not in roles:
            role = item.awaiting.value.upper()
            raise ApprovalRefused(
                "role", f"none of your identity provider's groups maps to the {role} role (oidc_groups)"
            )

    def fields_of(user: str, body: dict[str, Any], decision: Any, reference: Any) -> ApprovalFields:
        return ApprovalFields(
            approver=user,
            decision="reject" if decision == "reject" else "approve",
            reference=str(reference or ""),
            statement=str(body.get("statement_text") or ""),
            comment=str(body.get("comment") or ""),
        )

    @app.post("/approvals/{run_id}/statement")
    async def approval_statement(request: Request, run_id: str) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(approval_statement_, request, body, run_id)

    def approval_statement_(request: Request, body: dict[str, Any], run_id: str) -> dict[str, Any]:
        user = c.user(request)
        c.csrf(request)
        item = waiting(request, run_id)
        fields = fields_of(user, body, body.get("decision"), body.get("reference"))
        try:
            granted(request, item)
            check_approval(item.handshake, item.awaiting, fields)
            passkey = item.handshake.passkeys.get(user)
            if passkey is None:
                raise ApprovalRefused("approver", f"no passkey is pinned for {user!r}: enrol one, admins approve it")
            stmt = statement_for(item.handshake, item.awaiting, fields, run_id, ports.clock.now())
        except Refused as exc:
            raise refused(request, item, fields.model_dump(), exc) from None
        return {
            "statement": stmt.model_dump(mode="json"),
            "publicKey": {
                "challenge": b64url(challenge(stmt)),
                "rpId": passkey.rp_id,
                "allowCredentials": [{"type": "public-key", "id": passkey.credential_id}],
                "userVerification": "required",
                "timeout": settings.challenge_ttl_s * 1000,
            },
        }

    @app.post("/approvals/{run_id}")
    async def approve(request: Request, run_id: str) -> dict[str, Any]:
        body = await _body(request)
        return await run_in_threadpool(approve_, request, body, run_id)

    def approve_(request: Request, body: dict[str, Any], run_id: str) -> dict[str, Any]:
        user = c.user(request)
        c.csrf(request)
        item = waiting(request, run_id)
        given = body.get("statement")
        raw_statement: dict[str, Any] = given if isinstance(given, dict) else {}
        fields = fields_of(user, body, raw_statement.get("decision"), raw_statement.get("reference"))
        try:
            stmt = ApprovalStatement.model_validate(raw_statement)
        except ValidationError:
            raise refused(request, item, fields.model_dump(), ApprovalRefused("statement", "unreadable")) from None
        try:
            if stmt.approver != user:
                raise ApprovalRefused(
                    "approver", f"you are signed in as {user!r}; the statement names {stmt.approver!r}"
                )
            granted(request, item)
            check_approval(item.handshake, item.awaiting, fields)
            passkey = item.handshake.passkeys.get(user)
            if passkey is None:
                raise ApprovalRefused("approver", f"no passkey is pinned for {user!r}")
            assertion = Assertion.from_browser(body.get("credential") or {})
            approval = PasskeyApproval(statement=stmt, assertion=assertion, passkey=passkey)
            check_passkey(item.handshake, item.awaiting, fields, approval, run_id, ports.clock.now())
        except Refused as exc:
            raise refused(request, item, fields.model_dump(), exc) from None
        run_input = fields.model_dump() | {"role": item.awaiting.value, "token": approval.token()}
        try:
            message = ports.desk.submit(item, run_input)
        except Refused as exc:
            raise c.refuse(
                request, 409, exc.field, f"The run did not take the approval: {exc.rule}.", "approval"
            ) from None
        return {"ok": True, "message": message}
