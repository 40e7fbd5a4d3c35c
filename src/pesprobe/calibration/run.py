"""What each BSCT figure detects, measured: artifacts of known place and size on a smooth reference.

For every scan and variant the BSCT figures are computed; a variant is one of

* ``clean`` — the base potential (the smooth real reference, e.g. GFN2-xTB);
* ``step:A`` (eV), ``kink:A`` (eV/Å), ``well:A`` (eV) — the base plus an artifact on the scanned
  pair at a random place inside the scan (seeded by the scan id), see
  :mod:`pesprobe.calibration.artifacts`;
* smooth-but-wrong controls: ``lj``, ``zero``, ``gfn-ff`` (where xtb-python installs),
  ``forces*0.8`` (the base with scaled forces);
* random-weight pesprobe Transformers with ``knn``, ``diffknn`` and ``radius`` graphs.

A figure *detects* an artifact on a scan when it is worse than on the clean base for the same
scan: larger by more than :data:`RELATIVE_MARGIN` (relative) for FSD, roughness, consistency and
jump ratios; a larger count for ``n_discontinuities`` and ``spurious_minima``; lower by more than
:data:`SKILL_MARGIN` for skill. The same comparison on a control is a *false alarm* (for the
published FSD most "false alarms" on wrong potentials are just that: FSD cannot tell wrong from
discontinuous). Results are stored per variant (``<out>/variants/<name>.json``) so a run resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from pesprobe.calibration.artifacts import ArtifactPotential, MemoPotential, ScaledForces, ZeroPotential
from pesprobe.data.atomic import atomic_write_json, json_safe
from pesprobe.data.scan import Scan, ScanSet
from pesprobe.potentials.base import Potential

#: Figures compared, and whether larger means worse (+1) or better (−1).
FIGURES: dict[str, int] = {
    "full_smoothness": 1, "compress_smoothness": 1, "stretch_smoothness": 1,
    "null_full_smoothness": 1, "full_smoothness_skill": -1, "compress_smoothness_skill": -1,
    "stretch_smoothness_skill": -1, "roughness": 1, "n_discontinuities": 1, "energy_force_consistency": 1,
    "spurious_minima": 1, "energy_jump_ratio": 1, "force_jump_ratio": 1,
}
COUNTS = ("n_discontinuities", "spurious_minima")
RELATIVE_MARGIN = 0.10
SKILL_MARGIN = 0.05
AMPLITUDES = {"step": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1), "kink": (0.01, 0.03, 0.1, 0.3, 1.0), "well": (0.01, 0.03, 0.1)}
QUICK_AMPLITUDES = {"step": (1e-2,), "kink": (0.3,), "well": (0.1,)}
#: Random-model graph types, and the k and cutoff (Å) they use.
GRAPHS = ("knn", "diffknn", "radius")
RANDOM_K, RANDOM_CUTOFF = 4, 4.0


@dataclass
class Variant:
    """One potential of the calibration, built per scan.

    Attributes
    ----------
    name : str
    family : str
        ``"clean"``, ``"step"``, ``"kink"``, ``"well"``, ``"control"`` or ``"random-<graph>"``.
    amplitude : float
        Artifact size (eV or eV/Å); 0 for the others.
    make : callable
        ``make(scan) -> Potential``.
    """

    name: str
    family: str
    amplitude: float
    make: Callable[[Scan], Potential]


def artifact_place(scan: Scan) -> tuple[float, float, tuple[int, int]]:
    """Where the artifact of ``scan`` sits: (pair distance r_c Å, scan coordinate there, the pair).

    A fraction u ∈ [0.15, 0.85] of the scan, drawn from a hash of the scan id (reproducible).
    """
    pair = tuple(int(v) for v in np.asarray(scan.meta["bond_index"]).reshape(2))
    u = 0.15 + 0.7 * (int(hashlib.sha256(scan.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    d = np.linalg.norm(scan.positions[:, pair[1]] - scan.positions[:, pair[0]], axis=1)
    r_c = float(d.min() + u * (d.max() - d.min()))
    order = np.argsort(d)
    return r_c, float(np.interp(r_c, d[order], scan.coordinate[order])), pair


def _random_model(graph: str, seed: int) -> Potential:
    import torch

    from pesprobe.models import ModelConfig
    from pesprobe.models.potential import TorchPotential
    from pesprobe.models.transformer import build_model

    torch.manual_seed(seed)
    config = ModelConfig(graph=graph, k=RANDOM_K, cutoff=RANDOM_CUTOFF, d_model=32, n_heads=2, n_blocks=2,
                         embed_dim=16, readout_dim=16, n_rbf=16, dtype="float64")
    return TorchPotential(build_model(config), dtype=torch.float64, name=f"random-{graph}-{seed}")


def variants(base: Potential, quick: bool = False, controls: dict[str, Potential] | None = None,
             random_seeds: tuple[int, ...] = (0, 1)) -> list[Variant]:
    """The calibration's variants around ``base`` (see the module docstring)."""
    out = [Variant("clean", "clean", 0.0, lambda scan: base)]
    for kind, amplitudes in (QUICK_AMPLITUDES if quick else AMPLITUDES).items():
        for a in amplitudes:
            def make(scan: Scan, kind=kind, a=a) -> Potential:
                r_c, _, pair = artifact_place(scan)
                return ArtifactPotential(base, kind, a, r_c, pair)
            out.append(Variant(f"{kind}:{a:g}", kind, a, make))
    out.append(Variant("forces*0.8", "control", 0.0, lambda scan: ScaledForces(base, 0.8)))
    out.append(Variant("zero", "control", 0.0, lambda scan: ZeroPotential()))
    for name, potential in (controls or {}).items():
        out.append(Variant(name, "control", 0.0, lambda scan, p=potential: p))
    for graph in GRAPHS:
        for seed in random_seeds:
            model = _random_model(graph, seed)
            out.append(Variant(f"random-{graph}-{seed}", f"random-{graph}", 0.0, lambda scan, m=model: m))
    return out


