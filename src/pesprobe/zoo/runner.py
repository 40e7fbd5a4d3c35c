"""Run the zoo: train (or resume), score with BSCT, run MD, and answer the question per figure.

Work is ordered so that a partial run is already useful and every piece resumes from its folder
(``<out>/members/<name>/``: ``train/``, ``bsct/``, ``md_<T>K/``): every member's BSCT first, then
MD at each temperature in turn. A member whose package is missing (or that cannot be built) is
skipped with its reason in ``zoo.json``; it never stops the run. Members of an earlier run on the
same scans, molecules and MD length can be taken from its ``zoo.json`` (``include``), so a slow
member is added without the others' folders.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pesprobe.data.atomic import atomic_write_json, json_safe
from pesprobe.data.scan import ScanSet
from pesprobe.md.systems import Molecule
from pesprobe.zoo.earlier import load_earlier
from pesprobe.zoo.members import MODEL, TRAIN, Member

#: Potential-level BSCT figures correlated with MD failure, and how each is aggregated over scans.
FIGURES: dict[str, str] = {
    "full_smoothness": "mean", "compress_smoothness": "mean", "stretch_smoothness": "mean",
    "full_smoothness_skill": "mean", "compress_smoothness_skill": "mean", "stretch_smoothness_skill": "mean",
    "roughness": "median", "n_discontinuities": "mean", "energy_force_consistency": "median",
    "spurious_minima": "mean", "full_forces_mae": "mean",
}
#: The baseline predictor every smoothness figure is compared with (and conditioned on).
BASELINE = "full_forces_mae"
OUTCOME = "failure_fraction"
#: Subsets of the zoo the question is also asked within: across every family the accurate reference
#: methods and the null model dominate the ranks, so the smoothness figures are also tested among the
#: pesprobe Transformers alone (same data and training, differing in design) and with their artifacts.
SCOPES: dict[str, tuple[str, ...]] = {"pesprobe": ("trained", "artifact", "shipped"), "trained": ("trained",)}


@dataclass
class ZooProfile:
    """What the zoo runs on.

    Attributes
    ----------
    scans : Path
        BSCT scan set (the BSCT-xTB preset: the level the pesprobe models learned).
    train, valid : Path or None
        Training and validation structures (extended XYZ from ``pesprobe data sample``); needed only
        while a trained member is not trained yet.
    members : list of Member
    temperatures : tuple of float
        MD temperatures, K.
    length_ps : float
        MD length per trajectory, ps.
    seeds : tuple of int
        MD seeds per molecule.
    n_molecules, min_p, min_s : int
        Distinct MD molecules taken from the scans, at least ``min_p`` with P and ``min_s`` with S.
    train_overrides : dict
        Changes to :data:`~pesprobe.zoo.members.TRAIN` (e.g. a tiny batch for tests).
    include : tuple of Path
        ``zoo.json`` files of earlier runs: their members that this run does not run are taken as
        they are (:func:`~pesprobe.zoo.earlier.load_earlier`), and their temperatures join the answers.
    """

    scans: Path
    train: Path | None
    valid: Path | None
    members: list[Member]
    temperatures: tuple[float, ...] = (500.0, 1000.0)
    length_ps: float = 2.0
    seeds: tuple[int, ...] = (0, 1, 2)
    n_molecules: int = 16
    min_p: int = 3
    min_s: int = 3
    train_overrides: dict[str, Any] = field(default_factory=dict)
    include: tuple[Path, ...] = ()


def pick_molecules(scans: ScanSet, n: int, min_p: int, min_s: int) -> tuple[list[Molecule], ScanSet]:
    """``n`` distinct molecules of ``scans`` (≥ ``min_p`` with P, ≥ ``min_s`` with S; the rest taken round
    robin over the bond types), in id order, and the scans that start from them (each molecule's
    BSCT figures pair with its MD).

    Raises
    ------
    ValueError
        If the scans hold too few molecules (with P or S).
    """
    from pesprobe.md.systems import molecules_from_scans

    by_group: dict[str, list[Molecule]] = {}
    for m in sorted(molecules_from_scans(scans), key=lambda m: m.id):
        by_group.setdefault(m.id.split("/")[0], []).append(m)
    # round robin over the bond types, so the molecules spread over the chemistry of the scans
    every = [g[k] for k in range(max((len(g) for g in by_group.values()), default=0))
             for _, g in sorted(by_group.items()) if k < len(g)]
    with_p = [m for m in every if 15 in m.numbers]
    with_s = [m for m in every if 16 in m.numbers and m not in with_p[:min_p]]
    if len(every) < n or len(with_p) < min_p or len(with_s) < min_s:
        raise ValueError(f"{scans.source}: {len(every)} distinct molecules ({len(with_p)} with P, {len(with_s)} with "
                         f"S); the zoo needs {n} (≥ {min_p} with P, ≥ {min_s} with S)")
    chosen = with_p[:min_p] + with_s[:min_s]
    chosen += [m for m in every if m not in chosen][:n - len(chosen)]
    chosen.sort(key=lambda m: m.id)
    wanted = {s for m in chosen for s in m.scans}
    return chosen, ScanSet([s for s in scans if s.id in wanted], source=scans.source)


class _Zoo:
    def __init__(self, profile: ZooProfile, out: Path, progress: bool, log: Callable[[str], None]) -> None:
        self.profile, self.out, self.progress, self.log = profile, out, progress, log
        self.built: dict[str, Any] = {}

    def folder(self, member: Member) -> Path:
        return self.out / "members" / member.name

    def _train(self, member: Member):
        from pesprobe.models import TorchPotential, load_checkpoint
        from pesprobe.train import TrainConfig, train

        folder = self.folder(member) / "train"
        final = folder / "last.pt"
        done = self.folder(member) / "trained.json"
        if not done.exists():
            p = self.profile
            if p.train is None or not Path(p.train).is_file():
                raise FileNotFoundError(f"zoo member {member.name} is not trained yet and needs training structures: "
                                        f"--train {p.train} is not a file")
            loop = {**TRAIN, **p.train_overrides, "steps": member.steps, "seed": member.seed, "device": "cpu",
                    "out": str(folder), "eval_every": member.steps, "ckpt_every": max(1, member.steps // 10),
                    "log_every": max(1, member.steps // 50)}
            data = {"train": [str(p.train)], "valid": [str(p.valid)] if p.valid else [], "seed": member.seed}
            config = TrainConfig.from_dict({"model": {**MODEL, **member.model}, "data": data, "train": loop})
            start = time.perf_counter()
            result = train(config, resume=final.exists(), progress=self.progress)
            atomic_write_json(done, json_safe({"seconds": time.perf_counter() - start, "metrics": result.metrics,
                                               "checkpoint": str(result.checkpoints["last"])}))
        model, _ = load_checkpoint(final, map_location="cpu")
        return TorchPotential(model, dtype=next(model.parameters()).dtype, name=member.name)

    def build(self, member: Member) -> Any:
        """The member's potential (trained members: trained or resumed first)."""
        if member.name in self.built:
            return self.built[member.name]
        if member.family == "trained":
            potential = self._train(member)
        elif member.family in ("third_party", "shipped"):
            from pesprobe.potentials.registry import resolve

            resolve(member.spec)  # fails here, with its reason, when the package is missing
            potential = member.spec
        else:
            potential = self._artifact(member)
        self.built[member.name] = potential
        return potential

    def _artifact(self, member: Member) -> Any:
        import torch

        from pesprobe.zoo.contract import ContractPotential, CutoffArtifact, ZeroModel

        a = member.artifact
        if a["kind"] == "zero":
            return ContractPotential(ZeroModel(), member.name, dtype=torch.float64)
        base_member = next((m for m in self.profile.members if m.name == a["base"]), None)
        if base_member is None:
            raise ValueError(f"zoo member {member.name}: base {a['base']!r} is not a member")
        base = self.build(base_member)
        model = CutoffArtifact(base.model, a["kind"], float(a["amplitude"]), float(a["r_c"]))
        return ContractPotential(model, member.name, dtype=next(base.model.parameters()).dtype)


