"""Batched torch MD vs one ASE VelocityVerlet loop per replica, on CPU.

32 replicas (seeds) of a 20-atom molecule, NVE 500 K, 0.5 fs. Both paths integrate the same
model: the batched engine calls it once per step for all replicas; the ASE path wraps it in
:class:`pesprobe.md.torch_models.ModelCalculator` and steps one replica at a time (timed on a
few replicas, per replica-step). Prints replica-steps per second and the speed-up for

* the reference torch pair potential (MorsePair) on a relaxed C20 cluster;
* the shipped default model (``pesprobe:default``, the one ``pesprobe md`` runs unless told
  otherwise) on n-hexane, C6H14 (20 atoms, RDKit/MMFF geometry);
* a random-weight Transformer of the default ``ModelConfig()`` size (206k parameters) on n-hexane.

Usage: python benchmarks/md_batched.py [--steps 200] [--replicas 32] [--ase-replicas 4] [--repeats 3]
       [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import Atoms
from ase.optimize import FIRE

from pesprobe.md.ase_engine import run_ase_trajectory
from pesprobe.md.batched import BatchedIntegrator
from pesprobe.md.config import MDConfig
from pesprobe.md.synthetic import SyntheticPairCalculator
from pesprobe.md.systems import Molecule
from pesprobe.md.torch_models import ModelCalculator, MorsePair


def molecule_20() -> Molecule:
    """A relaxed 20-atom carbon cluster under the reference Morse potential."""
    atoms = Atoms("C20", positions=np.random.default_rng(0).normal(size=(20, 3)) * 1.6)
    atoms.calc = SyntheticPairCalculator()
    FIRE(atoms, logfile=None).run(fmax=1e-3, steps=4000)
    return Molecule("C20", atoms.numbers, atoms.positions)


def hexane() -> Molecule:
    """n-hexane (20 atoms) embedded and MMFF-relaxed by RDKit."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCCC"))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    AllChem.MMFFOptimizeMolecule(mol)
    numbers = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()])
    return Molecule("hexane", numbers, mol.GetConformer().GetPositions())


def shipped_model() -> torch.nn.Module:
    """The shipped default model (``pesprobe:default``)."""
    from pesprobe.models.checkpoint import load_checkpoint
    from pesprobe.models.potential import DEFAULT_MODEL

    model, _ = load_checkpoint(DEFAULT_MODEL)
    return model.eval()


def large_model() -> torch.nn.Module:
    """A random-weight Transformer of the default ``ModelConfig()`` size."""
    from pesprobe.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig()).eval()


def bench(name: str, model: torch.nn.Module, mol: Molecule, steps: int, replicas: int, ase_replicas: int,
          repeats: int) -> None:
    # huge tolerances: this times the integrators, an untrained model must not stop the run
    cfg = MDConfig(length_ps=steps * 0.5 / 1000.0, timestep_fs=0.5, seeds=tuple(range(replicas)), save_every=0,
                   break_factor=1e6, clash_factor=0.0, clash_floor_A=0.0,
                   form_hold_fs=1e9, blowup_factor=1e6, fly_apart_A=1e6, energy_tolerance_eV_atom=1e6)
    integrator = BatchedIntegrator(model, cfg)
    integrator.run([mol], [0])  # warm-up
    batched, ase, failed = 0.0, 0.0, 0
    for _ in range(repeats):  # best of `repeats` for each path: the machine may be shared
        start = time.perf_counter()
        raws = integrator.run([mol] * replicas, list(range(replicas)))
        batched = max(batched, replicas * steps / (time.perf_counter() - start))
        failed = max(failed, sum(r.failure is not None for r in raws))
        start = time.perf_counter()
        for seed in range(ase_replicas):
            run_ase_trajectory(mol, seed, lambda: ModelCalculator(model), cfg)
        ase = max(ase, ase_replicas * steps / (time.perf_counter() - start))
    print(f"{name:<31} batched {batched:9.0f} replica-steps/s   ASE loop {ase:8.0f} replica-steps/s   "
          f"speed-up {batched / ase:5.1f}x   ({replicas} x {mol.n_atoms} atoms, {steps} steps, "
          f"{failed} failed, torch threads {torch.get_num_threads()}, best of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--ase-replicas", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings per path")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [("MorsePair (torch), C20", MorsePair(), molecule_20()),
            (f"default model ({n_params(shipped_model()) // 1000}k), C6H14", shipped_model(), hexane()),
            (f"random {n_params(large_model()) // 1000}k Transformer, C6H14", large_model(), hexane())]
    for name, model, mol in runs:
        bench(name, model, mol, args.steps, args.replicas, args.ase_replicas, args.repeats)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    main()
