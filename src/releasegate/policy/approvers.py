"""The approvers config and how it may change (pure).

``ApproverConfig`` holds who may approve (``pm``, ``risk``, ``compliance``), grant (``exceptions``,
``overrides``), the key pinned for each name (``keys``), who administers this config (``admins``) and
extra owners of models (``owners``: model -> names, added to the manifest's ``owners``), the passkey
pinned for each name (``passkeys``: WebAuthn credentials, ``policy.passkeys``), who may sign in to
read without approving (``auditors``), which identity-provider groups give which console role
(``oidc_groups``: an OIDC sign-in gets the roles its groups map to, and still approves only from an
allow-list that names it) and where each name gets the notice that a promotion waits for them
(``emails``: name -> address).

It is a trust root: whoever may change it may pin their own keys. So the config in force is the one the
decision log holds (``services.approvers``), and a change is a decision signed by admin keys:

* every signer is on the ``admins`` list of the config in force and signs with the key pinned for them
  *there* (an admin cannot bring a key of their own);
* a change of ``keys`` or ``passkeys`` (a key added, replaced or removed) or a new admin needs two
  different admins (two names, two keys); any other change (allow-lists, owners) needs one;
* a passkey enrolment is a proposal without a signature: admins approve it like any other;
* a signature is over the proposed config's digest and the digest of the config it replaces, so it
  cannot be replayed on another proposal or after the config changed.

``config_digest`` is SHA-256 over the config's canonical JSON; ``differences`` names what two configs
disagree on (a Prefect block that differs from the governed config is refused naming it).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from releasegate.errors import Refused
from releasegate.policy.handshake import Role
from releasegate.policy.passkeys import Passkey
from releasegate.policy.signatures import Signed, Statement, parse_public_key, signature_by

_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
OidcRole = Literal["pm", "risk", "compliance", "auditor", "admin", "oncall"]


class ApproverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pm: list[str] = []
    risk: list[str] = []
    compliance: list[str] = []  # COMPLIANCE_GATE_PASS, for models of risk_tier "high"
    exceptions: list[str] = []  # who may grant a gate exception (never the person who asked for it)
    overrides: list[str] = []  # who may override a deferral (start a deferred run now, with a ticket)
    # Each approver's Ed25519 public key (hex, as `releasegate keys init` prints it): a prod promotion
    # takes signed approvals only (``policy.signatures``).
    keys: dict[str, str] = {}
    # Who may change this config (`releasegate approvers propose|approve`), each with a key in ``keys``.
    admins: list[str] = []
    # Owners of a model (model -> names) besides the manifest's ``owners``: never its approvers.
    owners: dict[str, list[str]] = {}
    # Each approver's WebAuthn credential (the console's passkey sign-in and passkey-signed approvals).
    passkeys: dict[str, Passkey] = {}
    # Who may sign in to the console to read (auditors, validators): never an approver by this alone.
    auditors: list[str] = []
    # The on-call engineers: they read the console, acknowledge gate failures and request or confirm a
    # model's halt (with Risk: one requests, a second person confirms); never an approver by this alone.
    oncall: list[str] = []
    # The console's OIDC sign-in: identity-provider group -> role. A role from a group never replaces
    # the allow-list: a signed-in name approves only for a role whose list names it.
    oidc_groups: dict[str, OidcRole] = {}

    # Each approver's e-mail address: the notice that a promotion waits for their approval.
    emails: dict[str, str] = {}

    @field_validator("emails")
    @classmethod
    def _emails_are_addresses(cls, emails: dict[str, str]) -> dict[str, str]:
        for name, address in emails.items():
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"emails.{name}: {address!r} is not an e-mail address (name@domain)")
        return emails

    @field_validator("keys")
    @classmethod
    def _keys_are_ed25519(cls, keys: dict[str, str]) -> dict[str, str]:
        for name, text in keys.items():
            parse_public_key(text, f"keys.{name}")
        return keys

    def allow_lists(self) -> dict[Role, list[str]]:
        return {Role.pm: list(self.pm), Role.risk: list(self.risk), Role.compliance: list(self.compliance)}

    def granted(self, name: str, groups_roles: list[str] | None = None) -> set[str]:
        """The console roles ``name`` holds: each role whose list names them (``pm``, ``risk``,
        ``compliance``, ``auditor``, ``admin``, ``oncall``), narrowed to ``groups_roles`` (what an OIDC sign-in's
        groups map to in ``oidc_groups``) when given: a group never adds a role the lists do not give."""
        lists = {r.value: names for r, names in self.allow_lists().items()}
        lists |= {"auditor": self.auditors, "admin": self.admins, "oncall": self.oncall}
        held = {role for role, names in lists.items() if name in names}
        return held if groups_roles is None else held & set(groups_roles)

    def names(self) -> set[str]:
        """Everyone this config names (who may enrol a passkey)."""
        lists = (self.pm, self.risk, self.compliance, self.exceptions, self.overrides, self.admins, self.auditors, self.oncall)
        return {n for names in lists for n in names}


# Fields added after configs were first recorded: left out of the canonical form while empty, so the
# digest of every config recorded before them stays what it was.
OPTIONAL_FIELDS: dict[str, Any] = {"passkeys": {}, "auditors": [], "oidc_groups": {}, "emails": {}, "oncall": []}


def canonical(config: ApproverConfig) -> dict[str, Any]:
    """The config as the log keeps it: keys lower-cased, every field present."""
    data = config.model_dump(mode="json")
    data["keys"] = {k: v.strip().lower() for k, v in data["keys"].items()}
    for name, empty in OPTIONAL_FIELDS.items():
        if data.get(name) == empty:
            del data[name]
    return data


def config_digest(config: ApproverConfig) -> str:
    return hashlib.sha256(json.dumps(canonical(config), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def differences(governed: ApproverConfig, other: ApproverConfig) -> list[str]:
    """What ``other`` changes against ``governed``, field by field (``keys.pm-anna replaced``, ...)."""
    a, b = canonical(governed), canonical(other)
    out: list[str] = []
    for field in ApproverConfig.model_fields:
        empty = OPTIONAL_FIELDS.get(field)
        x: Any = a.get(field, empty)
        y: Any = b.get(field, empty)
        if x == y:
            continue
        if isinstance(x, dict):
            for k in sorted(set(x) | set(y)):
                if k not in x:
                    out.append(f"{field}.{k} added")
                elif k not in y:
                    out.append(f"{field}.{k} removed")
                elif x[k] != y[k]:
                    changed = "replaced" if field in ("keys", "passkeys") else f"{x[k]} -> {y[k]}"
                    out.append(f"{field}.{k} {changed}")
        else:
            added, gone = [n for n in y if n not in x], [n for n in x if n not in y]
            parts = ([f"+{', +'.join(added)}"] if added else []) + ([f"-{', -'.join(gone)}"] if gone else [])
            out.append(f"{field} {' '.join(parts) or 'reordered'}")
    return out


def admins_needed(current: ApproverConfig, proposed: ApproverConfig) -> int:
    """Two admins for a key change or a new admin, one for anything else."""
    a, b = canonical(current), canonical(proposed)
    new_admin = any(n not in current.admins for n in proposed.admins)
    keys_changed = a["keys"] != b["keys"] or a.get("passkeys") != b.get("passkeys")
    return 2 if keys_changed or new_admin else 1


class ConfigRefused(Refused):
    what = "approvers config refused"


class ConfigStatement(Statement):
    """What an admin signs: this proposed config (digest) replacing that one (previous digest)."""

    action: Literal["propose", "approve", "invite"]  # invite: an enrolment invitation
    digest: str
    previous_digest: str
    admin: str
    signed_at: datetime


class SignedConfig(Signed):
    statement: ConfigStatement

    def record(self) -> dict[str, Any]:
        return {"statement": self.statement.model_dump(mode="json"), **self.proof()}


def sign_config(statement: ConfigStatement, key: Ed25519PrivateKey) -> SignedConfig:
    return SignedConfig(statement=statement, **signature_by(statement, key))


def check_admin_signature(signed: SignedConfig, current: ApproverConfig, digest: str, previous_digest: str) -> None:
    """``ConfigRefused`` unless an admin of ``current`` signed ``digest`` over ``previous_digest`` with
    the key ``current`` pins for them."""
    s = signed.statement
    if s.admin not in current.admins:
        raise ConfigRefused("by", f"{s.admin!r} is not an admin of the approvers config in force (`admins`)")
    pinned = current.keys.get(s.admin, "")
    if not pinned:
        raise ConfigRefused("by", f"admin {s.admin!r} has no key pinned in the approvers config in force")
    if signed.public_key.lower() != pinned.lower():
        raise ConfigRefused("key", f"signed with a key that is not admin {s.admin!r}'s pinned key")
    if not signed.verifies():
        raise ConfigRefused("signature", "the signature does not verify: the statement was altered")
    if s.digest != digest:
        raise ConfigRefused("digest", f"signed for config {s.digest[:16]}, not this proposal {digest[:16]}")
    if s.previous_digest != previous_digest:
        raise ConfigRefused(
            "previous_digest",
            f"signed over config {s.previous_digest[:16]}, but the config in force is {previous_digest[:16]}: "
            "the config changed since; propose again",
        )


def change_problem(current: ApproverConfig, proposed: ApproverConfig, signatures: list[dict[str, Any]]) -> str | None:
    """Why ``signatures`` (as recorded) do not make ``proposed`` the config in force after ``current``;
    None when they do. Re-run on every read: a record's fields are not trusted."""
    digest, previous = config_digest(proposed), config_digest(current)
    admins: set[str] = set()
    keys: set[str] = set()
    for raw in signatures:
        try:
            signed = SignedConfig(
                statement=ConfigStatement.model_validate(raw["statement"]),
                public_key=raw["public_key"],
                signature=raw["signature"],
            )
            check_admin_signature(signed, current, digest, previous)
        except (KeyError, TypeError, ValidationError) as exc:
            return f"signature unreadable: {exc}"
        except ConfigRefused as exc:
            return f"{exc.field}: {exc.rule}"
        admins.add(signed.statement.admin)
        keys.add(signed.key_id)
    need = admins_needed(current, proposed)
    if min(len(admins), len(keys)) < need:
        return f"needs {need} different admins (a key change or a new admin takes two), has {len(admins)}"
    return None


def unpinned_approval_problem(config: ApproverConfig, details: dict[str, Any]) -> str | None:
    """Why a recorded signed approval's key is not the one ``config`` pins for its approver (the Ed25519
    key of ``keys``, or the passkey of ``passkeys`` for ``signature_scheme: webauthn``); None when it is."""
    approver = str(details.get("approver"))
    if details.get("signature_scheme") == "webauthn":
        passkey = config.passkeys.get(approver)
        pinned, what = (passkey.public_key if passkey is not None else ""), "passkey"
    else:
        pinned, what = config.keys.get(approver, ""), "key"
    if not pinned:
        return f"the approvers config pins no {what} for {approver!r}"
    if pinned.lower() != str(details.get("public_key", "")).lower():
        return f"signed with a {what} that is not the one the approvers config pins for {approver!r}"
    return None
