"""pesprobe.train."""
