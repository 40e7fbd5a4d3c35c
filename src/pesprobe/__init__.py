"""pesprobe: potential-energy-surface smoothness tests for machine-learning interatomic potentials.

Sub-packages, by concern:

- :mod:`pesprobe.data`       the :class:`~pesprobe.data.Scan` data model, loaders and writers
- :mod:`pesprobe.potentials` the :class:`~pesprobe.potentials.Potential` interface and adapters
- :mod:`pesprobe.metrics`    FSD and diagnostics (pure functions)
- :mod:`pesprobe.evaluate`   the BSCT runner (cache, resume, processes, shards)
- :mod:`pesprobe.report`     tables, figures, the HTML page
- :mod:`pesprobe.scan`       scan generation with real reference methods
- :mod:`pesprobe.md`         MD stability and FSD correlation statistics
- :mod:`pesprobe.models`     the Transformer MLIP
- :mod:`pesprobe.train`      training loop, BSCT in the loop
"""

__version__ = "0.1.0"
