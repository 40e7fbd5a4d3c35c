"""Figures of the stability test (matplotlib, Agg backend, no LaTeX)."""

from __future__ import annotations

import io
from pathlib import Path

from pesprobe.data.atomic import atomic_write
from pesprobe.md.config import MDConfig
from pesprobe.md.record import RunStore, TrajectoryResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["text.usetex"] = False
    return plt


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _pyplot().close(fig)
    atomic_write(path, buffer.getvalue())


def plot_molecule(store: RunStore, runs: list[TrajectoryResult], config: MDConfig, path: str | Path) -> None:
    """Total-energy change (meV/atom) and kinetic temperature (K) vs time (ps) for every seed of
    one molecule; a failure is marked with a cross and a dotted line, its criterion in the legend."""
    plt = _pyplot()
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(7.5, 5.5), sharex=True)
    for k, run in enumerate(runs):
        log = store.load_log(run.key)
        color = f"C{k % 10}"
        t_ps = log.time_fs / 1000.0
        de = (log.total - log.total[0]) * 1000.0 / run.n_atoms if len(log.total) else log.total
        label = f"seed {run.seed}" + (f": {run.failure.criterion} at {run.failure.step * config.timestep_fs / 1000:.3g} ps"
                                      if run.failure else ": stable")
        ax_e.plot(t_ps, de, color=color, lw=0.8, label=label)
        ax_t.plot(t_ps, log.temperature_K, color=color, lw=0.8)
        if run.failure is not None and len(t_ps):
            for ax, y in ((ax_e, de), (ax_t, log.temperature_K)):
                ax.axvline(t_ps[-1], color=color, ls=":", lw=1.0)
                ax.plot(t_ps[-1], y[-1], marker="x", color=color, ms=9, mew=2)
    if config.ensemble == "nve":
        band = config.energy_tolerance_eV_atom * 1000.0
        for y in (-band, band):
            ax_e.axhline(y, color="0.5", ls="--", lw=0.8)
    ax_t.axhline(config.temperature_K, color="0.5", ls="--", lw=0.8)
    ax_e.set_ylabel("E_tot - E_tot(0) (meV/atom)")
    ax_t.set_ylabel("kinetic T (K)")
    ax_t.set_xlabel("time (ps)")
    molecule = runs[0].molecule if runs else ""
    ax_e.set_title(f"{molecule} — {runs[0].potential if runs else ''} ({config.ensemble.upper()}, "
                   f"T0 = {config.temperature_K:g} K, dt = {config.timestep_fs:g} fs)", fontsize=9)
    ax_e.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, path)
