"""Qt-free logic of the desktop app: plain data and functions, no PySide6 or pyqtgraph (import-linter
checks it), so it can be tested and reasoned about without a window."""
