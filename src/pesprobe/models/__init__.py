"""pesprobe.models."""