def rank_crossings(scan: Scan, k: int = RANDOM_K, cutoff: float = RANDOM_CUTOFF) -> int:
    """Consecutive frame pairs of ``scan`` between which some atom's set of ≤ k nearest neighbours
    within ``cutoff`` Å changes (where a hard-kNN graph switches)."""
    sets = []
    for frame in scan.positions:
        d = np.linalg.norm(frame[:, None] - frame[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=1)[:, :k]
        sets.append([frozenset(j for j in row if d[i, j] < cutoff) for i, row in enumerate(order)])
    return int(sum(a != b for a, b in zip(sets[:-1], sets[1:])))


def run_variant(variant: Variant, scans: list[Scan], folder: Path | None) -> list[dict]:
    """BSCT figures of ``variant`` on every scan (read back from ``folder`` if already there)."""
    from pesprobe.evaluate.runner import evaluate

    path = None if folder is None else folder / f"{variant.name.replace('*', 'x').replace(':', '_')}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())["rows"]
    rows = []
    for scan in scans:
        m = evaluate(variant.make(scan), ScanSet([scan], source="calibration"), progress=False).metrics[0]
        _, where, _ = artifact_place(scan)
        rows.append({"scan": scan.id, "variant": variant.name, "family": variant.family,
                     "amplitude": variant.amplitude, "artifact_coordinate": where,
                     "grid_step": float(np.median(np.abs(np.diff(scan.coordinate)))),
                     "n_frames": scan.n_frames, "n_refined": m.n_refined,
                     "discontinuities": m.discontinuities, **{f: m.values.get(f) for f in FIGURES}})
    if path is not None:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, json_safe({"variant": variant.name, "rows": rows}))
    return rows


def worse(figure: str, value: float | None, clean: float | None) -> bool:
    """Whether ``value`` is worse than ``clean`` for ``figure`` by the calibration's margin."""
    if value is None or not np.isfinite(value):
        return False
    if clean is None or not np.isfinite(clean):
        return False
    if figure in COUNTS:
        return value > clean
    if figure.endswith("_skill"):
        return value < clean - SKILL_MARGIN
    return value > clean * (1 + RELATIVE_MARGIN) + 1e-12


