"""One exception tree: every exception releasegate defines descends from ``ReleasegateError``."""

import ast
import builtins

import pytest
from typer.testing import CliRunner

from releasegate.errors import ConfigError, Failed, Refused, ReleasegateError, Unavailable
from tests.conftest import ROOT

BUILTIN_ERRORS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
ROOTS = {"ReleasegateError", "Refused", "Unavailable", "NotFound", "Failed", "ConfigError"}


def exception_classes():
    for folder in ("src/releasegate", "flows"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if bases & BUILTIN_ERRORS:
                        yield f"{path.relative_to(ROOT)}:{node.name}", bases


def test_every_exception_that_derives_from_a_builtin_one_is_also_in_the_tree():
    found = dict(exception_classes())
    assert "src/releasegate/store/trust.py:ServiceKeyError" in found  # the scan sees the modules
    outside = {
        name: sorted(bases)
        for name, bases in found.items()
        if not bases & ROOTS and not name.startswith("src/releasegate/errors.py:")
    }
    assert outside == {}


@pytest.mark.parametrize("cls", [Refused, ConfigError, Unavailable, Failed])
def test_the_branches_keep_the_builtin_bases_callers_catch(cls):
    assert issubclass(cls, ReleasegateError)
    assert issubclass(cls, ValueError if cls in (Refused, ConfigError) else RuntimeError)


def test_a_refusal_says_field_rule_and_fix():
    exc = Refused("ticket_ref", "required for prod", fix="give --ticket-ref")
    assert (exc.field, exc.rule, exc.fix) == ("ticket_ref", "required for prod", "give --ticket-ref")
    assert str(exc) == "refused: ticket_ref: required for prod (give --ticket-ref)"


def test_a_config_error_lists_every_problem():
    exc = ConfigError("blocks/x.yaml", None, "", problems=[("a", "must be > 0"), ("b", "unknown field")])
    assert str(exc).startswith("invalid configuration blocks/x.yaml: 2 problems:")
    assert "a: must be > 0" in str(exc) and "b: unknown field" in str(exc)


def test_the_cli_maps_the_tree_to_one_line_and_an_exit_code():
    import typer

    from releasegate.cli import RefusingGroup

    app = typer.Typer(cls=RefusingGroup)
    raised = {
        "refused": Refused("field", "rule"),
        "config": ConfigError("blocks/x.yaml", "a", "must be > 0"),
        "unavailable": Unavailable("the MLflow registry at http://127.0.0.1:5000 does not answer"),
        "failed": Failed("3 dates could not be scored"),
    }
    for name, exc in raised.items():
        app.command(name)(lambda exc=exc: (_ for _ in ()).throw(exc))
    runner = CliRunner()
    seen = {name: runner.invoke(app, [name]) for name in raised}
    assert {n: r.exit_code for n, r in seen.items()} == {"refused": 2, "config": 2, "unavailable": 2, "failed": 1}
    for name, res in seen.items():
        assert res.exception is None or isinstance(res.exception, SystemExit), name  # no traceback
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert "refused: a: must be > 0" not in seen["config"].output and "blocks/x.yaml" in seen["config"].output
