"""No false alarm under a good potential: short GFN2-xTB NVE runs at 500 K (the full check, 11
molecules x 3 seeds x 2 ps, is ``benchmarks/md_monitor_false_alarms.py``)."""

from __future__ import annotations

import pytest

pytest.importorskip("tblite")

from pesprobe.md.ase_engine import run_ase_trajectory  # noqa: E402
from pesprobe.md.config import MDConfig  # noqa: E402
from pesprobe.md.monitor import FailureMonitor  # noqa: E402

#: S, P and an intramolecular hydrogen bond (acetohydroxamic acid's O-H···O=C)
NAMES = ("ethanethiol", "trimethylphosphine", "acetohydroxamic_acid")


def test_gfn2_xtb_at_500_k_raises_no_alarm_and_every_bond_is_watched():
    from rdkit import Chem

    from pesprobe.md.systems import preset_molecules
    from pesprobe.potentials.registry import calculator_factory
    from pesprobe.scan.inputs import packaged_smiles

    smiles = {name: smi for smi, name in packaged_smiles("bsct_xtb.smi")}
    cfg = MDConfig(temperature_K=500.0, length_ps=0.15, seeds=(0,), save_every=0)
    factory = calculator_factory("gfn2-xtb")
    for mol in preset_molecules(NAMES, fmax_eV_A=0.02):
        n_bonds = Chem.AddHs(Chem.MolFromSmiles(smiles[mol.id])).GetNumBonds()
        assert FailureMonitor([mol.numbers], [mol.positions], cfg).bonded0.sum() == n_bonds, mol.id
        raw = run_ase_trajectory(mol, 0, factory, cfg)
        assert raw.failure is None, (mol.id, raw.failure)
