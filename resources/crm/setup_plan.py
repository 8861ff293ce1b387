"""What `crm setup` found and will do: a plan of steps, shown before anything is changed.

A step is `ok` (already as the mappings need it), `create` (the command creates it), `manual`
(a person must do it in the CRM; the step says exactly what), or `warn` (works, but worth
knowing). The CRM is ready for a push when no step is `manual`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK, CREATE, MANUAL, WARN = "ok", "create", "manual", "warn"


@dataclass(frozen=True)
class Step:
    action: str
    what: str
    detail: str = ""
    # For `create` steps: the request body the command sends (never holds a credential).
    payload: dict[str, Any] = field(default_factory=dict, compare=False)
    object_type: str = ""
    kind: str = ""  # "group" or "property" for HubSpot creates


@dataclass(frozen=True)
class SetupPlan:
    target: str
    steps: tuple[Step, ...]

    @property
    def creates(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action == CREATE)

    @property
    def manual(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action == MANUAL)

    def lines(self) -> list[str]:
        return [
            f"{step.action:>6}  {step.what}" + (f": {step.detail}" if step.detail else "")
            for step in self.steps
        ]


@dataclass(frozen=True)
class FieldNeed:
    """A target field a mapping writes: its name, type, longest text and whether it is the key."""

    name: str
    type: str
    max_length: int | None
    key: bool
    mapping: str
    source: str
