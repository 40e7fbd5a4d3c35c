"""pesprobe.scan."""
