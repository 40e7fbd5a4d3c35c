"""pesprobe.evaluate."""
