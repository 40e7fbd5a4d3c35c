"""torch-sim adapters (issue 15 part 1): torch-sim models as batched pesprobe Potentials (bsct, md,
SPEC), and pesprobe's Transformer as a torch-sim model. Skipped without torch-sim
(``pip install pesprobe[torchsim]``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ts = pytest.importorskip("torch_sim", reason="torch-sim-atomistic is not installed (extra pesprobe[torchsim])")

from ase.calculators.lj import LennardJones  # noqa: E402
from torch_sim.models.interface import ModelInterface, validate_model_outputs  # noqa: E402

from pesprobe.data import load_scans  # noqa: E402
from pesprobe.data.embedded import embedded_scans_path  # noqa: E402
from pesprobe.evaluate import evaluate  # noqa: E402
from pesprobe.potentials.torchsim import TorchSimPotential  # noqa: E402

SIGMA, EPSILON, RC = 1.5, 0.05, 4.0  # the parameters of the SPEC "lj" (ASE LennardJones, smooth=False)


class PairLJ(ModelInterface):
    """Lennard-Jones as ASE's ``LennardJones(smooth=False)`` computes it (each pair inside rc once,
    energy shifted by its value at rc), forces by autograd: a torch-sim model the test builds."""

    def __init__(self, sigma: float = SIGMA, epsilon: float = EPSILON, rc: float = RC) -> None:
        super().__init__()
        self._device, self._dtype = torch.device("cpu"), torch.float64
        self._compute_forces, self._compute_stress = True, False
        self.sigma, self.epsilon, self.rc = sigma, epsilon, rc

    def forward(self, state, **kwargs):
        pos = state.positions.detach().requires_grad_(True)
        energy = torch.zeros(state.n_systems, dtype=pos.dtype)
        for s in range(state.n_systems):
            idx = torch.nonzero(state.system_idx == s).squeeze(1)
            i, j = torch.triu_indices(len(idx), len(idx), offset=1)
            r = torch.linalg.norm(pos[idx[i]] - pos[idx[j]], dim=1)
            r = r[r < self.rc]
            shift = 4 * self.epsilon * ((self.sigma / self.rc) ** 12 - (self.sigma / self.rc) ** 6)
            energy[s] = (4 * self.epsilon * ((self.sigma / r) ** 12 - (self.sigma / r) ** 6) - shift).sum()
        forces = -torch.autograd.grad(energy.sum(), pos)[0]
        return {"energy": energy.detach(), "forces": forces}


def _fsd(result) -> np.ndarray:
    return np.array([[m.values[f"{r}_smoothness"] for r in ("full", "compress", "stretch")] for m in result.metrics])


def test_torchsim_lj_matches_ase_lj_on_the_embedded_scans() -> None:
    ours = evaluate(TorchSimPotential(PairLJ(), max_atoms=64), embedded_scans_path(), progress=False)
    ase = evaluate(lambda: LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=RC, smooth=False), embedded_scans_path(),
                   progress=False)
    assert np.isfinite(_fsd(ase)).all()
    np.testing.assert_allclose(_fsd(ours), _fsd(ase), rtol=1e-6, atol=0)
    for scan_id, pred in ase.predictions.items():
        np.testing.assert_allclose(ours.predictions[scan_id].forces, pred.forces, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours.predictions[scan_id].energy, pred.energy, rtol=1e-9, atol=1e-9)


def test_torchsims_shipped_lj_model() -> None:
    """torch-sim's own LennardJonesModel against ASE's (cutoff beyond every pair, so ASE's energy
    shift is one constant per scan): same energy curves; forces equal, or exactly twice ASE's
    (= twice −∇E) as torch-sim 0.3.0 gives them (each pair applied from both ends), which moves
    FSD by ~1e-5 relative, so FSD identity is tested with PairLJ above."""
    from torch_sim.models.lennard_jones import LennardJonesModel

    rc = 50.0
    ours = evaluate(TorchSimPotential(LennardJonesModel(sigma=SIGMA, epsilon=EPSILON, cutoff=rc, dtype=torch.float64)),
                    embedded_scans_path(), progress=False, detect=False)
    ase = evaluate(lambda: LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=rc, smooth=False), embedded_scans_path(),
                   progress=False, detect=False)
    for scan_id, pred in ase.predictions.items():
        got = ours.predictions[scan_id]
        np.testing.assert_allclose(got.energy - got.energy[0], pred.energy - pred.energy[0], rtol=1e-9, atol=1e-9)
        factor = np.sum(got.forces * pred.forces) / np.sum(pred.forces ** 2)
        assert round(factor) in (1, 2)
        np.testing.assert_allclose(got.forces, round(factor) * pred.forces, rtol=1e-9, atol=1e-9)


def test_batching_budgets_and_several_scans_per_call_agree() -> None:
    scans = list(load_scans(embedded_scans_path()))[:3]
    whole = TorchSimPotential(PairLJ(), max_atoms=10**6)
    small = TorchSimPotential(PairLJ(), max_atoms=25)
    calls = []
    small.model.register_forward_pre_hook(lambda module, args: calls.append(args[0].n_atoms))
    one_by_one = [small.predict(s.numbers, s.positions, s.cell, s.pbc) for s in scans]
    assert max(calls) <= 25 and len(calls) > len(scans)
    together = whole.predict_many([(s.numbers, s.positions, s.cell, s.pbc) for s in scans])
    for a, b in zip(one_by_one, together, strict=True):
        assert np.array_equal(a.forces, b.forces) and np.array_equal(a.energy, b.energy)
    frames = scans[0].positions.copy()
    frames[3, 0] = np.nan
    bad = whole.predict(scans[0].numbers, frames, np.eye(3) * 10, np.array([True, True, False]))
    assert bad.failed.all() and "pbc" in bad.errors[0]
    nan = whole.predict(scans[0].numbers, frames)
    assert nan.failed.tolist() == [i == 3 for i in range(len(frames))]


def test_spec_identity_and_batched_md(tmp_path) -> None:
    from ase.calculators.lj import LennardJones as AseLJ

    from pesprobe.md.ase_engine import run_ase_trajectory
    from pesprobe.md.batched import BatchedIntegrator
    from pesprobe.md.config import MDConfig
    from pesprobe.md.study import resolve_engine
    from pesprobe.md.systems import Molecule
    from pesprobe.potentials.registry import SPEC_FORMS, resolve

    assert any(f.form.startswith("torchsim:") for f in SPEC_FORMS)
    factory = tmp_path / "tsmodel.py"
    factory.write_text("from torch_sim.models.lennard_jones import LennardJonesModel\n"
                       "def make():\n    return LennardJonesModel(sigma=1.5, epsilon=0.05, cutoff=4.0)\n"
                       "def make_other():\n    return LennardJonesModel(sigma=1.6, epsilon=0.05, cutoff=4.0)\n")
    potential = resolve(f"torchsim:{factory}:make")
    assert isinstance(potential, TorchSimPotential)
    assert potential.identity() == resolve(f"torchsim:{factory}:make").identity()
    assert potential.identity() != resolve(f"torchsim:{factory}:make_other").identity()
    assert resolve_engine(f"torchsim:{factory}:make").kind == "batched"

    r = 2 ** (1 / 6) * SIGMA
    mol = Molecule("lj3", np.array([6, 6, 6]), np.array([[0.0, 0, 0], [r, 0.05, 0], [r / 2, r * 0.87, 0.1]]))
    cfg = MDConfig(length_ps=0.02, seeds=(0,), save_every=0, timestep_fs=0.5)
    batched = BatchedIntegrator(TorchSimPotential(PairLJ()), cfg).run([mol, mol], [0, 1])
    for seed, raw in zip((0, 1), batched, strict=True):
        ref = run_ase_trajectory(mol, seed, lambda: AseLJ(sigma=SIGMA, epsilon=EPSILON, rc=RC, smooth=False), cfg)
        np.testing.assert_allclose(raw.log.total, ref.log.total, rtol=0, atol=1e-9)


def test_pesprobe_model_as_a_torchsim_model() -> None:
    from ase.build import molecule

    from pesprobe.models import load_potential
    from pesprobe.models.torchsim import PesprobeTorchSimModel

    model = PesprobeTorchSimModel("default", dtype=torch.float64)
    validate_model_outputs(model, torch.device("cpu"), torch.float64)
    systems = [molecule("CH3CH2OH"), molecule("H2O")]
    out = model(ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64))
    ours = load_potential("default", dtype=torch.float64)
    for k, atoms in enumerate(systems):
        pred = ours.predict(atoms.numbers, atoms.positions[None])
        assert out["energy"][k].item() == pytest.approx(pred.energy[0], abs=1e-9)
    final = ts.integrate(system=systems, model=model, integrator=ts.nvt_langevin, n_steps=10, temperature=300,
                         timestep=0.0005)
    assert final.positions.shape == (12, 3) and torch.isfinite(final.positions).all()
    assert not torch.equal(final.positions, ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64).positions)


def test_pesprobe_torchsim_model_warns_once_for_unseen_elements() -> None:
    import warnings

    from ase.build import molecule

    from pesprobe.models.torchsim import PesprobeTorchSimModel
    from pesprobe.potentials.elements import UnseenElementWarning

    model = PesprobeTorchSimModel("default", dtype=torch.float64)
    assert 17 not in model.training_elements and 6 in model.training_elements

    def said(atoms) -> list[str]:
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always")
            model(ts.io.atoms_to_state([atoms], torch.device("cpu"), torch.float64))
        return [str(w.message) for w in found if issubclass(w.category, UnseenElementWarning)]

    assert said(molecule("CH3CH2OH")) == []
    first = said(molecule("CH3Cl"))
    assert len(first) == 1 and "Cl" in first[0] and "pesprobe:default" in first[0]
    assert said(molecule("CH3Cl")) == []  # the same set: said once
