"""pesprobe.study."""