def _aggregate(result, how: str, name: str) -> float:
    stats = result.summary["stats"][name]
    value = stats["median" if how == "median" else "mean"]
    return math.nan if value is None else float(value)


def run_zoo(profile: ZooProfile, out: str | Path, progress: bool = True,
            log: Callable[[str], None] = print, n_bootstrap: int = 2000, n_permutations: int = 5000,
            command: str = "") -> dict:
    """Run (or resume) the zoo and write ``zoo.json``, ``evidence.md`` and ``plots/``.

    ``command``: the command line that asked for this run, recorded in ``zoo.json`` and quoted in
    ``evidence.md``.

    Returns
    -------
    dict
        ``members`` (per member: family, reason, BSCT figures, MD outcomes per temperature, wall
        times, or ``skipped`` with the reason), ``answers`` (per temperature and figure: the
        :class:`~pesprobe.md.clustered.PrimaryAnswer` fields plus ``p_holm``), ``answers_by_scope``
        (the same within each of :data:`SCOPES`), ``molecules``,
        ``compute`` (total seconds) and the profile.
    """
    from pesprobe.data import load_scans
    from pesprobe.evaluate import evaluate
    from pesprobe.md import run_stability
    from pesprobe.md.config import MDConfig

    out = Path(out)
    zoo = _Zoo(profile, out, progress, log)
    scans = load_scans(profile.scans)
    molecules, paired_scans = pick_molecules(scans, profile.n_molecules, profile.min_p, profile.min_s)
    earlier = [load_earlier(p, [m.id for m in molecules], len(scans), profile.length_ps) for p in profile.include]
    rows: dict[str, dict[str, Any]] = {}
    running = {m.name for m in profile.members}
    for e in earlier:  # an earlier run's members first (in its order); this run's own rows take precedence
        rows.update({name: row for name, row in e.rows.items() if name not in running})
    bsct_results: dict[str, Any] = {}
    for member in profile.members:
        row = rows.setdefault(member.name, {"family": member.family, "reason": member.reason, "md": {},
                                            "seconds": {}})
        try:
            potential = zoo.build(member)
        except Exception as exc:  # noqa: BLE001 - a member that cannot be built is skipped, with why
            row["skipped"] = f"{type(exc).__name__}: {exc}".strip()
            log(f"[zoo] {member.name}: skipped ({row['skipped']})")
            continue
        tick = time.perf_counter()
        result = evaluate(potential, scans, out=zoo.folder(member) / "bsct", progress=progress, name=member.name,
                          report=False)
        row["seconds"]["bsct"] = float(sum(m.seconds for m in result.metrics))
        row["seconds"]["bsct_wall"] = time.perf_counter() - tick
        row["bsct"] = {name: _aggregate(result, how, name) for name, how in FIGURES.items()}
        row["bsct"]["n_failed_frames"] = result.summary["n_failed_frames"]
        bsct_results[member.name] = result
    for temperature in profile.temperatures:
        for member in profile.members:
            row = rows[member.name]
            if "skipped" in row:
                continue
            seeds = member.md_seeds or profile.seeds
            config = MDConfig(temperature_K=float(temperature), length_ps=profile.length_ps, seeds=tuple(seeds),
                              save_every=0)
            key = f"{temperature:g}"
            try:
                md = run_stability(zoo.build(member), molecules, config,
                                   out=zoo.folder(member) / f"md_{temperature:g}K", progress=progress,
                                   plots=False, name=member.name)
            except Exception as exc:  # noqa: BLE001 - one member's MD error must not end the zoo
                row.setdefault("md_errors", {})[key] = f"{type(exc).__name__}: {exc}".strip()
                log(f"[zoo] {member.name}: MD at {key} K failed ({row['md_errors'][key]})")
                continue
            per = md.molecules
            row["md"][key] = {"failure_fraction": float(np.mean([per[m.id][OUTCOME] for m in molecules])),
                              "per_molecule": {m.id: per[m.id][OUTCOME] for m in molecules},
                              "seeds": list(seeds)}
            row["seconds"][f"md_{key}K"] = md.wall_seconds
    temperatures = tuple(sorted({float(t) for t in profile.temperatures}
                                | {float(k) for r in rows.values() for k in r.get("md", {})}))
    answers = _answers(rows, molecules, temperatures, n_bootstrap, n_permutations, progress, "all")
    by_scope = {scope: _answers({n: r for n, r in rows.items() if r["family"] in families}, molecules,
                                temperatures, n_bootstrap, n_permutations, progress, scope)
                for scope, families in SCOPES.items()}
    compute = float(sum(v for r in rows.values() for k, v in r.get("seconds", {}).items() if not k.endswith("_wall")))
    train_s = sum(e.train_s for e in earlier)
    for member in profile.members:
        done = zoo.folder(member) / "trained.json"
        if done.exists():
            train_s += float(json.loads(done.read_text()).get("seconds", 0.0))
    result = {"command": command, "members": rows, "answers": answers, "answers_by_scope": by_scope,
              "molecules": [m.id for m in molecules], "n_scans": len(scans), "n_paired_scans": len(paired_scans),
              "compute": {"train_s": train_s, "bsct_and_md_s": compute, "total_s": compute + train_s},
              "profile": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(profile).items()
                             if k not in ("members", "include")},
                          "temperatures": list(temperatures), "include": [str(e.path) for e in earlier]}}
    atomic_write_json(out / "zoo.json", json_safe(result))
    from pesprobe.zoo.report import write_report

    write_report(result, out)
    return result


