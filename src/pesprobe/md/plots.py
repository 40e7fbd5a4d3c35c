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


def plot_scatter(result, path: str | Path, fsd: str = "full_smoothness") -> None:
    """FSD (x, symlog) vs each instability measure (y), one panel per measure, one colour per
    potential; the pooled Spearman ρ [95% CI] and permutation p in each title."""
    import math

    plt = _pyplot()
    measures = [m for m in dict.fromkeys(r["measure"] for r in result.correlations)]
    potentials = list(dict.fromkeys(row["potential"] for row in result.pairs))
    cols = min(3, max(len(measures), 1))
    rows = math.ceil(len(measures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, measure in zip(axes.flat, measures):
        for k, pot in enumerate(potentials):
            pts = [(r[fsd], r[measure]) for r in result.pairs if r["potential"] == pot]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18, color=f"C{k % 10}", label=pot)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(f"FSD {fsd.split('_')[0]} (1/Å)")
        ax.set_ylabel(measure)
        try:
            rc = result.get("pooled", fsd, measure, "spearman")
            ax.set_title(f"ρ = {rc['value']:.2f} [{rc['ci_low']:.2f}, {rc['ci_high']:.2f}], p = {rc['p_value']:.2g}",
                         fontsize=8)
        except KeyError:
            pass
    for ax in list(axes.flat)[len(measures):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    save_figure(fig, path)
