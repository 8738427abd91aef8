"""The rules that turn signals into ``ai_generated``, ``c2pa_state`` and ``training_mining``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.provenance.signals import Signal

TRAINING_USES = ("notAllowed", "constrained", "allowed")
"""``training_mining`` values, strictest first."""


@dataclass
class Provenance:
    """What one file's metadata says about its origin and its use for training."""

    ai_generated: bool | None = None
    c2pa_state: str | None = None
    """absent, remote_only, valid, trusted or invalid; None: not read (e.g. too large)."""
    training_mining: str | None = None
    signals: list[Signal] = field(default_factory=list)

    @property
    def ai_signals(self) -> str:
        """The signals as a JSON list (the ``ai_signals`` column)."""
        return json.dumps([s.as_dict() for s in self.signals], ensure_ascii=False)

    def columns(self) -> dict:
        """The four lake columns (``ai_signals`` as its JSON string)."""
        return {**self.as_dict(), "ai_signals": self.ai_signals}

    def as_dict(self) -> dict:
        """The four columns by name, with ``ai_signals`` as a list."""
        return {
            "ai_generated": self.ai_generated,
            "ai_signals": [s.as_dict() for s in self.signals],
            "c2pa_state": self.c2pa_state,
            "training_mining": self.training_mining,
        }


def ai_generated(signals: Iterable[Signal]) -> bool | None:
    """True when a counted signal declares a trained model; False when counted signals declare
    only other origins; None when none declares anything."""
    declared = {s.declares for s in signals if s.counted and s.declares}
    if "ai" in declared:
        return True
    return False if "other" in declared else None


def training_mining(uses: Iterable[str]) -> str | None:
    """The strictest counted training entry: notAllowed, else constrained, else allowed."""
    given = set(uses)
    return next((u for u in TRAINING_USES if u in given), None)
