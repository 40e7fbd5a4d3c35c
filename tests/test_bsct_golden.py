"""FSD and the published metrics reproduce the golden values to 1e-9 relative.

The golden values come from ``../shared/golden`` (all 27 sample scans; skipped when ``../shared`` is
absent) and, for the six scans embedded in pesprobe, from copies of those values in
``tests/data/golden`` (always run; see its README for their provenance).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.metrics import PUBLISHED, scan_metrics
from pesprobe.potentials.registry import resolve

from conftest import GOLDEN

EMBEDDED_GOLDEN = Path(__file__).parent / "data" / "golden"
SPECS = ["lj", "morse"]


def _check(scans, golden: dict, spec: str) -> None:
    assert sorted(scans.ids()) == sorted(golden)
    potential = resolve(spec)
    for scan in scans:
        metrics = scan_metrics(scan, potential.predict(scan.numbers, scan.positions))
        want = golden[scan.id]
        assert metrics.equilibrium_index == want["equilibrium_index"], scan.id
        for name in PUBLISHED:
            np.testing.assert_allclose(metrics.values[name], want[name], rtol=1e-9, err_msg=f"{scan.id} {name}")


@pytest.mark.parametrize("spec", SPECS)
def test_golden_values_reproduced_on_embedded_scans(spec):
    golden = json.loads((EMBEDDED_GOLDEN / f"embedded_{spec}.json").read_text())
    _check(load_scans(embedded_scans_path()), golden, spec)


@pytest.mark.parametrize("spec", SPECS)
def test_golden_values_reproduced(sample_dir, spec):
    """All 27 sample scans; and the embedded copies are verbatim copies for scans with identical frames."""
    golden = json.loads((GOLDEN / f"sample_{spec}.json").read_text())
    sample = load_scans(sample_dir)
    _check(sample, golden, spec)
    embedded = load_scans(embedded_scans_path())
    for scan in embedded:
        for field in ("numbers", "positions", "coordinate", "ref_energy", "ref_forces"):
            np.testing.assert_array_equal(getattr(scan, field), getattr(sample[scan.id], field),
                                          err_msg=f"{scan.id} {field}")
    copy = json.loads((EMBEDDED_GOLDEN / f"embedded_{spec}.json").read_text())
    assert copy == {scan_id: golden[scan_id] for scan_id in embedded.ids()}
