"""pesprobe.md."""