def located(row: dict) -> bool:
    """A confirmed discontinuity within one grid step of the artifact."""
    return any(d["confirmed"] and abs(d["coordinate"] - row["artifact_coordinate"]) <= row["grid_step"]
               for d in row["discontinuities"])


def tables(rows: list[dict], crossings: dict[str, int] | None = None) -> dict:
    """Detection rates, false alarms, Spearman with amplitude and the detector's targets.

    Returns
    -------
    dict
        ``detection[family][amplitude][figure]`` (fraction of scans), ``false_alarm[variant][figure]``,
        ``spearman[family][figure]``, ``located[family][amplitude]``, ``random[graph]`` (fraction of
        scans with a confirmed discontinuity, split by rank crossing) and ``extra_calls`` per variant.
    """
    clean = {r["scan"]: r for r in rows if r["family"] == "clean"}
    out: dict = {"detection": {}, "false_alarm": {}, "spearman": {}, "located": {}, "random": {},
                 "extra_calls": {}}
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    for name, items in by_variant.items():
        out["extra_calls"][name] = sum(r["n_refined"] for r in items) / max(1, sum(r["n_frames"] for r in items))
        family = items[0]["family"]
        rates = {f: float(np.mean([worse(f, r[f], clean[r["scan"]][f]) for r in items])) for f in FIGURES}
        if family in ("step", "kink", "well"):
            out["detection"].setdefault(family, {})[items[0]["amplitude"]] = rates
            out["located"].setdefault(family, {})[items[0]["amplitude"]] = float(np.mean([located(r) for r in items]))
        elif family != "clean":
            out["false_alarm"][name] = {**rates, "any_discontinuity": float(np.mean(
                [r["n_discontinuities"] is not None and r["n_discontinuities"] > 0 for r in items]))}
        if family.startswith("random-"):
            graph = family.split("-", 1)[1]
            block = out["random"].setdefault(graph, {"crossing": [], "no_crossing": []})
            for r in items:
                key = "crossing" if (crossings or {}).get(r["scan"], 0) > 0 else "no_crossing"
                block[key].append(bool(r["n_discontinuities"]))
    for graph, block in out["random"].items():
        out["random"][graph] = {k: (float(np.mean(v)) if v else None, len(v)) for k, v in block.items()}
    out["clean_any_discontinuity"] = float(np.mean([bool(r["n_discontinuities"]) for r in clean.values()]))
    for family in ("step", "kink", "well"):
        items = [r for r in rows if r["family"] in (family, "clean")]
        if len({r["amplitude"] for r in items}) < 2:
            continue
        out["spearman"][family] = {}
        for f in FIGURES:
            pairs = [(r["amplitude"], r[f]) for r in items if r[f] is not None and np.isfinite(r[f])]
            amps, vals = (np.array(v, dtype=float) for v in zip(*pairs)) if pairs else (np.zeros(0), np.zeros(0))
            varied = len(pairs) > 2 and np.ptp(vals) > 0 and np.ptp(amps) > 0
            rho = spearmanr(amps, vals).statistic if varied else float("nan")
            out["spearman"][family][f] = float(rho) if np.isfinite(rho) else None
    return out


def calibrate(scans: list[Scan], base: Potential, out: str | Path | None = None, quick: bool = False,
              controls: dict[str, Potential] | None = None, progress: bool = True) -> dict:
    """Run every variant on ``scans`` and tabulate (see :func:`tables`); resumable through ``out``."""
    from tqdm.auto import tqdm

    base = MemoPotential(base)
    folder = None if out is None else Path(out) / "variants"
    rows: list[dict] = []
    todo = variants(base, quick=quick, controls=controls, random_seeds=(0,) if quick else (0, 1))
    for variant in tqdm(todo, desc="calibration", unit="variant", disable=not progress):
        rows += run_variant(variant, scans, folder)
    result = tables(rows, {s.id: rank_crossings(s) for s in scans})
    result["n_scans"] = len(scans)
    if out is not None:
        atomic_write_json(Path(out) / "calibration.json", json_safe(result))
    return result
