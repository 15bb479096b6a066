"""desktop/widgets package."""
