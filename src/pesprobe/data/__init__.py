"""Data: the :class:`Scan` model, loaders and writers."""

from pesprobe.data.compact import read_compact, write_compact
from pesprobe.data.extxyz_scans import read_scans_extxyz, write_scans_extxyz
from pesprobe.data.loader import load_scans
from pesprobe.data.published import write_published
from pesprobe.data.scan import LoadProblem, Scan, ScanSet

__all__ = ["LoadProblem", "Scan", "ScanSet", "load_scans", "read_compact", "read_scans_extxyz", "write_compact",
           "write_published", "write_scans_extxyz"]
