"""Data: the :class:`Scan` model, loaders and writers."""

from pesprobe.data.compact import read_compact, write_compact
from pesprobe.data.loader import load_scans
from pesprobe.data.published import write_published
from pesprobe.data.scan import LoadProblem, Scan, ScanSet

__all__ = ["LoadProblem", "Scan", "ScanSet", "load_scans", "read_compact", "write_compact", "write_published"]
