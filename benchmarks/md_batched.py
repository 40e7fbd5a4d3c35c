"""Batched torch MD vs one ASE VelocityVerlet loop per replica, on CPU.

32 replicas (seeds) of a 20-atom molecule, NVE 500 K, 0.5 fs. Both paths integrate the same
model: the batched engine calls it once per step for all replicas; the ASE path wraps it in
:class:`pesprobe.md.torch_models.ModelCalculator` and steps one replica at a time (timed on a
few replicas, per replica-step). Prints replica-steps per second and the speed-up, for the
reference torch pair potential (MorsePair) and, if it is importable, the pesprobe Transformer.

Usage: python benchmarks/md_batched.py [--steps 200] [--replicas 32] [--ase-replicas 4]
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


def pesprobe_model() -> torch.nn.Module | None:
    try:
        from pesprobe.models import ModelConfig, build_model
    except ImportError:
        return None
    model = build_model(ModelConfig())
    model.eval()
    return model


def bench(name: str, model: torch.nn.Module, mol: Molecule, steps: int, replicas: int, ase_replicas: int) -> None:
    # huge tolerances: this times the integrators, an untrained model must not stop the run
    cfg = MDConfig(length_ps=steps * 0.5 / 1000.0, timestep_fs=0.5, seeds=tuple(range(replicas)), save_every=0,
                   bond_tolerance_A=1e6, fly_apart_A=1e6, energy_tolerance_eV_atom=1e6)
    integrator = BatchedIntegrator(model, cfg)
    integrator.run([mol], [0])  # warm-up
    start = time.perf_counter()
    raws = integrator.run([mol] * replicas, list(range(replicas)))
    batched = replicas * steps / (time.perf_counter() - start)
    failed = sum(r.failure is not None for r in raws)
    start = time.perf_counter()
    for seed in range(ase_replicas):
        run_ase_trajectory(mol, seed, lambda: ModelCalculator(model), cfg)
    ase = ase_replicas * steps / (time.perf_counter() - start)
    print(f"{name:<22} batched {batched:9.0f} replica-steps/s   ASE loop {ase:8.0f} replica-steps/s   "
          f"speed-up {batched / ase:5.1f}x   ({replicas} x {mol.n_atoms} atoms, {steps} steps, "
          f"{failed} failed, torch threads {torch.get_num_threads()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--ase-replicas", type=int, default=4)
    args = parser.parse_args()
    mol = molecule_20()
    bench("MorsePair (torch)", MorsePair(), mol, args.steps, args.replicas, args.ase_replicas)
    model = pesprobe_model()
    if model is None:
        print("pesprobe Transformer: not available (pesprobe.models.build_model not importable)")
    else:
        bench("pesprobe Transformer", model, mol, args.steps, args.replicas, args.ase_replicas)


if __name__ == "__main__":
    main()
