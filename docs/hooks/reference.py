"""MkDocs hook: the CLI and configuration reference pages are generated from the code at build time.

A page holding ``<!-- generated: cli -->`` gets every command of the Typer app (usage, help, arguments and
options, read from the app itself); ``<!-- generated: settings -->`` the ``RELEASEGATE_`` settings (from
the pydantic-settings model); ``<!-- generated: manifest -->`` the model manifest's fields (from its
pydantic models). The reference therefore cannot drift from the code: a command, option or field added
or removed shows up (or disappears) at the next ``mkdocs build``.
"""

from __future__ import annotations

import inspect
import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

MARKERS = ("cli", "settings", "manifest")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for name in MARKERS:
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, RENDER[name]())
    return markdown


# --- the CLI ---------------------------------------------------------------------------------------
# Read through the attributes Typer's command objects share (``commands``, ``params``, ``opts``), not
# through click's classes: Typer ships its own copy of click.


def cli_markdown() -> str:
    import typer

    from releasegate.cli import app

    return "\n".join(_command(["releasegate"], typer.main.get_command(app), top=True))


def _command(path: list[str], cmd: Any, top: bool = False) -> list[str]:
    subs = getattr(cmd, "commands", None)
    if subs is None:
        return _leaf(path, cmd)
    out: list[str] = [] if top else [f"## `{' '.join(path)}`", "", _first_paragraph(cmd.help), ""]
    if not top and any(not p.hidden and p.name != "help" for p in cmd.params):  # the group runs by itself too
        out += _leaf(path, cmd, heading=False, suffix=" [COMMAND]")
    leaves = [(n, c) for n, c in subs.items() if not c.hidden and getattr(c, "commands", None) is None]
    groups = [(n, c) for n, c in subs.items() if not c.hidden and getattr(c, "commands", None) is not None]
    if top and leaves:
        out += ["## `releasegate`", ""]
    for name, sub in sorted(leaves):
        out += _leaf([*path, name], sub)
    for name, sub in sorted(groups):
        out += _command([*path, name], sub)
    return out


def _leaf(path: list[str], cmd: Any, heading: bool = True, suffix: str = "") -> list[str]:
    params = [p for p in cmd.params if not p.hidden and p.name != "help"]
    args = [f"{(p.metavar or p.name).upper()}{'…' if p.nargs == -1 else ''}" for p in params if _is_argument(p)]
    usage = " ".join([*path, *(["[OPTIONS]"] if any(not _is_argument(p) for p in params) else []), *args])
    lines = [*([f"### `{' '.join(path)}`", ""] if heading else []), "```text", usage + suffix, "```", ""]
    if cmd.help and heading:
        lines += [_first_paragraph(cmd.help), ""]
    if params:
        lines += ["| argument / option | default | meaning |", "|---|---|---|", *map(_param_row, params), ""]
    return lines


def _is_argument(param: Any) -> bool:
    return bool(param.param_type_name == "argument")


def _param_row(param: Any) -> str:
    if _is_argument(param):
        names = f"`{(param.metavar or param.name).upper()}`"
    else:
        names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    default = param.default
    if param.required:
        shown = "required"
    elif default is None or default == () or default == [] or (default is False and param.is_flag):
        shown = ""
    else:
        shown = f"`{getattr(default, 'value', default)}`"
    return f"| {names} | {shown} | {_text(param.help)} |"


def _first_paragraph(text: str | None) -> str:
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split()).replace("|", "\\|")


# --- settings and the manifest ---------------------------------------------------------------------


def settings_markdown() -> str:
    from releasegate.console_settings import ConsoleOidcSettings
    from releasegate.settings import Settings

    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for model in (Settings, ConsoleOidcSettings):
        prefix = model.model_config.get("env_prefix", "")
        for name, field in model.model_fields.items():
            rows.append(
                f"| `{prefix}{name.upper()}` | {_type(field.annotation)} | {_default(field)} "
                f"| {_text(field.description)} |"
            )
    return "\n".join(rows) + "\n"


def manifest_markdown() -> str:
    from releasegate.policy.models import ModelManifest

    out: list[str] = []
    seen: set[type[BaseModel]] = set()
    _model(ModelManifest, out, seen)
    return "\n".join(out)


def _model(model: type[BaseModel], out: list[str], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    doc = inspect.getdoc(model) or ""
    out += [f"### `{model.__name__}`", ""]
    if doc and doc != inspect.getdoc(BaseModel):
        out += [" ".join(doc.split("\n\n")[0].split()), ""]
    out += ["| field | type | default | meaning |", "|---|---|---|---|"]
    nested: list[type[BaseModel]] = []
    for name, field in model.model_fields.items():
        out.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {_text(field.description)} |")
        nested += [t for t in _types_in(field.annotation) if issubclass(t, BaseModel)]
    out.append("")
    for sub in nested:
        _model(sub, out, seen)


def _types_in(annotation: Any) -> list[type]:
    if isinstance(annotation, type):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in _types_in(arg)]


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " or ".join(f"`{m.value}`" for m in annotation)
    if origin is not None:
        args = ", ".join(_type(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{getattr(value, 'value', value)}`"


def _text(description: str | None) -> str:
    return " ".join((description or "").split()).replace("|", "\\|")


RENDER = {"cli": cli_markdown, "settings": settings_markdown, "manifest": manifest_markdown}
