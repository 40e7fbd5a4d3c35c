"""FSD and the published metrics reproduce the golden values of ../shared/golden to 1e-9 relative."""

import json

import numpy as np
import pytest

from pesprobe.data import load_scans
from pesprobe.metrics import PUBLISHED, scan_metrics
from pesprobe.potentials.registry import resolve

from conftest import GOLDEN


@pytest.mark.parametrize("spec", ["lj", "morse"])
def test_golden_values_reproduced(sample_dir, spec):
    golden = json.loads((GOLDEN / f"sample_{spec}.json").read_text())
    scans = load_scans(sample_dir)
    assert sorted(scans.ids()) == sorted(golden)
    potential = resolve(spec)
    for scan in scans:
        metrics = scan_metrics(scan, potential.predict(scan.numbers, scan.positions))
        want = golden[scan.id]
        assert metrics.equilibrium_index == want["equilibrium_index"], scan.id
        for name in PUBLISHED:
            np.testing.assert_allclose(metrics.values[name], want[name], rtol=1e-9, err_msg=f"{scan.id} {name}")