def _answers(rows: dict[str, dict], molecules: list[Molecule], temperatures, n_bootstrap: int,
             n_permutations: int, progress: bool = False, label: str = "all") -> dict[str, dict[str, dict]]:
    """Per temperature and figure: Spearman ρ across potentials, cluster CI and permutation p, partial ρ
    given force MAE, Holm-adjusted p over the figures."""
    from tqdm.auto import tqdm

    from pesprobe.md.clustered import PrimaryQuestion, answer
    from pesprobe.md.stats import holm

    out: dict[str, dict[str, dict]] = {}
    for temperature in temperatures:
        key = f"{temperature:g}"
        pairs = []
        for name, row in rows.items():
            if "skipped" in row or key not in row["md"]:
                continue
            for m in molecules:
                pairs.append({"potential": name, "molecule": m.id, OUTCOME: row["md"][key]["per_molecule"][m.id],
                              **row["bsct"]})
        if len({p["potential"] for p in pairs}) < 3:
            continue
        answers = {}
        for figure in tqdm(FIGURES, desc=f"statistics ({label}, {key} K)", unit="figure", disable=not progress):
            question = PrimaryQuestion(predictor=figure, outcome=OUTCOME, unit="potential", control=BASELINE)
            a = answer(pairs, question, n_bootstrap, n_permutations).as_dict()
            if figure == BASELINE:  # conditioning on itself says nothing
                a.update(partial_rho=math.nan, partial_ci_low=math.nan, partial_ci_high=math.nan,
                         partial_p_value=math.nan)
            answers[figure] = a
        p = np.array([a["p_value"] for a in answers.values()], dtype=float)
        finite = np.isfinite(p)
        adjusted = np.full(len(p), np.nan)
        adjusted[finite] = holm(p[finite])
        for a, p_holm in zip(answers.values(), adjusted):
            a["p_holm"] = float(p_holm)
        out[key] = answers
    return out
