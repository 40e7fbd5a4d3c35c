"""The study's outputs: ``study.json``, ``study.csv``, ``summary.md``, the figures and one self-contained
``report.html``. In a ``seeds:`` study the seed table (mean ± sd) and its findings lead; the per-variant
table, figures and correlations show the first seed's runs."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from pesprobe.data.atomic import atomic_write, atomic_write_json, json_safe
from pesprobe.study.analysis import (COLUMNS, RANGES, correlation_findings, correlations, design_steps, findings,
                                     formatted, pairs, table_rows, variant_means)
from pesprobe.study.runner import StudyResult, VariantResult, run_folder
from pesprobe.study.seeds import SeedRow, aggregate, seed_findings, seed_steps, seed_table
from pesprobe.study.summary import budget_text, checkpoint_note, summary_markdown

#: Worst-case scans shown side by side across variants.
WORST_SCANS = 3
#: MD molecules whose traces are drawn.
TRACE_MOLECULES = 4
#: (group, measure) panels of the correlation figure.
CORRELATION_PANELS = (("across variants", "failure_fraction"), ("across variants", "temperature_jump_K"),
                      ("pooled", "temperature_jump_K"), ("pooled", "abs_energy_drift_meV_atom_ps"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["text.usetex"] = False
    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------ figures
def _scale(ax, axis: str, values: np.ndarray) -> bool:
    """Log scale on ``axis`` when the positive finite ``values`` span more than a factor 10; True if set."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) and v.max() > 10.0 * v.min():
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return True
    return False


