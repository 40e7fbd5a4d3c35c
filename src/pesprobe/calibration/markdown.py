"""The calibration tables as Markdown (for ``docs/calibration.md`` and the benchmark's output)."""

from __future__ import annotations

from pesprobe.calibration.run import FIGURES

SHORT = {"full_smoothness": "FSD full", "compress_smoothness": "FSD compr.", "stretch_smoothness": "FSD stretch",
         "null_full_smoothness": "null full", "full_smoothness_skill": "skill full",
         "compress_smoothness_skill": "skill compr.", "stretch_smoothness_skill": "skill stretch",
         "roughness": "roughness", "n_discontinuities": "n_disc.", "energy_force_consistency": "E-F consist.",
         "spurious_minima": "spur. min.", "energy_jump_ratio": "E jump", "force_jump_ratio": "F jump"}


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(result: dict) -> str:
    """Detection rate vs amplitude, false alarms on the controls, Spearman with amplitude, random models."""
    figures = list(FIGURES)
    head = "| variant | " + " | ".join(SHORT[f] for f in figures) + " |"
    rule = "|---" * (len(figures) + 1) + "|"
    lines = [f"Scans: {result['n_scans']}. Fraction of scans on which each figure is worse than on the clean "
             "reference for the same scan (counts: larger; skill: lower by > 0.05; others: > 10 % larger).", "",
             "### Detection rate vs amplitude (step, well: eV; kink: eV/Å)", "", head, rule]
    for family, by_amp in result["detection"].items():
        for amp, rates in sorted(by_amp.items(), key=lambda kv: float(kv[0])):
            lines.append(f"| {family} {float(amp):g} | " + " | ".join(_fmt(rates[f]) for f in figures) + " |")
    lines += ["", "### False alarms on smooth controls (same comparison)", "", head[:-1] + "| any disc. |",
              rule + "---|"]
    for name, rates in result["false_alarm"].items():
        if name.startswith("random-"):
            continue
        lines.append(f"| {name} | " + " | ".join(_fmt(rates[f]) for f in figures)
                     + f" | {_fmt(rates['any_discontinuity'])} |")
    lines += ["", "### Spearman ρ of each figure with the artifact amplitude (clean = 0 included)", "",
              "| artifact | " + " | ".join(SHORT[f] for f in figures) + " |", rule]
    for family, rhos in result["spearman"].items():
        lines.append(f"| {family} | " + " | ".join(_fmt(rhos[f]) for f in figures) + " |")
    lines += ["", "### The detector: located within one grid step, extra model calls", "",
              "| artifact | amplitude | located (fraction of scans) |", "|---|---|---|"]
    for family, by_amp in result["located"].items():
        for amp, rate in sorted(by_amp.items(), key=lambda kv: float(kv[0])):
            lines.append(f"| {family} | {float(amp):g} | {rate:.2f} |")
    lines += ["", f"Clean reference: fraction of scans with a confirmed discontinuity "
              f"{result['clean_any_discontinuity']:.2f}.", "",
              "| variant | extra model calls (fraction of scan frames) |", "|---|---|"]
    for name, extra in result["extra_calls"].items():
        lines.append(f"| {name} | {extra:.3f} |")
    lines += ["", "### Random-weight pesprobe Transformers: fraction of scans with a confirmed discontinuity", "",
              "| graph | scans with a kNN rank crossing | scans without |", "|---|---|---|"]
    for graph, block in result["random"].items():
        cross, none = block["crossing"], block["no_crossing"]
        lines.append(f"| {graph} | {_fmt(cross[0])} (n = {cross[1]}) | {_fmt(none[0])} (n = {none[1]}) |")
    return "\n".join(lines) + "\n"
