"""Passkeys (WebAuthn credentials) pinned for approvers, and checking an assertion against one (pure).

A passkey is pinned next to an approver's name in the governed approvers config (``passkeys``): its
credential id, its COSE public key (both base64url, as the browser and ``py_webauthn`` give them), the
relying party id and the origin it was enrolled on. An enrolment is a proposal of the config; it takes
effect only when admins approve it (``services.approvers.propose_enrolment``).

``check_assertion`` verifies a WebAuthn assertion (``navigator.credentials.get``) over a challenge the
caller chose against a pinned passkey: the credential is the pinned one, the client data is a
``webauthn.get`` for that challenge from the pinned origin, the authenticator data names the pinned rp
id, the user was verified, and the signature holds over the authenticator data and the client data
hash (``py_webauthn`` does the byte work). Each failure is a ``PasskeyRefused`` naming the field.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from webauthn import verify_authentication_response
from webauthn.helpers import decode_credential_public_key
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidCBORData, InvalidJSONStructure

from releasegate.errors import Refused


class PasskeyRefused(Refused):
    what = "passkey refused"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise PasskeyRefused(field, "not base64url") from None


class Passkey(BaseModel):
    """One approver's pinned WebAuthn credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    credential_id: str  # base64url
    public_key: str  # base64url of the COSE_Key the authenticator returned at registration
    rp_id: str  # e.g. "localhost" or "releasegate.bank.example"
    origin: str  # e.g. "http://localhost:4300"

    @field_validator("public_key")
    @classmethod
    def _cose_key(cls, text: str) -> str:
        try:
            decode_credential_public_key(unb64url(text, "public_key"))
        except (PasskeyRefused, InvalidCBORData, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a COSE public key ({exc})") from None
        return text

    @property
    def key_id(self) -> str:
        """SHA-256 of the COSE public key, hex: the key's identity in records and four-eyes checks."""
        return hashlib.sha256(unb64url(self.public_key, "public_key")).hexdigest()


class Assertion(BaseModel):
    """What ``navigator.credentials.get`` returned, base64url fields (``AuthenticatorAssertionResponse``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    credential_id: str
    authenticator_data: str
    client_data_json: str
    signature: str
    user_handle: str | None = None

    @classmethod
    def from_browser(cls, credential: dict[str, Any]) -> Assertion:
        """From the JSON the console's script posts (``PublicKeyCredential`` with base64url fields)."""
        try:
            r = credential["response"]
            return cls(
                credential_id=str(credential["id"]),
                authenticator_data=str(r["authenticatorData"]),
                client_data_json=str(r["clientDataJSON"]),
                signature=str(r["signature"]),
                user_handle=r.get("userHandle") or None,
            )
        except (KeyError, TypeError):
            raise PasskeyRefused("assertion", "not a WebAuthn assertion (navigator.credentials.get)") from None

    def client_data(self) -> dict[str, Any]:
        try:
            data = json.loads(unb64url(self.client_data_json, "client_data_json"))
        except ValueError:
            raise PasskeyRefused("client_data_json", "not JSON") from None
        if not isinstance(data, dict):
            raise PasskeyRefused("client_data_json", "not a JSON object")
        return data

    def browser_json(self) -> dict[str, Any]:
        response = {
            "authenticatorData": self.authenticator_data,
            "clientDataJSON": self.client_data_json,
            "signature": self.signature,
        }
        if self.user_handle:
            response["userHandle"] = self.user_handle
        return {"id": self.credential_id, "rawId": self.credential_id, "type": "public-key", "response": response}


def check_assertion(assertion: Assertion, passkey: Passkey, challenge: bytes, owner: str) -> None:
    """``PasskeyRefused`` unless ``assertion`` is ``passkey``'s user-verified signature over ``challenge``."""
    if assertion.credential_id != passkey.credential_id:
        raise PasskeyRefused(
            "credential_id",
            f"signed with credential {assertion.credential_id[:16]}, which is not the passkey pinned for {owner!r}",
        )
    client = assertion.client_data()
    if client.get("type") != "webauthn.get":
        raise PasskeyRefused("client_data_json.type", f"must be 'webauthn.get', got {client.get('type')!r}")
    if client.get("challenge") != b64url(challenge):
        raise PasskeyRefused(
            "challenge", "the passkey signed another statement: the statement was altered after signing"
        )
    if client.get("origin") != passkey.origin:
        raise PasskeyRefused(
            "origin", f"signed on {client.get('origin')!r}, but the passkey is pinned for {passkey.origin!r}"
        )
    try:
        verify_authentication_response(
            credential=assertion.browser_json(),
            expected_challenge=challenge,
            expected_rp_id=passkey.rp_id,
            expected_origin=passkey.origin,
            credential_public_key=unb64url(passkey.public_key, "public_key"),
            credential_current_sign_count=0,  # counters are not tracked: many passkeys report 0
            require_user_verification=True,
        )
    except InvalidAuthenticationResponse as exc:
        text = str(exc)
        if "RP ID" in text:
            raise PasskeyRefused("rp_id", f"signed for another rp id than {passkey.rp_id!r}") from None
        if "verified" in text:
            raise PasskeyRefused(
                "user_verified", "the authenticator did not verify the user (PIN, biometric)"
            ) from None
        if "present" in text:
            raise PasskeyRefused("user_present", "the authenticator reports no user presence") from None
        raise PasskeyRefused("signature", f"the passkey's signature does not verify ({text})") from None
    except (InvalidJSONStructure, InvalidCBORData, ValueError) as exc:
        raise PasskeyRefused("assertion", f"unreadable WebAuthn assertion ({exc})") from None