def plot_fsd_distributions(variants: list[VariantResult], path: Path) -> Path:
    """Per-scan FSD (log axis) of every variant for the full, compress and stretch ranges."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3, 3.8), sharey=True)
    names = [v.name for v in variants]
    for ax, rng in zip(axes, RANGES):
        data = []
        for v in variants:
            values = np.array([s.get(f"{rng}_smoothness", math.nan) for s in v.scans.values()], dtype=float)
            data.append(values[np.isfinite(values) & (values > 0)])
        ax.boxplot([d if len(d) else [np.nan] for d in data], positions=range(len(names)), widths=0.6,
                   showfliers=False)
        rng_gen = np.random.default_rng(0)
        for k, d in enumerate(data):
            ax.plot(k + rng_gen.uniform(-0.18, 0.18, len(d)), d, ".", color=f"C{k % 10}", ms=4, alpha=0.7)
            if len(d):
                ax.plot(k, d.mean(), "D", color="k", ms=5)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        _scale(ax, "y", np.concatenate(data) if data else np.zeros(0))
        ax.set_title(f"FSD {rng} (diamond: mean)", fontsize=10)
    axes[0].set_ylabel("FSD per scan (1/Å)")
    fig.tight_layout()
    return _save(fig, path)


def worst_scan_ids(variants: list[VariantResult], n: int = WORST_SCANS) -> list[str]:
    """The ``n`` scans with the largest full FSD under any variant."""
    worst: dict[str, float] = {}
    for v in variants:
        for sid, values in v.scans.items():
            f = values.get("full_smoothness", math.nan)
            if math.isfinite(f):
                worst[sid] = max(worst.get(sid, -math.inf), f)
    return sorted(worst, key=lambda s: -worst[s])[:n]


def plot_worst_scans(result: StudyResult, path: Path) -> Path | None:
    """Energy curves (reference, model, integrated model forces) of the worst scans, one row per
    scan and one column per variant; predictions come from each variant's BSCT cache."""
    from pesprobe.evaluate.cache import PredictionCache
    from pesprobe.metrics import scan_curves

    ids = worst_scan_ids(result.variants)
    if not ids:
        return None
    plt = _pyplot()
    cols = len(result.variants)
    fig, axes = plt.subplots(len(ids), cols, figsize=(3.3 * cols, 2.7 * len(ids)), squeeze=False)
    for row, sid in enumerate(ids):
        scan = result.scans[sid]
        for col, v in enumerate(result.variants):
            ax = axes[row, col]
            pred = PredictionCache(run_folder(result.out, v.name, v.seed) / "bsct" / "cache", v.identity).get(scan)
            if pred is None:
                ax.text(0.5, 0.5, "no predictions", ha="center", transform=ax.transAxes)
                continue
            c = scan_curves(scan, pred)
            ax.plot(c.coordinate, c.ref_energy, "k-", lw=1.5, label="reference")
            ax.plot(c.coordinate, c.model_energy, "-", color="#c44e52", lw=1.1, label="model E")
            ax.plot(c.coordinate, c.integrated, "--", color="#4c72b0", lw=1.1, label="model ∫F·dx")
            ref = c.ref_energy[np.isfinite(c.ref_energy)]
            lo, hi = ref.min(), np.percentile(ref, 98)
            pad = 0.3 * (hi - lo + 1e-9)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(f"{v.name}: FSD {v.scans[sid]['full_smoothness']:.3g}", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{sid}\nenergy (eV)", fontsize=8)
            if row == len(ids) - 1:
                ax.set_xlabel("bond length (Å)" if scan.kind == "bond" else "coordinate", fontsize=8)
            ax.tick_params(labelsize=7)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


def _trajectory_keys(md_dir: Path) -> dict[tuple[str, int], str]:
    path = md_dir / "results.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {(t["molecule"], int(t["seed"])): t["key"] for t in data.get("trajectories", [])}


def plot_md_traces(result: StudyResult, path: Path) -> Path | None:
    """Total-energy change (meV/atom) and kinetic temperature (K) vs time of the first seed, one row
    per MD molecule (at most :data:`TRACE_MOLECULES`), one line per variant."""
    from pesprobe.md.record import RunStore

    molecules = result.md_molecules[:TRACE_MOLECULES]
    if not molecules or not result.variants:
        return None
    seed = result.config.md_config().seeds[0]
    plt = _pyplot()
    fig, axes = plt.subplots(len(molecules), 2, figsize=(11, 2.6 * len(molecules)), squeeze=False)
    drawn = False
    for k, v in enumerate(result.variants):
        md_dir = run_folder(result.out, v.name, v.seed) / "md"
        keys = _trajectory_keys(md_dir)
        store = RunStore(md_dir)
        for row, mol in enumerate(molecules):
            key = keys.get((mol, seed))
            if key is None or not store.log_path(key).exists():
                continue
            log = store.load_log(key)
            drawn = True
            t = log.time_fs / 1000.0
            de = (log.total - log.total[0]) * 1000.0 / len(result.scans[mol].numbers)
            failed = v.molecules.get(mol, {}).get("failure_fraction", 0.0) > 0
            label = v.name + (" (failed)" if failed else "")
            axes[row, 0].plot(t, de, color=f"C{k % 10}", lw=0.9, label=label)
            axes[row, 1].plot(t, log.temperature_K, color=f"C{k % 10}", lw=0.9, label=label)
            if failed and len(t):
                for ax, y in ((axes[row, 0], de), (axes[row, 1], log.temperature_K)):
                    ax.plot(t[-1], y[-1], "x", color=f"C{k % 10}", ms=8, mew=2)
    if not drawn:
        plt.close(fig)
        return None
    for row, mol in enumerate(molecules):
        axes[row, 0].set_ylabel(f"{mol}\nE_tot − E_tot(0)\n(meV/atom)", fontsize=8)
        axes[row, 1].set_ylabel("kinetic T (K)", fontsize=8)
        axes[row, 0].set_yscale("symlog", linthresh=1.0)
    axes[-1, 0].set_xlabel("time (ps)")
    axes[-1, 1].set_xlabel("time (ps)")
    axes[0, 1].legend(fontsize=7, loc="best")
    cfg = result.config.md_config()
    fig.suptitle(f"MD traces, seed {seed} ({cfg.ensemble.upper()}, T0 = {cfg.temperature_K:g} K, "
                 f"dt = {cfg.timestep_fs:g} fs); x = failure", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_correlation(variants: list[VariantResult], corr: list[dict[str, Any]], path: Path) -> Path:
    """FSD (full) vs MD instability: per variant (means) and per (variant, molecule) pair, with Spearman ρ."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CORRELATION_PANELS), figsize=(4.0 * len(CORRELATION_PANELS), 3.6))
    means = variant_means(variants)
    pooled = pairs(variants)
    names = [v.name for v in variants]
    for ax, (group, measure) in zip(axes, CORRELATION_PANELS):
        rows = means if group == "across variants" else pooled
        for k, name in enumerate(names):
            pts = [(r["fsd_full"], r[measure]) for r in rows if r["variant"] == name]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=40 if group == "across variants" else 18,
                       color=f"C{k % 10}", label=name)
        log_x = _scale(ax, "x", np.array([r["fsd_full"] for r in rows], dtype=float))
        ax.set_xlabel(f"FSD full (1/Å{', log' if log_x else ''})"
                      + (", mean over scans" if group == "across variants" else ""))
        ax.set_ylabel(measure)
        rc = next((r for r in corr if r["group"] == group and r["measure"] == measure), None)
        title = group
        if rc is not None:
            title += (f"\nρ = {rc['value']:+.2f}, p = {rc['p_value']:.2g} (n = {rc['n']})"
                      if math.isfinite(rc["value"]) else f"\nρ not defined (n = {rc['n']}, constant values)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------------ files
def study_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV (raw values, one row per variant; empty cell for NaN)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
    return buffer.getvalue()


def _img(path: Path | None, alt: str) -> str:
    if path is None or not path.exists():
        return "<p class='note'>(no figure: nothing to plot yet)</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1300px;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child,td:nth-child(2){text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:14px}li{margin:.3em 0}code{background:#f6f6f6;padding:0 3px}
"""


def _seed_section(seed_rows: list[SeedRow], first_seed: int) -> str:
    """The seed table of a ``seeds:`` study, and what the sections below it show."""
    header, cells = seed_table(seed_rows)
    return (f"<h2>Mean ± sd over training seeds</h2>{_html_table(header, cells)}<p class='note'>Sample sd over the "
            "seeds (n − 1); '(n = k)' where fewer runs had the figure. E MAE: validation energy MAE per atom; "
            "F MAE: validation force MAE; FSD: mean over the BSCT scans (published definition); skill: mean of "
            "1 − FSD/FSD_null (full range); discontinuities: scans with a confirmed one; MD failure fraction: "
            "failed / all trajectories of the run. The table, figures and correlations below show the "
            f"seed-{first_seed} run of each variant.</p>")


def render_html(result: StudyResult, table: list[dict[str, Any]], corr: list[dict[str, Any]], lines: list[str],
                figures: dict[str, Path | None], final: bool, seed_rows: list[SeedRow] | None = None) -> str:
    """The report page (figures embedded as base64 PNG); ``seed_rows``: the seed table of a ``seeds:`` study."""
    c = result.config
    md = c.md_config()
    runs = [r for items in result.seed_runs().values() for r in items]
    n_runs = len(c.variants) * max(1, len(c.seeds))
    status = ("" if final else f"<p class='note'><b>In progress:</b> {len(runs)} of {n_runs} "
                               "runs finished; this page is rewritten after each.</p>")
    seeds = (f"training seeds {', '.join(map(str, c.seeds))} (each variant trained and evaluated once per seed)"
             if c.seeds else f"same seed ({c.seed})")
    corr_rows = [[r["group"], r["measure"], f"{r['value']:+.2f}" if math.isfinite(r["value"]) else "–",
                  f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]" if math.isfinite(r["ci_low"]) else "–",
                  f"{r['p_value']:.2g}" if math.isfinite(r["p_value"]) else "–", str(r["n"])]
                 for r in corr if not r["group"].startswith("variant=")]
    per_variant = [[r["group"].split("=", 1)[1], r["measure"], f"{r['value']:+.2f}" if math.isfinite(r["value"])
                    else "–", f"{r['p_value']:.2g}" if math.isfinite(r["p_value"]) else "–", str(r["n"])]
                   for r in corr if r["group"].startswith("variant=")]
    variants = [[v.name, v.label, v.extends or "–", str(v.steps), f"{v.checkpoint} (step {v.checkpoint_step})",
                 ", ".join(f"{k}={json.dumps(val)}" for k, val in v.model.items())] for v in result.variants]
    valid = str(c.valid_path) if c.valid_path else f"{c.valid_fraction:.0%} of the training molecules"
    data_lines = [f"training data <code>{html.escape(str(c.train_path))}</code>",
                  f"validation <code>{html.escape(valid)}</code>",
                  f"BSCT scans <code>{html.escape(str(c.scans_path))}</code> ({len(result.scans)} scans used)",
                  f"MD molecules: {html.escape(', '.join(result.md_molecules))}"]
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>pesprobe study: {html.escape(c.name)}</title>
<style>{STYLE}</style></head><body>
<h1>pesprobe study: {html.escape(c.name)}</h1>{status}
<p class="note">{len(result.variants)} variants, {seeds}, same budget ({budget_text(result)}) and data.
{'; '.join(data_lines)}. MD: {md.ensemble.upper()}, T0 = {md.temperature_K:g} K, dt = {md.timestep_fs:g} fs,
{md.length_ps:g} ps, seeds {', '.join(map(str, md.seeds))}. Wall time of this run {result.seconds:.0f} s.
Study file <code>{html.escape(c.source)}</code>.</p>
<h2>What the numbers show</h2><ul>{''.join(f'<li>{html.escape(line)}</li>' for line in lines)}</ul>
{_seed_section(seed_rows, c.seed) if seed_rows else ''}
<h2>Results{f' (seed {c.seed})' if c.seeds else ''}</h2>
{_html_table([h for _, h, _, _ in COLUMNS], [formatted(r) for r in table])}
<p class="note">{html.escape(checkpoint_note(runs))} E/F MAE: validation set, the evaluated checkpoint (averaged
weights). FSD: mean over the BSCT scans (lower is smoother).
Spurious minima: mean count per scan. E–F consistency: median over scans of max |Ê − Ê(q) − ∫F·dx| (≈0 for
conservative forces). MD: failed trajectories, and means over trajectories of time to failure, |energy drift| (NVE)
and the largest temperature jump within {md.spike_window_fs:g} fs. Times: wall time of training, BSCT and MD
(summed over interrupted and resumed runs).</p>
<h2>FSD distributions</h2>{_img(figures.get('fsd'), 'FSD distributions')}
<h2>Worst scans, side by side across variants</h2>{_img(figures.get('worst'), 'worst scans')}
<h2>MD energy and temperature traces</h2>{_img(figures.get('md'), 'MD traces')}
<h2>FSD vs MD stability</h2>{_img(figures.get('correlation'), 'correlation')}
{_html_table(['group', 'measure', 'Spearman ρ', '95% CI', 'p', 'n'], corr_rows)}
<p class="note">Larger measure = less stable, so a positive ρ means a smoother PES went with more stable MD.
p: permutation test (exact for n ≤ 7). Within each variant, across molecules:</p>
{_html_table(['variant', 'measure', 'Spearman ρ', 'p', 'n'], per_variant)}
<h2>Variants</h2>{_html_table(['variant', 'change', 'extends', 'steps', 'evaluated checkpoint', 'model overrides'],
                               variants)}
</body></html>
"""


def write_outputs(result: StudyResult, final: bool = True) -> dict[str, Path]:
    """Write ``study.json``, ``study.csv``, ``summary.md`` and ``report.html`` into ``result.out``; when ``final``,
    also the figures in ``plots/`` (embedded in the page; intermediate pages, written after each run, have none).

    In a ``seeds:`` study ``study.json`` also holds ``seeds`` (the seed table and each step judged against the
    seed spread) and ``runs`` (every run's result), and the findings are the seed-aware ones, followed by the
    correlations of the first seed's runs.

    Returns
    -------
    dict
        ``{"json", "csv", "md", "html"}`` paths.
    """
    out = result.out
    config = result.config
    table = table_rows(result.variants)
    corr = correlations(result.variants)
    seed_rows = aggregate(result.seed_runs()) if config.seeds else []
    if config.seeds:
        lines = seed_findings(seed_rows) + [f"Seed {config.seed} runs only: {line}"
                                            for line in correlation_findings(result.variants, corr)]
    else:
        lines = findings(result.variants, corr)
    complete = final and all(len(result.seed_runs().get(v.name, [])) == max(1, len(config.seeds))
                             for v in config.variants)
    plots = out / "plots"
    figures: dict[str, Path | None] = {}
    if result.variants and final:
        figures = {"fsd": plot_fsd_distributions(result.variants, plots / "fsd_distributions.png"),
                   "worst": plot_worst_scans(result, plots / "worst_scans.png"),
                   "md": plot_md_traces(result, plots / "md_traces.png"),
                   "correlation": plot_correlation(result.variants, corr, plots / "correlation.png")}
    data = {"name": config.name, "complete": complete, "config": config.to_dict(), "table": table, "findings": lines,
            "steps": [asdict(s) for s in design_steps(result.variants)], "correlations": corr,
            "bsct_scans": result.scans.ids(), "md_molecules": result.md_molecules, "seconds": result.seconds,
            "variants": [v.to_json() for v in result.variants]}
    if config.seeds:
        data["seeds"] = {"training_seeds": list(config.seeds), "table": [asdict(r) for r in seed_rows],
                         "steps": [asdict(s) for s in seed_steps(seed_rows)]}
        data["runs"] = [v.to_json() for items in result.seed_runs().values() for v in items]
    atomic_write_json(out / "study.json", json_safe(data))
    atomic_write(out / "study.csv", study_csv(table))
    atomic_write(out / "summary.md", summary_markdown(result, table, lines, seed_rows, final))
    atomic_write(out / "report.html", render_html(result, table, corr, lines, figures, final, seed_rows))
    return {"json": out / "study.json", "csv": out / "study.csv", "md": out / "summary.md",
            "html": out / "report.html"}
