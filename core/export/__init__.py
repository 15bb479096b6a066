"""core/export package."""
