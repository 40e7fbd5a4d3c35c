"""The study's text outputs besides the HTML page: ``summary.md`` and the note on the evaluated checkpoints."""

from __future__ import annotations

from pesprobe.report.tables import markdown_table
from pesprobe.study.analysis import COLUMNS, formatted
from pesprobe.study.runner import BEST, StudyResult, VariantResult
from pesprobe.study.seeds import SeedRow, seed_table


def checkpoint_note(runs: list[VariantResult]) -> str:
    """Which checkpoint BSCT and MD evaluated (best.pt, best-by-validation, or last.pt), in how many runs, at
    which optimizer steps."""
    if not runs:
        return ""
    best = [r for r in runs if r.checkpoint == BEST]
    steps = sorted({r.checkpoint_step for r in runs if r.checkpoint_step > 0})
    where = f" (optimizer step {', '.join(map(str, steps))} of {max(r.steps for r in runs)})" if steps else ""
    return ("BSCT and MD evaluate each run's best-by-validation checkpoint (best.pt, the lowest valid_score among the "
            "validations every train.eval_every steps) when training wrote one, else last.pt; the validation errors "
            f"are the evaluated checkpoint's. Here best.pt in {len(best)} of {len(runs)} runs{where}.")


def budget_text(result: StudyResult) -> str:
    """``N steps`` or ``M minutes (...)``: the training budget of every run."""
    c = result.config
    return f"{c.steps} steps" if c.steps is not None else f"{c.minutes:g} minutes (steps measured per variant)"


def summary_markdown(result: StudyResult, table: list[dict], lines: list[str], seed_rows: list[SeedRow],
                     final: bool) -> str:
    """``summary.md``: the setting, the table (mean ± sd over seeds in a ``seeds:`` study, else one row per
    variant), the evaluated checkpoints and the findings."""
    c = result.config
    runs = [r for items in result.seed_runs().values() for r in items]
    seeds = (f"training seeds {', '.join(map(str, c.seeds))} (each variant trained and evaluated once per seed)"
             if c.seeds else f"training seed {c.seed}")
    md = c.md_config()
    out = [f"# pesprobe study: {c.name}", ""]
    if not final:
        out += [f"**In progress:** {len(runs)} runs finished; this file is rewritten after each.", ""]
    out += [f"{len(result.variants)} variants, {seeds}, budget {budget_text(result)}, {len(result.scans)} BSCT scans, "
            f"MD {md.ensemble.upper()} at {md.temperature_K:g} K for {md.length_ps:g} ps on "
            f"{len(result.md_molecules)} molecules (MD seeds {', '.join(map(str, md.seeds))}). Study file "
            f"`{c.source}`.", "", checkpoint_note(runs), ""]
    if seed_rows:
        header, cells = seed_table(seed_rows)
        out += ["## Mean ± sd over training seeds", "", markdown_table(header, cells), ""]
    else:
        out += ["## Results", "", markdown_table([h for _, h, _, _ in COLUMNS], [formatted(r) for r in table]), ""]
    out += ["## What the numbers show", ""] + [f"- {line}" for line in lines] + [""]
    return "\n".join(out)
