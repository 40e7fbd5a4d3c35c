"""The scans embedded in the package: six published BSCT-SPICE scans (MIT licence, see
``resources/bsct_spice_mini/LICENSE``), one each of C–O, C–P, C–S, N–N, N–O and N–P bonds on small
molecules (5–20 atoms), stored in the compact format. They make ``pesprobe bsct`` with no
arguments a one-minute demonstration; they are not for training."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

EMBEDDED_FILE = "bsct_spice_mini/scans.npz"


def embedded_scans_path() -> Path:
    """Path of the embedded compact scan file."""
    return Path(str(resources.files("pesprobe") / "resources" / EMBEDDED_FILE))
