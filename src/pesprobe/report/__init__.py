"""pesprobe.report."""
