"""core/training package."""
