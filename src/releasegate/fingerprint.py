"""Environment fingerprint: a hash of the Python version, the platform and the installed distributions.

Two builds with the same fingerprint ran on the same interpreter, OS/architecture and package set, so
a model validated in staging behaves the same in the target environment (the reproducibility gate).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata


def environment_description() -> dict[str, object]:
    dists = sorted(
        {(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions() if d.metadata["Name"]}.items()
    )
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "distributions": [f"{n}=={v}" for n, v in dists],
    }


def fingerprint(description: dict[str, object] | None = None) -> str:
    desc = description or environment_description()
    body = "\n".join(
        [str(desc["python"]), str(desc["implementation"]), str(desc["platform"]), *desc["distributions"]]  # type: ignore[misc]
    )
    return hashlib.sha256(body.encode()).hexdigest()
