"""The zoo's tables (``evidence.md``) and scatter plots (``plots/scatter_<T>K.png``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pesprobe.data.atomic import atomic_write
from pesprobe.report.tables import fmt, markdown_table
from pesprobe.zoo.runner import BASELINE, FIGURES

LABELS = {"full_smoothness": "FSD full (1/Å)", "compress_smoothness": "FSD compress (1/Å)",
          "stretch_smoothness": "FSD stretch (1/Å)", "full_smoothness_skill": "skill full",
          "compress_smoothness_skill": "skill compress", "stretch_smoothness_skill": "skill stretch",
          "roughness": "roughness (eV/Å, median)", "n_discontinuities": "discontinuities / scan",
          "energy_force_consistency": "E–F consistency (eV, median)", "spurious_minima": "spurious minima / scan",
          "full_forces_mae": "force MAE (eV/Å) — baseline"}


#: Headings of the scopes of :data:`pesprobe.zoo.runner.SCOPES`.
SCOPE_TITLES = {"pesprobe": "the pesprobe models (trained Transformers, their artifacts and the shipped model)",
                "trained": "the trained Transformers only (same data and training, one design choice apart)"}


def member_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """One row per member: family, reason, BSCT figures, failure fraction per temperature (or why skipped)."""
    temps = [f"{float(t):g}" for t in result["profile"]["temperatures"]]
    header = ["potential", "family", "why its smoothness differs", "FSD full", "skill full", "roughness",
              "disc./scan", "F MAE (eV/Å)", *[f"MD failed @ {t} K" for t in temps]]
    rows = []
    for name, row in result["members"].items():
        if "skipped" in row:
            rows.append([name, row["family"], row["reason"], f"skipped: {row['skipped'][:80]}", *[""] * (4 + len(temps))])
            continue
        b = row["bsct"]
        rows.append([name, row["family"], row["reason"], fmt(b["full_smoothness"]),
                     fmt(b["full_smoothness_skill"], 3), fmt(b["roughness"], 3), fmt(b["n_discontinuities"], 3),
                     fmt(b["full_forces_mae"], 3),
                     *[fmt(row["md"][t]["failure_fraction"], 3) if t in row["md"] else "—" for t in temps]])
    return header, rows


def answer_rows(answers: dict) -> tuple[list[str], list[list[str]]]:
    """One row per figure: ρ [CI], permutation p, Holm p, partial ρ given force MAE [CI], its p."""
    header = ["figure", "n", "Spearman ρ [95 % CI]", "permutation p", "Holm p", "partial ρ given force MAE [CI]",
              "partial p"]
    rows = []
    for figure, a in answers.items():
        rows.append([LABELS.get(figure, figure), str(a["n_units"]),
                     f"{fmt(a['rho'], 2)} [{fmt(a['ci_low'], 2)}, {fmt(a['ci_high'], 2)}]", fmt(a["p_value"], 2),
                     fmt(a["p_holm"], 2),
                     f"{fmt(a['partial_rho'], 2)} [{fmt(a['partial_ci_low'], 2)}, {fmt(a['partial_ci_high'], 2)}]",
                     fmt(a["partial_p_value"], 2)])
    return header, rows


def reading(answers: dict) -> str:
    """The honest one-paragraph reading of one temperature's answers."""
    def finite(v) -> bool:  # NaN in memory, None after a JSON round trip
        return v is not None and math.isfinite(v)

    ok = {f: a for f, a in answers.items() if finite(a["p_value"]) and finite(a["rho"])}
    if not ok:
        return "No figure could be estimated."
    best = min(ok, key=lambda f: (ok[f]["p_value"], -abs(ok[f]["rho"])))
    a, base = ok[best], ok.get(BASELINE)
    text = (f"The strongest predictor of MD failure is {LABELS.get(best, best)}: ρ = {a['rho']:+.2f} "
            f"[{fmt(a['ci_low'], 2)}, {fmt(a['ci_high'], 2)}], permutation p = {a['p_value']:.2g} "
            f"(Holm {fmt(a['p_holm'], 2)}, "
            f"{'meets' if a['p_value'] < 0.01 else 'misses'} the p < 0.01 goal).")
    if base is not None and best != BASELINE:
        text += (f" Force MAE alone: ρ = {fmt(base['rho'], 2)}, p = {fmt(base['p_value'], 2)}. Given force MAE, "
                 f"{LABELS.get(best, best)} keeps partial ρ = {fmt(a['partial_rho'], 2)} "
                 f"(p = {fmt(a['partial_p_value'], 2)}): "
                 + ("it adds information beyond force error." if finite(a["partial_p_value"])
                    and a["partial_p_value"] < 0.05 else
                    "no significant information beyond force error."))
    return text


