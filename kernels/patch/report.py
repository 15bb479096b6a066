"""PatchReport: what patch_model replaced, and the undo records that put every patched module back."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..memory.host_budget import HostBudget


@dataclass
class PatchReport:
    """What patch_model replaced; `revert()` puts every patched module back as it was."""

    model_type: str | None
    patched: bool
    replaced: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    host_budget: HostBudget | None = None  # the pinned host memory the patch may hold, and holds
    _undo: list = field(default_factory=list, repr=False)

    def revert(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        self.patched = False


def set_undoable(module: nn.Module, name: str, value, report: PatchReport) -> None:
    """Set an instance attribute of `module`, recording in `report` how to put the old one back."""
    had = name in module.__dict__
    old = module.__dict__.get(name)

    def undo():
        if had:
            setattr(module, name, old)
        else:
            module.__dict__.pop(name, None)

    object.__setattr__(module, name, value)
    report._undo.append(undo)
