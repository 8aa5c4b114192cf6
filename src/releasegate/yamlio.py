"""The one strict YAML loader for releasegate's own files (blocks/*.yaml, event routes, prefect.yaml).

``yaml.safe_load`` keeps the last of two equal keys in a mapping and drops the first without a word: a
second ``windows:`` in the capacity policy silently removes a change freeze. ``load_yaml`` refuses a
duplicated key instead, naming the key, the file and both lines, and turns YAML syntax errors into the
same ``YamlError`` (file, line, rule). Anchors, aliases and merge keys (``<<: *x``, where an explicit
key may override a merged one) work as in ``yaml.safe_load``. Pure module: no clock, reads a file only
when given a ``Path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from releasegate.errors import ReleasegateError


class YamlError(ReleasegateError, ValueError):
    """A YAML file releasegate cannot accept: ``source`` (file), ``line`` (1-based or None), ``rule``."""

    def __init__(self, source: str, line: int | None, rule: str, key: Any = None):
        self.source, self.line, self.rule, self.key = source, line, rule, key
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {rule}")


class DuplicateKeyError(YamlError):
    """A mapping names the same key twice."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def __init__(self, stream: Any, source: str = "<yaml>"):
        super().__init__(stream)
        self.source = source
        self._checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Called on every mapping before its merge keys are resolved (and again, harmlessly, on nodes
        # already flattened): check each mapping once, on the keys as written.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._refuse_duplicates(node)
        super().flatten_mapping(node)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the constructor refuses unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    self.source,
                    line,
                    f"duplicate key {key!r} (first given on line {seen[key]}); a mapping may name each key "
                    "only once, the second would silently replace the first: remove or merge one of them",
                    key=key,
                )
            seen[key] = line


def load_yaml(text_or_path: str | Path, source: str | None = None) -> Any:
    """Parse YAML text (a ``str``) or the file at a ``Path``; raise ``YamlError`` naming file, line and rule.

    ``source`` names the text in messages (default: the path, or ``<yaml>``)."""
    if isinstance(text_or_path, Path):
        source = source or str(text_or_path)
        text = text_or_path.read_text()
    else:
        text = text_or_path
        source = source or "<yaml>"
    loader = StrictSafeLoader(text, source)
    try:
        return loader.get_single_data()
    except DuplicateKeyError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        rule = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise YamlError(source, line, f"not valid YAML: {rule}") from None
    except yaml.YAMLError as exc:
        raise YamlError(source, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
