"""Public BSCT API: ``pesprobe.bsct.evaluate(calc, data, out=None, jobs=1, ...) -> BSCTResult``."""

from pesprobe.data import load_scans
from pesprobe.evaluate import BSCTResult, evaluate, merge

__all__ = ["BSCTResult", "evaluate", "load_scans", "merge"]
