"""The BSCT engine: runner, prediction cache, results and shard merging."""

from pesprobe.evaluate.merge import merge
from pesprobe.evaluate.result import BSCTResult
from pesprobe.evaluate.runner import evaluate

__all__ = ["BSCTResult", "evaluate", "merge"]
