"""desktop/workers package."""
