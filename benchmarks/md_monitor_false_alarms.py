"""False alarms of the MD failure monitor under a good potential: GFN2-xTB (tblite) NVE MD of small
molecules of the BSCT-xTB preset, each relaxed with GFN2-xTB first, at 500 K for 2 ps.

A chemist would call none of these trajectories failed (no reaction at 500 K in 2 ps), so every
failure reported here is a false alarm. Besides the verdict, each trajectory's closest approach to
each threshold is printed (from frames every ``--frame-every`` steps): the longest t = 0 bond over
its break length, the shortest non-bonded pair over its bonding cutoff (< 1: it came inside, which
only fails when held ``form_hold_fs``), the shortest pair over its clash distance, and the highest
temperature after the settle time over the blow-up limit. Values near 1 would mean a thin margin.

Run (one process, one thread; about 15 minutes on one core for the defaults)::

    OMP_NUM_THREADS=1 python benchmarks/md_monitor_false_alarms.py > /tmp/md_fa.log 2>&1
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pesprobe.md.ase_engine import run_ase_trajectory
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import FailureMonitor
from pesprobe.md.systems import preset_molecules

#: Names from ``resources/bsct_xtb.smi``: O, N, S and P chemistry, intramolecular H-bond donors.
MOLECULES = ("ethanol", "ethanethiol", "methylhydrazine", "dimethyl_sulfide", "mercaptoethanol",
             "trimethylphosphine", "dimethyl_sulfoxide", "acetohydroxamic_acid", "methyl_acetate",
             "dimethylformamide", "methyl_phosphate")


def margins(monitor: FailureMonitor, frames: list, config: MDConfig, n_atoms: int) -> dict[str, float]:
    """Closest approach of the saved frames to each geometric threshold, and of T to the blow-up limit."""
    pos = np.stack([f.positions for f in frames])                      # (n_frames, n_atoms, 3)
    d = np.linalg.norm(pos[:, monitor.pair_i] - pos[:, monitor.pair_j], axis=2)
    bonded = monitor.bonded0
    times = np.array([f.info["time_fs"] for f in frames])
    kinetic = np.array([f.info["kinetic_eV"] for f in frames])
    temperature = 2.0 * kinetic / ((3 * n_atoms - 3) * 8.617333262e-5)
    settled = times >= config.blowup_settle_fs
    return {
        "bond/break": float((d[:, bonded] / monitor.break_length[bonded]).max()) if bonded.any() else np.nan,
        "nonbond/cutoff": float((d[:, ~bonded] / monitor.bond_cutoff[~bonded]).min()) if (~bonded).any() else np.nan,
        "pair/clash": float((d / monitor.clash_length).min()),
        "T/limit": float(temperature[settled].max() / (config.blowup_factor * config.temperature_K))
        if settled.any() else np.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--temperature", type=float, default=500.0, help="T0, K")
    parser.add_argument("--length", type=float, default=2.0, help="trajectory length, ps")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per molecule")
    parser.add_argument("--frame-every", type=int, default=2, help="steps between frames used for the margins")
    parser.add_argument("--molecules", default=",".join(MOLECULES), help="comma-separated preset names")
    args = parser.parse_args()
    config = MDConfig(temperature_K=args.temperature, length_ps=args.length, seeds=tuple(range(args.seeds)),
                      save_every=args.frame_every)
    from pesprobe.potentials.registry import calculator_factory

    factory = calculator_factory("gfn2-xtb")
    start = time.perf_counter()
    molecules = preset_molecules(args.molecules.split(","), fmax_eV_A=0.01)
    print(f"relaxed {len(molecules)} molecules with GFN2-xTB in {time.perf_counter() - start:.0f} s; NVE "
          f"{config.temperature_K:g} K, {config.length_ps:g} ps, dt {config.timestep_fs} fs, seeds {config.seeds}",
          flush=True)
    print(f"{'molecule':<22}{'atoms':>5}{'bonds':>6}{'seed':>5}  {'verdict':<42}{'bond/break':>11}"
          f"{'nonbond/cut':>12}{'pair/clash':>11}{'T/limit':>8}{'wall s':>8}", flush=True)
    n_failed = n_runs = 0
    worst: dict[str, float] = {"bond/break": 0.0, "nonbond/cutoff": np.inf, "pair/clash": np.inf, "T/limit": 0.0}
    for mol in molecules:
        monitor = FailureMonitor([mol.numbers], [mol.positions], config)
        for seed in config.seeds:
            raw = run_ase_trajectory(mol, seed, factory, config)
            m = margins(monitor, raw.frames, config, mol.n_atoms)
            n_runs += 1
            n_failed += raw.failure is not None
            for key, pick in (("bond/break", max), ("nonbond/cutoff", min), ("pair/clash", min), ("T/limit", max)):
                worst[key] = pick(worst[key], m[key])
            verdict = "ok" if raw.failure is None else (
                f"FAILED {raw.failure.criterion} at {raw.failure.time_fs:g} fs, atoms "
                f"{','.join(f'{a}{s}' for a, s in zip(raw.failure.atoms, raw.failure.symbols))}")
            print(f"{mol.id:<22}{mol.n_atoms:>5}{int(monitor.bonded0.sum()):>6}{seed:>5}  {verdict:<42}"
                  f"{m['bond/break']:>11.3f}{m['nonbond/cutoff']:>12.3f}{m['pair/clash']:>11.3f}{m['T/limit']:>8.3f}"
                  f"{raw.wall_seconds:>8.1f}", flush=True)
            if raw.failure is not None:
                print(f"    {raw.failure.detail}", flush=True)
    print(f"false alarms: {n_failed}/{n_runs} trajectories ({len(molecules)} molecules x {len(config.seeds)} seeds); "
          f"closest approach over all: " + ", ".join(f"{k} {v:.3f}" for k, v in worst.items())
          + f"; total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
