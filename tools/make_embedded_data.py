"""Rebuild ``src/pesprobe/resources/bsct_spice_mini`` from the published BSCT-SPICE sample.

Usage: python tools/make_embedded_data.py ../shared/data/bsct_spice_sample
"""

import shutil
import sys
from pathlib import Path

from pesprobe.data import ScanSet, load_scans, write_compact

CHOSEN = ["C-O/101", "C-P/3299", "C-S/713", "N-N/2793", "N-O/4583", "N-P/4110"]

if __name__ == "__main__":
    source = Path(sys.argv[1])
    full = load_scans(source, cache=False)
    target = Path(__file__).resolve().parents[1] / "src" / "pesprobe" / "resources" / "bsct_spice_mini"
    subset = ScanSet([full[i] for i in CHOSEN], source="BSCT-SPICE (embedded subset)")
    for scan in subset:
        scan.meta["source"] = f"BSCT-SPICE/{scan.id}"
    write_compact(subset, target / "scans.npz")
    shutil.copy(source / "LICENSE", target / "LICENSE")
    print(f"wrote {len(subset)} scans to {target}")
