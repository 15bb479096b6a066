"""core/models package."""
