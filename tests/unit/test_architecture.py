"""Layout rules of the design card that code can check (docs/reference/layout.md)."""

import ast
import subprocess

from tests.conftest import ROOT

PKG = ROOT / "src" / "releasegate"
IO_TOP = {"cli", "tools", "testing", "adapters", "bootstrap.py", "__main__.py"}  # may talk to Prefect / MLflow
ORCHESTRATION = ("prefect", "mlflow")


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _modules(top):
    return [p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] == top]


def test_only_adapters_tools_testing_and_the_cli_import_prefect_or_mlflow():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in IO_TOP or rel.parts[:2] == ("store", "migrations"):
            continue
        offenders += [f"{rel}: {m}" for m in _imports(path) if m.split(".")[0] in ORCHESTRATION]
    assert not offenders, offenders


def test_policy_is_pure_and_stores_do_not_reach_up():
    """policy/ imports no store, service, adapter or tool; store/ no service, adapter or tool."""
    bad = []
    for top, banned in (
        ("policy", ("store", "services", "adapters", "tools", "cli", "bootstrap")),
        ("store", ("services", "adapters", "tools", "cli", "bootstrap")),
    ):
        for path in _modules(top):
            for m in _imports(path):
                parts = m.split(".")
                if parts[0] == "releasegate" and len(parts) > 1 and parts[1] in banned:
                    bad.append(f"{path.relative_to(PKG)}: {m}")
                if top == "policy" and parts[0] in ("sqlalchemy", "httpx", "requests"):
                    bad.append(f"{path.relative_to(PKG)}: {m}")
    assert not bad, bad


def test_services_and_flows_find_each_other_without_sys_path():
    hits = subprocess.run(["git", "grep", "-n", "sys.path", "--", "src", "flows"], cwd=ROOT, capture_output=True)
    assert hits.stdout.decode() == "", hits.stdout.decode()


def test_no_module_over_the_size_rule():
    """The design card: no module over ~400 lines (a little slack for docstrings)."""
    big = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in [*PKG.rglob("*.py"), *(ROOT / "flows").glob("*.py")]
        if (n := len(p.read_text().splitlines())) > 450
    ]
    assert not big, big


def test_layout_exists():
    for name in ("pyproject.toml", "prefect.yaml", "flows", "deployments", "blocks", "src/releasegate", "tests"):
        assert (ROOT / name).exists(), name
    for folder in ("policy", "store", "services", "adapters", "cli", "tools"):
        assert (PKG / folder / "__init__.py").is_file(), folder


def test_the_library_imports_no_example_model_and_examples_import_no_internals_but_the_demo_harness():
    """releasegate governs a team's models through the manifest; it never imports an example project.
    An example project's model code (data, training, jobs) uses only the public contract
    (``releasegate.governed``, ``releasegate.evidence``); its ``demo`` module may drive the demo harness."""
    examples = ROOT / "examples"
    packages = {p.parent.name for p in examples.glob("*/*/__init__.py")}
    assert packages >= {"credit_example", "diabetes_example"}
    bad = [
        f"{path.relative_to(ROOT)}: {m}"
        for path in [*PKG.rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
        for m in _imports(path)
        if m.split(".")[0] in packages
    ]
    assert not bad, bad
    public = {"releasegate", "releasegate.evidence"}
    internal = [
        f"{path.relative_to(ROOT)}: {m}"
        for path in examples.rglob("*.py")
        if path.name != "demo.py"
        for m in _imports(path)
        if m.split(".")[0] == "releasegate" and m not in public
    ]
    assert not internal, internal
