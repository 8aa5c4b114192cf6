"""Approvers' private keys on their own machines: ``<key dir>/<name>.pem`` (Ed25519, PKCS#8, mode 0600).

The key dir is ``RELEASEGATE_KEY_DIR``, default ``~/.releasegate/keys`` in the approver's home (not the
service's ``RELEASEGATE_HOME``: the service never holds an approver's private key)."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.errors import Refused
from releasegate.policy.signatures import public_hex
from releasegate.store.trust import create_secret_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class KeyRefused(Refused):
    what = "key refused"


def key_path(folder: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise KeyRefused("name", f"{name!r}: letters, digits and . _ @ - only (your approver name)")
    return folder.expanduser() / f"{name}.pem"


def create_key(folder: Path, name: str) -> tuple[Path, str]:
    """Make NAME's key; returns (private key file, public key hex). Never overwrites an existing key."""
    path = key_path(folder, name)
    if path.exists():
        raise KeyRefused(
            "name", f"{path} exists: a key is never overwritten (its public key may be pinned); delete it first"
        )
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    create_secret_file(path, pem)
    return path, public_hex(load_key(path).public_key())


def load_key(path: Path) -> Ed25519PrivateKey:
    if not path.is_file():
        raise KeyRefused("key", f"no private key at {path}: run `releasegate keys init --name NAME` first")
    if path.stat().st_mode & 0o077:
        raise KeyRefused("key", f"{path} is readable by others: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyRefused("key", f"{path} is not an Ed25519 private key made by `releasegate keys init`")
    return key
