"""One shape for every refusal: the field that broke a rule and the rule, said so a user can fix it.

``Refused`` is the base of ``DecisionRefused``, ``ApprovalRefused``, ``RollbackRefused`` and
``OverrideRefused``; the CLI prints any of them the same way (``cli._common.exit_refused``) and code
that only needs "was this refused, and why" catches ``Refused``. Pure: no I/O, importable anywhere.
"""

from __future__ import annotations


class Refused(ValueError):
    """``field``: which input broke a rule; ``rule``: the rule, phrased as what would be accepted."""

    what = "refused"

    def __init__(self, field: str, rule: str):
        self.field = field
        self.rule = rule
        super().__init__(f"{self.what}: {field}: {rule}")
