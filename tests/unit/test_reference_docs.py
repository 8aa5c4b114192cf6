"""The reference pages are generated from the code when the site is built (docs/hooks/reference.py)."""

import importlib.util

import typer

from releasegate.cli import app
from releasegate.policy.models import ModelSpec
from releasegate.settings import Settings
from tests.conftest import ROOT


def hook():
    spec = importlib.util.spec_from_file_location("reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(cmd, path=("releasegate",)):
    for name, sub in getattr(cmd, "commands", {}).items():
        if not sub.hidden:
            yield " ".join((*path, name))
            yield from commands(sub, (*path, name))


def test_every_command_and_option_of_the_app_is_on_the_page():
    page = hook().on_page_markdown("intro\n<!-- generated: cli -->\n", None, None, None)
    listed = list(commands(typer.main.get_command(app)))
    assert len(listed) > 40
    for path in listed:
        assert f"`{path}`" in page, path
    report = page[page.index("### `releasegate report`") :].split("\n### ")[0]
    assert "`--week`" in report and "`--publish`, `--no-publish`" in report and "`True`" in report
    assert "<!-- generated" not in page and page.startswith("intro\n")


def test_every_setting_and_manifest_field_is_on_the_configuration_page():
    page = hook().on_page_markdown("<!-- generated: settings -->\n<!-- generated: manifest -->", None, None, None)
    for name in Settings.model_fields:
        assert f"`RELEASEGATE_{name.upper()}`" in page, name
    for name in ModelSpec.model_fields:
        assert f"| `{name}` |" in page, name
    assert "| `risk_tier` | `standard` or `high` |" in page  # an enum lists its values


def test_the_pages_carry_the_markers_the_hook_fills():
    assert "<!-- generated: cli -->" in (ROOT / "docs/reference/commands.md").read_text()
    text = (ROOT / "docs/reference/configuration.md").read_text()
    assert "<!-- generated: settings -->" in text and "<!-- generated: manifest -->" in text
    assert "docs/hooks/reference.py" in (ROOT / "mkdocs.yml").read_text()
