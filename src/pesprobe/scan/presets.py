"""Built-in recipes: ``xtb-organic`` (a BSCT-xTB scan set), ``xtb-train`` and ``xtb-train-large`` (GFN2-xTB
training sets)."""

from __future__ import annotations

from dataclasses import dataclass

from pesprobe.scan.graph import PUBLISHED_BOND_TYPES


@dataclass(frozen=True)
class ScanPreset:
    """A scan-set recipe: packaged SMILES list, reference, bond types and scans per type."""

    smiles_file: str
    reference: str
    bond_types: tuple[str, ...]
    per_type: int
    n_points: int
    seed: int
    dataset: str
    description: str


@dataclass(frozen=True)
class SamplePreset:
    """A training-set recipe: packaged SMILES list, reference, temperatures (K), counts, MD steps before
    the first snapshot and the bond-stretch factor range (see :class:`pesprobe.data.sample.SampleSettings`)."""

    smiles_file: str
    reference: str
    temperatures: tuple[float, ...]
    snapshots: int
    interval: int
    stretches: int
    seed: int
    description: str
    equilibration: int = 50
    stretch_range: tuple[float, float] = (0.7, 1.6)


SCAN_PRESETS = {
    "xtb-organic": ScanPreset(
        smiles_file="bsct_xtb.smi", reference="gfn2-xtb", bond_types=PUBLISHED_BOND_TYPES, per_type=8,
        n_points=100, seed=0, dataset="BSCT-xTB",
        description="BSCT-xTB: 8 scans for each of the nine published bond types (72 scans x 100 points) on "
                    "67 drug-like and small organic molecules, GFN2-xTB labels"),
}

SAMPLE_PRESETS = {
    "xtb-train": SamplePreset(
        smiles_file="train_xtb.smi", reference="gfn2-xtb", temperatures=(300.0, 600.0, 1200.0), snapshots=25,
        interval=10, stretches=25, seed=0,
        description="72 small organic molecules (disjoint from xtb-organic), Langevin MD at 300/600/1200 K "
                    "plus 25 bond stretches each: ~7,300 GFN2-xTB structures"),
    "xtb-train-large": SamplePreset(
        smiles_file="train_xtb_large.smi", reference="gfn2-xtb", temperatures=(300.0, 600.0, 1200.0),
        snapshots=8, interval=10, stretches=20, seed=0, equilibration=20, stretch_range=(0.5, 2.0),
        description="492 molecules with H/C/N/O/P/S (130 with P, 136 with S; xtb-train plus enumerated "
                    "functional groups, disjoint from xtb-organic), Langevin MD at 300/600/1200 K plus 20 bond "
                    "stretches each across BSCT's 0.5x-2x: ~22,000 GFN2-xTB structures"),
}


def scan_preset(name: str) -> ScanPreset:
    """The scan preset ``name`` (ValueError listing the known ones otherwise)."""
    if name not in SCAN_PRESETS:
        raise ValueError(f"unknown scan preset {name!r}; known: {', '.join(SCAN_PRESETS)}")
    return SCAN_PRESETS[name]


def sample_preset(name: str) -> SamplePreset:
    """The sampling preset ``name`` (ValueError listing the known ones otherwise)."""
    if name not in SAMPLE_PRESETS:
        raise ValueError(f"unknown sampling preset {name!r}; known: {', '.join(SAMPLE_PRESETS)}")
    return SAMPLE_PRESETS[name]
