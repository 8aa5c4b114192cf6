"""A software WebAuthn authenticator for tests: an EC P-256 key, authenticatorData and clientDataJSON
built by hand and signed as a platform authenticator signs them (no mock of releasegate's code)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from releasegate.policy.passkeys import Assertion, Passkey, b64url

RP_ID = "localhost"
ORIGIN = "http://localhost:4300"


@dataclass
class SoftAuthenticator:
    rp_id: str = RP_ID
    origin: str = ORIGIN
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        n = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})

    def passkey(self) -> Passkey:
        return Passkey(
            credential_id=b64url(self.credential_id),
            public_key=b64url(self.cose_public_key()),
            rp_id=self.rp_id,
            origin=self.origin,
        )

    def get(
        self,
        challenge: bytes,
        *,
        user_verified: bool = True,
        rp_id: str | None = None,
        origin: str | None = None,
        kind: str = "webauthn.get",
    ) -> Assertion:
        """``navigator.credentials.get`` over ``challenge``."""
        self.sign_count += 1
        flags = 0x01 | (0x04 if user_verified else 0)
        auth_data = (
            hashlib.sha256((rp_id or self.rp_id).encode()).digest()
            + bytes([flags])
            + self.sign_count.to_bytes(4, "big")
        )
        client = json.dumps(
            {"type": kind, "challenge": b64url(challenge), "origin": origin or self.origin, "crossOrigin": False}
        ).encode()
        signature = self.key.sign(auth_data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return Assertion(
            credential_id=b64url(self.credential_id),
            authenticator_data=b64url(auth_data),
            client_data_json=b64url(client),
            signature=b64url(signature),
        )

    def browser_json(self, challenge: bytes, **kw: Any) -> dict[str, Any]:
        """What the console's script posts after ``navigator.credentials.get``."""
        return self.get(challenge, **kw).browser_json()

    def create(self, challenge: bytes, *, origin: str | None = None, user_verified: bool = True) -> dict[str, Any]:
        """``navigator.credentials.create`` (attestation "none"), as the console's script posts it."""
        flags = 0x01 | 0x40 | (0x04 if user_verified else 0)  # UP, AT (attested credential data), UV
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([flags])
            + self.sign_count.to_bytes(4, "big")
            + bytes(16)  # AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose_public_key()
        )
        client = json.dumps(
            {"type": "webauthn.create", "challenge": b64url(challenge), "origin": origin or self.origin}
        ).encode()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cid = b64url(self.credential_id)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "response": {"clientDataJSON": b64url(client), "attestationObject": b64url(attestation)},
        }
