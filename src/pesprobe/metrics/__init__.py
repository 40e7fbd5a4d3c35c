"""pesprobe.metrics."""
