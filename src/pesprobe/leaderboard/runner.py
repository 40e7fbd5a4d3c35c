"""The leaderboard: BSCT of every available potential on one scan set, ranked by smoothness.

Each potential is evaluated with :func:`pesprobe.evaluate.evaluate` into ``<out>/<name>/``, whose
prediction cache makes a re-run reuse finished scans. Potentials whose package, weights or
checkpoint are not available here are skipped with the reason and how to install them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pesprobe.data import ScanSet, load_scans
from pesprobe.data.atomic import json_safe
from pesprobe.evaluate import BSCTResult, evaluate
from pesprobe.evaluate.executors import ClusterExecutor, cluster_executor, parse_cluster
from pesprobe.potentials.registry import resolve


@dataclass(frozen=True)
class Candidate:
    """A potential to put on the leaderboard.

    Attributes
    ----------
    name : str
        Table row: the SPEC for the known candidates, the SPEC made file-safe for others.
    spec : str
        SPEC string for :func:`pesprobe.potentials.registry.resolve`.
    label : str
        What it is, for the table.
    install : str
        How to make it available, shown when it is skipped.
    """

    name: str
    spec: str
    label: str
    install: str = ""

    @property
    def folder(self) -> str:
        """Output sub-folder: the name made file-safe (``pesprobe:default`` -> ``pesprobe_default``)."""
        return slug(self.name)


#: The potentials ``pesprobe leaderboard`` tries by default, in this order.
CANDIDATES = (
    Candidate("gfn2-xtb", "gfn2-xtb", "GFN2-xTB (tblite)", "core dependency tblite"),
    Candidate("gfn1-xtb", "gfn1-xtb", "GFN1-xTB (tblite)", "core dependency tblite"),
    Candidate("gfn-ff", "gfn-ff", "GFN-FF (xtb-python)", "pip install 'pesprobe[xtb]'"),
    Candidate("7net-0", "7net-0", "SevenNet-0 (sevenn)", "pip install 'pesprobe[sevenn]'"),
    Candidate("chgnet", "chgnet", "CHGNet 0.3.0, molecule in a cubic box (extent + 20 Å)",
              "pip install 'pesprobe[chgnet]'"),
    Candidate("pesprobe:default", "pesprobe:default", "pesprobe default model",
              "train one with `pesprobe train` and pass it as pesprobe:PATH"),
)

#: ``--rank-by`` choices: entry attribute ranked ascending (lower is better).
RANK_KEYS = {
    "full": "fsd_full", "full-median": "fsd_full_median", "compress": "fsd_compress",
    "stretch": "fsd_stretch", "energy": "aligned_energy_mae", "forces": "forces_mae",
}


def slug(text: str) -> str:
    """A folder-safe name for a SPEC (``pesprobe:runs/a.pt`` -> ``pesprobe_runs_a.pt``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "potential"


def candidates(names: Sequence[str] | None = None) -> list[Candidate]:
    """The candidates to run: all known ones, or ``names`` (known names or any SPEC string).

    Raises
    ------
    ValueError
        If ``names`` is empty or repeats a name.
    """
    if names is None:
        return list(CANDIDATES)
    known = {c.name: c for c in CANDIDATES} | {c.spec: c for c in CANDIDATES}
    chosen = [known.get(n) or Candidate(slug(n), n, n) for n in (n.strip() for n in names) if n]
    if not chosen:
        raise ValueError("no potentials given")
    seen = [c.folder for c in chosen]  # one output folder each
    duplicates = sorted({n for n in seen if seen.count(n) > 1})
    if duplicates:
        raise ValueError(f"potential listed twice: {', '.join(duplicates)}")
    return chosen


def subset(scans: ScanSet, n: int) -> ScanSet:
    """``n`` scans spread over the bond types: round robin over groups, each in data-set order.

    Raises
    ------
    ValueError
        If ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"max_scans must be at least 1, got {n}")
    groups: dict[str, list] = {}
    for scan in scans:
        groups.setdefault(scan.group, []).append(scan)
    picked = []
    for depth in range(max((len(g) for g in groups.values()), default=0)):
        picked += [g[depth] for _, g in sorted(groups.items()) if depth < len(g)]
    keep = {s.id for s in picked[:n]}
    return ScanSet([s for s in scans if s.id in keep], source=scans.source, problems=list(scans.problems))


@dataclass
class Entry:
    """One potential's row: BSCT aggregates over the scans.

    FSD values are in 1/Å (lower is smoother), MAEs in eV and eV/Å; ``*_median`` are medians
    over the scans, the others means (the published summary). ``ms_per_frame`` is model time
    per frame, ms (per worker process when ``jobs`` > 1). ``skill_full`` is the mean of
    1 − FSD / FSD_null (1 as smooth as the reference, 0 no better than zero forces),
    ``roughness_median`` the median reference-free roughness (eV/Å) and ``n_discontinuity_scans``
    the number of scans with a confirmed discontinuity.
    """

    name: str
    spec: str
    label: str
    identity: str
    n_scans: int
    n_scored: int
    n_frames: int
    n_failed_frames: int
    fsd_full: float
    fsd_full_median: float
    fsd_compress: float
    fsd_compress_median: float
    fsd_stretch: float
    fsd_stretch_median: float
    aligned_energy_mae: float
    forces_mae: float
    ms_per_frame: float
    rank: int = 0
    skill_full: float = math.nan
    roughness_median: float = math.nan
    n_discontinuity_scans: int = 0


def _stat(summary: dict, metric: str, which: str) -> float:
    value = summary["stats"][metric][which]
    return math.nan if value is None else float(value)


def entry_from_result(candidate: Candidate, result: BSCTResult) -> Entry:
    """Aggregate a BSCT result into a leaderboard row (unranked)."""
    s = result.summary
    seconds = sum(m.seconds for m in result.metrics)
    return Entry(
        name=candidate.name, spec=candidate.spec, label=candidate.label, identity=result.identity,
        n_scans=s["n_scans"], n_scored=s["n_scans"] - s["n_unscored_scans"], n_frames=s["n_frames"],
        n_failed_frames=s["n_failed_frames"],
        fsd_full=_stat(s, "full_smoothness", "mean"), fsd_full_median=_stat(s, "full_smoothness", "median"),
        fsd_compress=_stat(s, "compress_smoothness", "mean"),
        fsd_compress_median=_stat(s, "compress_smoothness", "median"),
        fsd_stretch=_stat(s, "stretch_smoothness", "mean"),
        fsd_stretch_median=_stat(s, "stretch_smoothness", "median"),
        aligned_energy_mae=_stat(s, "aligned_energy_mae", "mean"), forces_mae=_stat(s, "full_forces_mae", "mean"),
        ms_per_frame=1000.0 * seconds / s["n_frames"] if s["n_frames"] else math.nan,
        skill_full=_stat(s, "full_smoothness_skill", "mean"), roughness_median=_stat(s, "roughness", "median"),
        n_discontinuity_scans=s["n_scans_with_discontinuities"],
    )


def rank(entries: Sequence[Entry], by: str = "full") -> list[Entry]:
    """Entries sorted best first by ``RANK_KEYS[by]`` (ascending), with ``rank`` set from 1.

    Ties are broken by median full FSD, then name; entries with no value (nothing scored) come last.
    """
    if by not in RANK_KEYS:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_KEYS)}, got {by!r}")
    attr = RANK_KEYS[by]

    def key(e: Entry) -> tuple:
        value = getattr(e, attr)
        median = e.fsd_full_median
        return (not math.isfinite(value), value if math.isfinite(value) else 0.0,
                median if math.isfinite(median) else math.inf, e.name)

    ordered = sorted(entries, key=key)
    for i, e in enumerate(ordered, start=1):
        e.rank = i
    return ordered


@dataclass
class Skipped:
    """A potential left off the board, and why (with how to install it)."""

    name: str
    spec: str
    reason: str


@dataclass
class Leaderboard:
    """Ranked entries, skipped potentials and what they were run on.

    Attributes
    ----------
    entries : list of Entry
        Ranked, best first.
    skipped : list of Skipped
    source : str
        The scan set.
    scan_ids : list of str
        The scans every entry was evaluated on.
    rank_by : str
        Key of :data:`RANK_KEYS` used for ranking.
    by_group : dict
        ``{potential name: {bond type: mean full FSD}}``.
    n_data_problems : int
        Files or scans the loader could not read.
    """

    entries: list[Entry]
    skipped: list[Skipped] = field(default_factory=list)
    source: str = ""
    scan_ids: list[str] = field(default_factory=list)
    rank_by: str = "full"
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    n_data_problems: int = 0

    def to_json(self) -> dict:
        """JSON-ready content of ``leaderboard.json`` (NaN as null)."""
        return json_safe({"source": self.source, "n_scans": len(self.scan_ids), "scan_ids": self.scan_ids,
                       "rank_by": self.rank_by, "n_data_problems": self.n_data_problems,
                       "entries": [asdict(e) for e in self.entries],
                       "skipped": [asdict(s) for s in self.skipped], "by_group": self.by_group})

    def write(self, out: str | Path) -> list[Path]:
        """Write ``leaderboard.{md,html,json,csv}`` into ``out`` atomically; returns the paths."""
        from pesprobe.data.atomic import atomic_write, atomic_write_json
        from pesprobe.leaderboard import report

        out = Path(out)
        paths = [out / f"leaderboard.{ext}" for ext in ("md", "html", "json", "csv")]
        atomic_write(paths[0], report.markdown(self))
        atomic_write(paths[1], report.html_page(self))
        atomic_write_json(paths[2], self.to_json())
        atomic_write(paths[3], report.csv_text(self))
        return paths


def _skip_reason(candidate: Candidate, exc: Exception) -> str:
    from pesprobe.potentials.optional import MissingExtra

    if isinstance(exc, MissingExtra):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} ({candidate.install})" if candidate.install else text


def run_leaderboard(data: str | Path | ScanSet, out: str | Path, names: Sequence[str] | None = None,
                    jobs: int = 1, max_scans: int | None = None, rank_by: str = "full", progress: bool = True,
                    log: Callable[[str], None] = print, cluster: str | None = None) -> Leaderboard:
    """Run BSCT for each available potential and write the ranked leaderboard.

    Parameters
    ----------
    data : str, Path or ScanSet
        Scans (anything :func:`pesprobe.data.load_scans` reads).
    out : str or Path
        Output folder: ``leaderboard.{md,html,json,csv}`` and one BSCT folder per potential
        (``<out>/<folder>/``, :attr:`Candidate.folder`, with its prediction cache: a re-run reuses finished scans).
    names : sequence of str, optional
        Candidate names (:data:`CANDIDATES`) or SPEC strings; default: every known candidate.
    jobs : int
        Worker processes per BSCT run.
    max_scans : int, optional
        Evaluate only this many scans, spread over bond types (:func:`subset`).
    rank_by : str
        A key of :data:`RANK_KEYS`.
    progress : bool
        Show a progress bar per potential.
    log : callable
        Receives one line per skipped or failed potential.
    cluster : str, optional
        Evaluate the scans on a Dask cluster (``local:N`` or a scheduler address), one client for
        all potentials; each potential goes to the workers as its SPEC (see
        :mod:`pesprobe.evaluate.executors`).

    Returns
    -------
    Leaderboard
    """
    if rank_by not in RANK_KEYS:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_KEYS)}, got {rank_by!r}")
    chosen = candidates(names)
    scans = data if isinstance(data, ScanSet) else load_scans(data)
    if max_scans is not None:
        scans = subset(scans, max_scans)
    if not len(scans):
        raise ValueError(f"{scans.source or data}: no scans to evaluate")
    if cluster is not None:
        parse_cluster(cluster)
    out = Path(out)
    with cluster_executor(cluster) as executor:
        board = _run_board(chosen, scans, out, jobs, rank_by, progress, log, executor)
    board.write(out)
    return board


def _run_board(chosen: list[Candidate], scans: ScanSet, out: Path, jobs: int, rank_by: str, progress: bool,
               log: Callable[[str], None], executor: ClusterExecutor | None) -> Leaderboard:
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    by_group: dict[str, dict[str, float]] = {}
    for candidate in chosen:
        try:
            potential = resolve(candidate.spec)
        except Exception as exc:  # noqa: BLE001 - an unavailable potential is skipped, not fatal
            skipped.append(Skipped(candidate.name, candidate.spec, _skip_reason(candidate, exc)))
            log(f"skipping {candidate.name}: {skipped[-1].reason}")
            continue
        try:
            # on a cluster the workers get the SPEC (a resolved calculator need not pickle)
            result = evaluate(potential if executor is None else candidate.spec, scans, out=out / candidate.folder,
                              jobs=jobs, progress=progress, name=candidate.name, cluster=executor)
        except Exception as exc:  # noqa: BLE001 - one broken potential must not lose the others
            skipped.append(Skipped(candidate.name, candidate.spec, f"BSCT failed: {type(exc).__name__}: {exc}"))
            log(f"{candidate.name}: {skipped[-1].reason}")
            continue
        if result.metrics and all(m.n_failed == m.n_frames for m in result.metrics):
            first = next(iter(result.metrics[0].errors.values()), "every frame failed")
            skipped.append(Skipped(candidate.name, candidate.spec, f"BSCT failed: every frame failed ({first})"))
            log(f"{candidate.name}: {skipped[-1].reason}")
            continue
        entries.append(entry_from_result(candidate, result))
        by_group[candidate.name] = {g: block["full_smoothness"] for g, block in result.summary["by_group"].items()}
    return Leaderboard(entries=rank(entries, rank_by), skipped=skipped, source=scans.source,
                       scan_ids=scans.ids(), rank_by=rank_by, by_group=by_group,
                       n_data_problems=len(scans.problems))
