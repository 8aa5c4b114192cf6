"""Layout rules of the design card that code can check."""

import ast

from tests.conftest import ROOT

PKG = ROOT / "src" / "releasegate"
IO_MODULES = {"cli.py", "demo.py", "__main__.py"}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_policy_modules_never_import_prefect():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("adapters", "migrations") or rel.name in IO_MODULES:
            continue
        offenders += [f"{rel}: {m}" for m in _imports(path) if m.split(".")[0] in ("prefect", "mlflow")]
    assert not offenders, offenders


def test_layout_exists():
    for name in ("pyproject.toml", "prefect.yaml", "flows", "deployments", "blocks", "src/releasegate", "tests"):
        assert (ROOT / name).exists(), name
