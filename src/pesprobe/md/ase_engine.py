"""The unbatched engine: one trajectory through any ASE calculator, with ASE's integrators."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from pesprobe.md.analysis import LogBuffer
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import Failure, FailureMonitor
from pesprobe.md.record import RawTrajectory
from pesprobe.md.systems import Molecule

#: Steps between two progress updates.
TICK_EVERY = 50


def initial_atoms(molecule: Molecule, seed: int, config: MDConfig):
    """The molecule with Maxwell–Boltzmann momenta at T0 (centre-of-mass motion removed).

    The centre-of-mass momentum is removed without rescaling, so the kinetic temperature over the
    3N − 3 remaining degrees of freedom (what NVE reports) has expectation T0.

    Returns
    -------
    atoms : ase.Atoms
    rng : numpy.random.Generator
        The generator after drawing the velocities (it goes on to drive the Langevin noise).
    """
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms = molecule.to_atoms()
    rng = np.random.default_rng(seed)
    # thermalize_momenta is ASE 3.29's name for MaxwellBoltzmannDistribution (now deprecated)
    thermalize_momenta(atoms, config.temperature_K, rng=rng)
    Stationary(atoms, preserve_temperature=False)
    return atoms, rng


def snapshot(atoms, step: int, config: MDConfig, energy: float, kinetic: float):
    """A copy of ``atoms`` for the trajectory file (positions, momenta, energies in ``info``)."""
    from ase import Atoms

    frame = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy(), momenta=atoms.get_momenta().copy())
    frame.info.update(step=int(step), time_fs=float(step * config.timestep_fs), energy_eV=float(energy),
                      kinetic_eV=float(kinetic))
    return frame


def run_ase_trajectory(molecule: Molecule, seed: int, calc_factory: Callable[[], object], config: MDConfig,
                       tick: Callable[[int], None] | None = None) -> RawTrajectory:
    """Integrate one trajectory with ASE (VelocityVerlet for NVE, Langevin for NVT).

    Parameters
    ----------
    molecule : Molecule
    seed : int
        Seeds the initial velocities and the Langevin noise.
    calc_factory : callable
        Zero-argument callable returning a fresh ASE calculator.
    config : MDConfig
    tick : callable, optional
        Called with a number of steps done, for progress bars.

    Returns
    -------
    RawTrajectory
        A calculator exception or non-finite result ends the trajectory as failed (never raises).
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    start = time.perf_counter()
    atoms, rng = initial_atoms(molecule, seed, config)
    monitor = FailureMonitor([molecule.numbers], [molecule.positions], config)
    buffer = LogBuffer(config, molecule.n_atoms)
    frames: list = []
    failure: Failure | None = None
    step, ticked = 0, 0
    try:
        atoms.calc = calc_factory()
        dt = config.timestep_fs * units.fs
        if config.ensemble == "nve":
            dyn = VelocityVerlet(atoms, timestep=dt)
        else:
            dyn = Langevin(atoms, dt, temperature_K=config.temperature_K, friction=config.friction_per_fs / units.fs,
                           fixcm=False, rng=rng)
        for _ in dyn.irun(config.n_steps):
            step = dyn.nsteps
            energy = float(atoms.get_potential_energy())
            kinetic = float(atoms.get_kinetic_energy())
            # the integrator has just computed the forces at these positions: read them without
            # another (costly) ASE state check
            forces = atoms.calc.results.get("forces")
            forces = atoms.get_forces() if forces is None else forces
            found = monitor.check(step, atoms.positions, np.array([energy]), np.array([kinetic]), forces)
            if buffer.wants(step) or found:
                buffer.add(step, energy, kinetic)
            if config.save_every and (step % config.save_every == 0 or found):
                frames.append(snapshot(atoms, step, config, energy, kinetic))
            if found:
                failure = found[0]
                break
            if tick is not None and step - ticked >= TICK_EVERY:
                tick(step - ticked)
                ticked = step
            step += 1
    except Exception as exc:  # noqa: BLE001 - a failing calculator ends this trajectory only
        failure = Failure(step, "calculator_error", f"{type(exc).__name__}: {exc}".strip(),
                          step * config.timestep_fs)
    if tick is not None:
        tick(config.n_steps - ticked)
    steps_done = config.n_steps if failure is None else failure.step
    return RawTrajectory(log=buffer.log(), failure=failure, steps_done=steps_done, frames=frames,
                         wall_seconds=time.perf_counter() - start)
