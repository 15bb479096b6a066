"""The row under the max-length field: "Longest that fits on this card: N tokens" and the preset
button that sets it, worked out from the model's config before anything is loaded
(desktop.logic.longest_context, core.context_plan)."""

from __future__ import annotations

import copy

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from tunesmith.desktop.logic.longest_context import LongestOffer, longest_offer, without_plan
from tunesmith.desktop.workers.background import run_in_background

PATH = "data.max_length"


class LongestContextRow(QWidget):
    """Follows the controller's hardware and settings; its button puts the length in the form's field."""

    def __init__(self, controller, form, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller, self.form = controller, form
        self.offer = LongestOffer(None, "")
        self.label = QLabel()
        self.label.setObjectName("longestContext")
        self.label.setWordWrap(True)
        # the settings column is narrow on a laptop: the words wrap to its width rather than widen it
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.button = QPushButton("Longest that fits")
        self.button.setObjectName("longestFits")
        self.button.setToolTip(
            "Set the max length to the longest this GPU can train for the chosen model and method "
            "(batch size 1), from its memory and this machine's RAM, before anything is loaded."
        )
        self.button.setEnabled(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        self._request = 0
        # a pool of its own: the answer takes milliseconds and should not queue behind a model loading
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.button.clicked.connect(self.use_longest)
        # The VRAM estimate is redone after every settings change (model, precision, method, LoRA).
        # Bound methods, not lambdas: Qt drops a connection to a method of a deleted widget, but a lambda
        # would keep calling into this row after its window closed (the controller outlives it).
        controller.sig_hardware.connect(self._changed)
        controller.sig_vram.connect(self._changed)
        controller.sig_vram_text.connect(self._changed)
        self.refresh()

    def _changed(self, *_what: object) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Work the longest length out again, in the background (reading the model's config)."""
        self._request += 1
        request = self._request
        config, hardware = copy.deepcopy(self.controller.config), self.controller.hardware
        said = without_plan(config, hardware)
        if said is not None:  # nothing to read or work out: said at once
            self._show(request, said)
            return
        run_in_background(
            lambda: longest_offer(config, hardware),
            lambda offer: self._show(request, offer),
            lambda error: self._show(request, LongestOffer(None, f"Longest that fits: unknown ({error})")),
            pool=self.pool,
        )

    def _show(self, request: int, offer: LongestOffer) -> None:
        if request != self._request:
            return  # the settings changed since: a newer answer is on its way
        self.offer = offer
        self.label.setText(offer.text)
        self.button.setEnabled(offer.tokens is not None)

    def use_longest(self) -> None:
        """The preset: the field takes the longest length (as if typed: the form reports the change)."""
        if self.offer.tokens is not None:
            editor = self.form.editors[PATH]
            editor.setValue(min(self.offer.tokens, editor.maximum()))
