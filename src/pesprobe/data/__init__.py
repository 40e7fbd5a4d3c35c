"""pesprobe.data."""
