"""The MD failure monitor on small analytic potentials: bonds perceived with X–H, a broken C–H bond,
an H transfer, a clash, a held new bond vs a transient contact, a temperature blow-up, a smooth control."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.data import covalent_radii

from calcs import SpringNetwork, elastic_network
from pesprobe.md.ase_engine import run_ase_trajectory
from pesprobe.md.batched import BatchedIntegrator
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import FailureMonitor, covalent_bonds
from pesprobe.md.systems import Molecule
from pesprobe.scan.graph import BOND_SCALE
from pesprobe.scan.inputs import from_smiles

CFG = MDConfig(temperature_K=500.0, length_ps=0.3, seeds=(0,), save_every=0)
#: water dimer: O0 H1 H2 donate H1 to O3 (H4, H5); O0···O3 2.9 Å, H1···O3 1.94 Å (a hydrogen bond)
DIMER = Molecule("water-dimer", [8, 1, 1, 8, 1, 1],
                 [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0],
                  [2.90, 0.0, 0.0], [3.14, 0.93, 0.0], [3.14, -0.47, 0.80]])


@pytest.fixture(scope="module")
def ethanol() -> Molecule:
    s = from_smiles("CCO", "ethanol")
    return Molecule("ethanol", s.numbers, s.positions)


def _ch_bond(mol: Molecule) -> tuple[int, int]:
    """The first C–H bond (C index, H index)."""
    for i, j in covalent_bonds(mol.numbers, mol.positions):
        if {int(mol.numbers[i]), int(mol.numbers[j])} == {1, 6}:
            return (int(i), int(j)) if mol.numbers[i] == 6 else (int(j), int(i))
    raise AssertionError("no C-H bond")


def _network_without(mol: Molecule, atom: int) -> list[tuple[int, int, float, float]]:
    return [s for s in elastic_network(mol.positions) if atom not in s[:2]]


def test_bonds_are_perceived_as_the_scan_builder_does_including_x_h(ethanol):
    bonds = covalent_bonds(ethanol.numbers, ethanol.positions)
    kinds = sorted("".join(sorted(("C", "H", "O")[[6, 1, 8].index(int(ethanol.numbers[a]))] for a in b)) for b in bonds)
    assert len(bonds) == 8 and kinds.count("CH") == 5 and kinds.count("HO") == 1
    d = np.linalg.norm(ethanol.positions[bonds[:, 0]] - ethanol.positions[bonds[:, 1]], axis=1)
    radii = covalent_radii[ethanol.numbers]
    assert np.all(d < BOND_SCALE * (radii[bonds[:, 0]] + radii[bonds[:, 1]]))


def test_smooth_elastic_network_raises_no_alarm(ethanol):
    raw = run_ase_trajectory(ethanol, 0, lambda: SpringNetwork(elastic_network(ethanol.positions)), CFG)
    assert raw.failure is None and raw.steps_done == CFG.n_steps
    assert 150 < np.mean(raw.log.temperature_K[200:]) < 500


@pytest.mark.parametrize("engine", ["ase", "batched"])
def test_c_h_bond_stretched_by_0_9_A_is_broken(ethanol, engine):
    c, h = _ch_bond(ethanol)
    d0 = float(np.linalg.norm(ethanol.positions[c] - ethanol.positions[h]))
    springs = _network_without(ethanol, h) + [(c, h, d0 + 0.9, 10.0)]
    if engine == "ase":
        raw = run_ase_trajectory(ethanol, 0, lambda: SpringNetwork(springs), CFG)
    else:
        raw = BatchedIntegrator(TorchSprings(springs), CFG).run([ethanol], [0])[0]
    failure = raw.failure
    assert failure is not None and failure.criterion == "bond_broken", failure
    assert sorted(failure.atoms) == sorted([c, h]) and sorted(failure.symbols) == ["C", "H"]
    assert 0 < failure.step < 40 and failure.time_fs == pytest.approx(failure.step * CFG.timestep_fs)
    assert "C-H" in failure.detail or "H-C" in failure.detail


def test_h_transfer_is_a_broken_and_a_formed_bond():
    # H1 leaves O0 for O3: a spring pulls it to 0.97 Å from O3, none holds it to O0
    springs = [s for s in elastic_network(DIMER.positions) if 1 not in s[:2]] + [(1, 3, 0.97, 10.0)]
    raw = run_ase_trajectory(DIMER, 0, lambda: SpringNetwork(springs), CFG)
    failure = raw.failure
    assert failure is not None and failure.criterion == "bond_broken"
    assert sorted(failure.atoms) == [0, 1] and sorted(failure.symbols) == ["H", "O"]
    formed = [e for e in failure.also if e.criterion == "bond_formed"]
    assert len(formed) == 1 and sorted(formed[0].atoms) == [1, 3]


def test_atoms_driven_together_clash():
    # two N2 molecules 3 Å apart; a spring of rest length 0 pulls atom 1 onto atom 2
    mol = Molecule("n2-n2", [7, 7, 7, 7], [[-1.1, 0, 0], [0, 0, 0], [3.0, 0, 0], [4.1, 0, 0]])
    springs = [(0, 1, 1.1, 50.0), (2, 3, 1.1, 50.0), (1, 2, 0.0, 20.0)]
    raw = run_ase_trajectory(mol, 0, lambda: SpringNetwork(springs), CFG)
    assert raw.failure is not None and raw.failure.criterion == "clash", raw.failure
    assert raw.failure.atoms == [1, 2] and raw.failure.symbols == ["N", "N"]


#: water O0 H1 H2 and a Cl atom 3 Å out along the O0-H2 direction (Cl-H cutoff 1.60 Å)
_UNIT = np.array([-0.24, 0.93, 0.0]) / np.linalg.norm([-0.24, 0.93, 0.0])
WATER_CL = Molecule("water-cl", [8, 1, 1, 17], [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0],
                                                 list(np.array([-0.24, 0.93, 0.0]) + 3.0 * _UNIT)])
CLOSE = WATER_CL.positions.copy()
CLOSE[3] = CLOSE[2] + 1.4 * _UNIT                    # Cl 1.4 Å from H2, 2.36 Å from O0


def _monitor(mol: Molecule, cfg: MDConfig = CFG) -> FailureMonitor:
    monitor = FailureMonitor([mol.numbers], [mol.positions], cfg)
    assert monitor.check(0, mol.positions, np.zeros(1), np.zeros(1), np.zeros((mol.n_atoms, 3))) == {}
    return monitor


def _step(monitor: FailureMonitor, step: int, positions: np.ndarray, kinetic: float = 0.0):
    """One check; the potential energy mirrors ``kinetic`` (eV) so that E_tot stays 0."""
    return monitor.check(step, positions, np.array([-kinetic]), np.array([kinetic]), np.zeros_like(positions))


def test_a_new_bond_counts_once_held_a_transient_contact_does_not():
    hold = int(round(CFG.form_hold_fs / CFG.timestep_fs))
    monitor = _monitor(WATER_CL)
    for step in range(1, hold):                      # inside for less than the hold time, then out
        assert _step(monitor, step, CLOSE) == {}
    for step in range(hold, 3 * hold):
        assert _step(monitor, step, WATER_CL.positions) == {}
    start = 3 * hold
    found = {}
    for step in range(start, start + hold + 1):
        found = _step(monitor, step, CLOSE)
        if found:
            break
    failure = found[0]
    assert failure.criterion == "bond_formed" and failure.step == start + hold
    assert failure.atoms == [2, 3] and failure.symbols == ["H", "Cl"]
    assert f"since t={start * CFG.timestep_fs:g} fs" in failure.detail
    # the hydrogen bond H1···O3 (1.94 Å) of the water dimer is never a bond
    monitor = _monitor(DIMER)
    assert all(_step(monitor, s, DIMER.positions) == {} for s in range(1, 3 * hold))


def test_temperature_blow_up_after_the_settle_time():
    monitor = _monitor(DIMER)
    kelvin_per_ev = 2.0 / ((3 * DIMER.n_atoms - 3) * 8.617333262e-5)
    hot = 6.0 * CFG.temperature_K / kelvin_per_ev     # 6 × T0 of kinetic energy, eV
    settle = int(CFG.blowup_settle_fs / CFG.timestep_fs)
    assert _step(monitor, settle - 1, DIMER.positions, kinetic=hot) == {}
    failure = _step(monitor, settle, DIMER.positions, kinetic=hot)[0]
    assert failure.criterion == "temperature" and "3000 K" in failure.detail
    warm = 4.0 * CFG.temperature_K / kelvin_per_ev
    assert _step(_monitor(DIMER), settle + 5, DIMER.positions, kinetic=warm) == {}


def test_monitor_state_survives_subset_and_restore():
    mol = WATER_CL
    both = FailureMonitor([DIMER.numbers, mol.numbers], [DIMER.positions, mol.positions], CFG)
    zeros = np.zeros((10, 3))
    both.check(0, np.concatenate([DIMER.positions, mol.positions]), np.zeros(2), np.zeros(2), zeros)
    both.check(1, np.concatenate([DIMER.positions, CLOSE]), np.zeros(2), np.zeros(2), zeros)
    second = both.subset(np.array([1]))
    copy = FailureMonitor([mol.numbers], [mol.positions], CFG)
    copy.restore(second.state())
    hold = int(round(CFG.form_hold_fs / CFG.timestep_fs))
    assert _step(copy, hold, CLOSE) == {}
    assert _step(copy, hold + 1, CLOSE)[0].criterion == "bond_formed"
    with pytest.raises(ValueError, match="does not fit"):
        copy.restore(both.state())


def test_old_records_with_the_bond_criterion_still_load():
    from pesprobe.md.monitor import Failure

    old = Failure(**{"step": 3, "criterion": "bond", "detail": "bond 0-1 (O-H) deviates"})
    assert old.time_fs is None and old.atoms == [] and old.events[0].criterion == "bond"
    new = Failure(**Failure(5, "clash", "x", 2.5, [1, 2], ["N", "N"]).to_json())
    assert new.atoms == [1, 2] and new.time_fs == 2.5


class TorchSprings(torch.nn.Module):
    """:class:`calcs.SpringNetwork` as a batched contract model (any number of copies of one system)."""

    def __init__(self, springs: list[tuple[int, int, float, float]]) -> None:
        super().__init__()
        arr = torch.as_tensor(np.asarray(springs, dtype=float))
        self.register_buffer("i", arr[:, 0].long())
        self.register_buffer("j", arr[:, 1].long())
        self.register_buffer("d_eq", arr[:, 2])
        self.register_buffer("k", arr[:, 3])

    def forward(self, positions, cell, system_index, atomic_numbers):
        n_systems = int(system_index.max()) + 1
        pos = positions.detach().double().reshape(n_systems, -1, 3).requires_grad_(True)
        d = (pos[:, self.i] - pos[:, self.j]).norm(dim=2)
        energy = (0.5 * self.k * (d - self.d_eq) ** 2).sum(dim=1)
        (grad,) = torch.autograd.grad(energy.sum(), pos)
        return {"energy": energy, "forces": -grad.reshape(-1, 3)}
