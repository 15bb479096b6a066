"""desktop/tabs package."""