def plot_scatter(result: dict, temperature: str, path: Path) -> Path:
    """Every figure against the failure fraction, one point per potential, coloured by family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"trained": "#4c72b0", "third_party": "#55a868", "artifact": "#c44e52", "shipped": "#8172b2"}
    figures = list(FIGURES)
    cols = 4
    rows = math.ceil(len(figures) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.2 * rows), squeeze=False)
    answers = result["answers"].get(temperature, {})
    for ax, figure in zip(axes.ravel(), figures):
        for name, row in result["members"].items():
            if "skipped" in row or temperature not in row["md"]:
                continue
            x, y = row["bsct"][figure], row["md"][temperature]["failure_fraction"]
            if np.isfinite(x) and np.isfinite(y):
                ax.plot(x, y, "o", color=colors[row["family"]], ms=5, alpha=0.8)
        a = answers.get(figure)
        title = LABELS.get(figure, figure)
        if a:
            title += f"\nρ = {fmt(a['rho'], 2)}, p = {fmt(a['p_value'], 2)}"
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("MD failure fraction", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    for ax in axes.ravel()[len(figures):]:
        ax.axis("off")
    for family, color in colors.items():
        axes.ravel()[-1].plot([], [], "o", color=color, label=family)
    axes.ravel()[-1].legend(loc="center", fontsize=9)
    fig.suptitle(f"Zoo at {temperature} K: each BSCT figure vs the fraction of failed MD trajectories", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def evidence_markdown(result: dict) -> str:
    """The body of ``docs/evidence.md`` for one zoo run (``result["command"]``: the command line that made it)."""
    command = result.get("command") or "pesprobe zoo"
    p = result["profile"]
    c = result["compute"]
    parts = ["# The evidence: does BSCT predict MD stability, and better than force error does?",
             f"Command: `{command}`. Total compute {c['total_s'] / 3600:.2f} h on this machine "
             f"(training {c['train_s'] / 60:.1f} min; BSCT and MD model time {c['bsct_and_md_s'] / 60:.1f} min).",
             f"BSCT on {result['n_scans']} scans ({p['scans']}); MD: NVE, {p['length_ps']:g} ps, seeds {p['seeds']} "
             f"(fewer where a member says so), on {len(result['molecules'])} distinct molecules: "
             + ", ".join(f"`{m}`" for m in result["molecules"]) + ". Outcome: the fraction of failed trajectories "
             "(bond broken or formed, clash, temperature blow-up, energy not conserved, non-finite values, "
             "docs/md_monitor.md). Unit of the statistics: the potential; CIs resample potentials and molecules; "
             "permutation p shuffles whole potentials; Holm adjusts over the figures of one temperature."]
    included: dict[str, list[str]] = {}
    for name, row in result["members"].items():
        if "included_from" in row:
            included.setdefault(row["included_from"], []).append(name)
    for path, names in included.items():
        parts.append(f"Taken unchanged from the earlier run `{path}` (same scans, molecules and MD length): "
                     + ", ".join(f"`{n}`" for n in names) + ".")
    parts += ["## Members", markdown_table(*member_rows(result))]
    for temperature, answers in result["answers"].items():
        parts += [f"## {temperature} K: each figure as a predictor of MD failure", markdown_table(*answer_rows(answers)),
                  reading(answers), f"![scatter {temperature} K](zoo_plots/scatter_{temperature}K.png)"]
    if not result["answers"]:
        parts.append("No temperature has MD results for three or more potentials yet: the run is not finished.")
    for scope, by_temperature in result.get("answers_by_scope", {}).items():
        for temperature, answers in by_temperature.items():
            parts += [f"## {temperature} K within {SCOPE_TITLES.get(scope, scope)}",
                      markdown_table(*answer_rows(answers)), reading(answers)]
    return "\n\n".join(parts) + "\n"


def write_report(result: dict, out: Path) -> None:
    """``evidence.md`` and ``plots/scatter_<T>K.png`` in ``out``."""
    for temperature in result["answers"]:
        plot_scatter(result, temperature, out / "plots" / f"scatter_{temperature}K.png")
    atomic_write(out / "evidence.md", evidence_markdown(result).replace("](zoo_plots/", "](plots/"))
