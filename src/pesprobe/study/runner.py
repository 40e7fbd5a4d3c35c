"""``run_study``: train every variant, run BSCT and MD on it, then compare and report.

Output folder ``OUT``::

    OUT/study.json, study.csv, summary.md,
        report.html                              the study (written after every run)
    OUT/plots/                                   figures embedded in report.html
    OUT/variants/<name>/train/                   pesprobe train output (last.pt, best.pt, log.jsonl ...)
    OUT/variants/<name>/bsct/                    BSCT results and prediction cache
    OUT/variants/<name>/md/                      MD stability results, per-trajectory files, plots
    OUT/variants/<name>/result.json              the variant's numbers (its completion mark)

A study with ``seeds: [k1, k2, ...]`` has one such run per variant and seed, in
``OUT/variants/<name>/seed<k>/`` (``train/``, ``bsct/``, ``md/``, ``result.json``); it runs every
variant with the first seed, then every variant with the next, so a one-seed ablation is complete
first.

BSCT and MD evaluate the best-by-validation model (``train/best.pt``, the lowest ``valid_score``
among the evaluations of ``train.eval_every``) when training wrote one, else ``train/last.pt``;
the validation errors reported are those of the evaluated checkpoint. With the study's default
``eval_every`` (the whole budget) the one evaluation is at the last step, so both files hold the
same weights.

Resuming: a run whose ``result.json`` matches the current settings is reused without loading its
training data; an interrupted training continues from ``train/last.pt``; BSCT and MD reuse their
finished scans and trajectories. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
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
from pesprobe.md.record import ENGINE_VERSION as MD_ENGINE_VERSION
from pesprobe.study.config import StudyConfig, StudyError, Variant, digest

#: BSCT numbers kept per variant (means over the scans; see :func:`pesprobe.metrics.summarize`).
BSCT_KEYS = ("full_smoothness", "compress_smoothness", "stretch_smoothness", "full_energy_mae", "full_forces_mae",
             "full_smoothness_skill")
#: Checkpoints of ``pesprobe train``: the best-by-validation model, else the last one.
BEST, LAST = "best.pt", "last.pt"
#: Per-scan BSCT values kept for the distributions, the worst-case plots and the correlation.
SCAN_KEYS = ("full_smoothness", "compress_smoothness", "stretch_smoothness", "spurious_minima",
             "energy_force_consistency")


@dataclass
class VariantResult:
    """Everything measured for one variant.

    Attributes
    ----------
    name, label : str
    extends : str or None
    model : dict
        Resolved ModelConfig overrides.
    steps : int
        Optimizer steps trained.
    key : str
        Hash of every setting that shapes these numbers (resume check).
    identity : str
        BSCT identity of the trained model (key of its prediction cache).
    valid : dict
        ``valid_energy_mae`` (eV/atom), ``valid_forces_mae`` (eV/Å) and RMSEs of the evaluated
        checkpoint; ``n_train``, ``n_valid`` structures.
    bsct : dict
        Means over the scans of :data:`BSCT_KEYS` (FSD 1/Å, MAE eV and eV/Å, skill 1 − FSD/FSD_null),
        ``spurious_minima`` (mean count per scan), ``energy_force_consistency`` (median over scans,
        eV), ``n_scans_with_discontinuities`` (scans with a confirmed discontinuity),
        ``n_failed_frames``, ``n_scans``.
    scans : dict
        ``{scan id: {metric: value}}`` for :data:`SCAN_KEYS`.
    md : dict
        ``n_trajectories``, ``n_failed``, ``failures_by_criterion`` and the mean of each stability
        measure over all trajectories (see :class:`pesprobe.md.StabilityResult`).
    molecules : dict
        ``{molecule id: {measure: value}}``: MD measures per molecule (means over seeds).
    seconds : dict
        Wall time of ``train``, ``bsct`` and ``md`` (summed over this and earlier interrupted calls),
        plus ``bsct_model`` (model time summed over the scans, cached ones included) and
        ``md_integration`` (summed over the trajectories, resumed ones included), s.
    seed : int or None
        The training seed of a ``seeds:`` study's run (folder ``variants/<name>/seed<k>``); None in
        a one-seed study (``variants/<name>``, trained with the study's ``seed``).
    checkpoint : str
        The checkpoint BSCT and MD evaluated: ``best.pt`` or ``last.pt``.
    checkpoint_step : int
        Its optimizer step (0: not recorded, a result written before checkpoints were recorded).
    """

    name: str
    label: str
    extends: str | None
    model: dict[str, Any]
    steps: int
    key: str
    identity: str
    valid: dict[str, float] = field(default_factory=dict)
    bsct: dict[str, Any] = field(default_factory=dict)
    scans: dict[str, dict[str, float]] = field(default_factory=dict)
    md: dict[str, Any] = field(default_factory=dict)
    molecules: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    checkpoint: str = LAST
    checkpoint_step: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as null); :meth:`from_json` inverts it."""
        return json_safe(asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VariantResult:
        """Inverse of :meth:`to_json` (null back to NaN)."""
        return cls(**_unclean(data))


def _unclean(obj: Any) -> Any:
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: (v if k in ("extends", "seed") else _unclean(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unclean(v) for v in obj]
    return obj


@dataclass
class StudyResult:
    """The variants' results and where they were written.

    Attributes
    ----------
    config : StudyConfig
    variants : list of VariantResult
        One per variant in study order (only the finished ones): the tables, figures and
        correlations use these; in a ``seeds:`` study, the runs of the first seed.
    runs : dict
        ``{variant name: [VariantResult per seed, in run order]}``: every finished run (empty when
        built by hand from ``variants`` alone; see :meth:`seed_runs`).
    scans : ScanSet
        The BSCT scans used.
    md_molecules : list of str
        Ids of the MD molecules (scan ids).
    out : Path
    seconds : float
        Wall time of this call, s.
    """

    config: StudyConfig
    variants: list[VariantResult]
    scans: ScanSet
    md_molecules: list[str]
    out: Path
    seconds: float = 0.0
    runs: dict[str, list[VariantResult]] = field(default_factory=dict)

    def add(self, run: VariantResult) -> None:
        """Record a finished run (a run of the first seed is also one of :attr:`variants`)."""
        self.runs.setdefault(run.name, []).append(run)
        if run.seed is None or run.seed == self.config.seed:
            self.variants.append(run)

    def seed_runs(self) -> dict[str, list[VariantResult]]:
        """Every finished run per variant: :attr:`runs`, or one run per variant of :attr:`variants`."""
        return self.runs or {v.name: [v] for v in self.variants}


def run_folder(out: Path, name: str, seed: int | None) -> Path:
    """``OUT/variants/<name>`` (one-seed study, ``seed`` None) or ``OUT/variants/<name>/seed<k>``."""
    folder = Path(out) / "variants" / name
    return folder if seed is None else folder / f"seed{seed}"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of every file under a folder (sorted)."""
    from pesprobe.data.loader import content_key

    if path.is_dir():
        return content_key(path)
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other values unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _Study:
    """State of one :func:`run_study` call."""

    def __init__(self, config: StudyConfig, out: Path, progress: bool, log: Callable[[str], None]) -> None:
        from pesprobe.data import load_scans
        from pesprobe.study.data import md_molecules, spread

        self.config, self.out, self.progress, self.log = config, out, progress, log
        self.device = resolve_device(config.device)
        self.scans = spread(load_scans(config.scans_path), config.bsct_max_scans)
        if not len(self.scans):
            raise StudyError(f"data.scans: no scans could be loaded from {config.scans_path}")
        self.molecules = md_molecules(self.scans, config.md_molecules)
        self.md_config = config.md_config()
        data = [p for p in (config.train_path, config.valid_path) if p is not None]
        self.data_key = digest([file_digest(p) for p in data])
        self.legacy_data_key = digest({str(p): file_digest(p) for p in data})
        self.eval_key = digest({"scans": [s.content_hash() for s in self.scans],
                                "molecules": [m.id for m in self.molecules], "md": self.md_config.to_dict(),
                                "md_engine": MD_ENGINE_VERSION, "batch_frames": config.bsct_batch_frames})

    # ------------------------------------------------------------------ training
    def train_config(self, variant: Variant, steps: int, seed: int | None = None):
        """The :class:`~pesprobe.train.TrainConfig` of ``variant`` trained with ``seed`` (None: the study's seed)."""
        from pesprobe.train import TrainConfig

        c = self.config
        # by default validation only at the end (evaluations cost training time); a study's train.eval_every
        # validates more often, and best.pt is then the best of those evaluations
        loop = {"eval_every": steps, "ckpt_every": max(1, steps // 10), "log_every": max(1, steps // 50),
                **c.train, "steps": steps, "seed": c.seed if seed is None else seed, "device": c.device,
                "out": str(self.folder(variant, seed) / "train")}
        data = {"train": [str(c.train_path)], "valid": [str(c.valid_path)] if c.valid_path else [],
                "valid_fraction": c.valid_fraction, "seed": c.seed, "max_force": c.max_force}
        return TrainConfig.from_dict({"model": dict(variant.model), "data": data, "train": loop})

    def steps(self, variant: Variant) -> int:
        """The variant's step budget (every seed's); a minutes budget is measured once and stored in
        ``variants/<name>/budget.json``."""
        c = self.config
        if c.steps is not None:
            return c.steps
        from pesprobe.study.budget import steps_for_minutes

        path = self.folder(variant) / "budget.json"
        probe = self.train_config(variant, 1)
        key = digest({"minutes": c.minutes, "train": {k: v for k, v in probe.to_dict().items() if k != "train"},
                      "loop": {k: v for k, v in probe.to_dict()["train"].items() if k not in ("steps", "out")}})
        if path.exists():
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return int(stored["steps"])
        steps, seconds = steps_for_minutes(probe, c.minutes)
        self.log(f"[{variant.name}] {seconds:.3g} s per step: {c.minutes:g} min -> {steps} steps")
        atomic_write_json(path, {"key": key, "minutes": c.minutes, "seconds_per_step": seconds, "steps": steps})
        return steps

    def folder(self, variant: Variant, seed: int | None = None) -> Path:
        """``OUT/variants/<name>``, or ``OUT/variants/<name>/seed<k>`` for a run of a ``seeds:`` study."""
        return run_folder(self.out, variant.name, seed)

    def _train_key(self, variant: Variant, config: Any, folder: Path) -> str:
        """Hash of what shapes the weights; refuses a training folder written with other settings."""
        settings = config.to_dict()
        # not where the data files lie (their content is in data_key) nor how the device was spelled
        # ("auto" or "cpu" on a CPU-only machine)
        data = {k: v for k, v in settings["data"].items() if k not in ("train", "valid")}
        loop = {k: v for k, v in settings["train"].items() if k not in ("out", "device")}
        train_key = digest({"config": {**{k: v for k, v in settings.items() if k not in ("train", "data")},
                                       "data": data}, "loop": {**loop, "device": self.device.split(":")[0]},
                            "data": self.data_key})
        legacy_key = digest({"config": {k: v for k, v in settings.items() if k != "train"},  # before 2026-11-24
                             "loop": {k: v for k, v in settings["train"].items() if k != "out"},
                             "data": self.legacy_data_key})
        marker = folder / "train_key.json"
        last = folder / "train" / LAST
        if last.exists():
            stored = json.loads(marker.read_text()).get("key") if marker.exists() else None
            if stored == legacy_key:
                train_key = legacy_key  # a study folder of the earlier key format: keep reusing it
            if stored != train_key:
                raise StudyError(f"variant {variant.name}: its training settings or data changed since {last} was "
                                 f"written; delete {folder} to retrain it, or use another output folder")
        return train_key

    def _train(self, config: Any, folder: Path, train_key: str, timing: dict[str, float]):
        from pesprobe.train import train

        atomic_write_json(folder / "train_key.json", {"key": train_key})
        last = folder / "train" / LAST
        start = time.perf_counter()
        result = train(config, resume=last.exists(), progress=self.progress)
        timing["train"] = timing.get("train", 0.0) + time.perf_counter() - start
        atomic_write_json(folder / "timing.json", timing)
        return result

    # ------------------------------------------------------------------ one run
    def run_variant(self, variant: Variant, seed: int | None = None) -> VariantResult:
        """Train ``variant`` with ``seed`` (or resume), then BSCT and MD of its best-by-validation
        checkpoint; reuse a finished ``result.json`` with the same key without training."""
        from pesprobe.evaluate import evaluate
        from pesprobe.md import run_stability
        from pesprobe.models import TorchPotential, load_checkpoint

        folder = self.folder(variant, seed)
        tag = variant.name if seed is None else f"{variant.name} seed {seed}"
        steps = self.steps(variant)
        config = self.train_config(variant, steps, seed)
        train_key = self._train_key(variant, config, folder)
        key = digest({"train": train_key, "eval": self.eval_key})
        done = folder / "result.json"
        stored = _read_result(done)
        if stored is not None and stored.key == key and stored.checkpoint == _evaluated(folder / "train"):
            self.log(f"[{tag}] reusing {done}")
            return stored
        timing_path = folder / "timing.json"
        timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
        trained = self._train(config, folder, train_key, timing)
        if timing.get("eval_key") != key:  # evaluated afresh: earlier BSCT/MD times were for other settings
            timing = {k: v for k, v in timing.items() if k not in ("bsct", "md")}
            timing["eval_key"] = key
        checkpoint = folder / "train" / _evaluated(folder / "train")
        model, extra = load_checkpoint(checkpoint, map_location=self.device)
        state = extra.get("train_state") or {}
        metrics = (state.get("metrics") or {}) if checkpoint.name == BEST else trained.metrics
        dtype = next(model.parameters()).dtype
        potential = TorchPotential(model, device=self.device, dtype=dtype, batch_frames=self.config.bsct_batch_frames,
                                   name=variant.name)
        tick = time.perf_counter()
        bsct = evaluate(potential, self.scans, out=folder / "bsct", progress=self.progress, name=variant.name)
        timing["bsct"] = timing.get("bsct", 0.0) + time.perf_counter() - tick
        atomic_write_json(folder / "timing.json", timing)
        tick = time.perf_counter()
        md = run_stability(model, self.molecules, self.md_config, out=folder / "md", engine="auto", device=self.device,
                           progress=self.progress, name=variant.name)
        timing["md"] = timing.get("md", 0.0) + time.perf_counter() - tick
        atomic_write_json(folder / "timing.json", timing)
        summary = bsct.summary
        systems = bsct.systems
        consistency = [systems[s]["energy_force_consistency"] for s in systems]
        finite = [v for v in consistency if v is not None and math.isfinite(v)]
        result = VariantResult(
            name=variant.name, label=variant.label, extends=variant.extends, model=dict(variant.model), steps=steps,
            key=key, identity=potential.identity(),
            valid={**{k: float(metrics.get(k, math.nan)) for k in
                      ("valid_energy_mae", "valid_forces_mae", "valid_energy_rmse", "valid_forces_rmse",
                       "valid_energy_offset_mae", "valid_energy_within_mae", "valid_score")},
                   **{k: float(v) for k, v in trained.baselines.items()},
                   "n_train": trained.n_train, "n_valid": trained.n_valid},
            bsct={**{k: _num(summary.get(k)) for k in BSCT_KEYS},
                  "spurious_minima": _num(summary["stats"]["spurious_minima"]["mean"]),
                  "energy_force_consistency": float(np.median(finite)) if finite else math.nan,
                  "n_scans_with_discontinuities": summary["n_scans_with_discontinuities"],
                  "n_failed_frames": summary["n_failed_frames"], "n_scans": summary["n_scans"]},
            scans={sid: {k: _num(row.get(k)) for k in SCAN_KEYS} for sid, row in systems.items()},
            md={k: v for k, v in md.summary.items() if k != "wall_seconds"},
            molecules=md.molecules,
            seconds={**{part: timing.get(part, 0.0) for part in ("train", "bsct", "md")},
                     "bsct_model": float(sum(_num(row.get("seconds")) for row in systems.values())),
                     "md_integration": md.wall_seconds},
            seed=seed, checkpoint=checkpoint.name, checkpoint_step=int(state.get("step", trained.steps)))
        atomic_write_json(done, result.to_json())
        return result


def _evaluated(train_dir: Path) -> str:
    """The checkpoint to evaluate in ``train_dir``: ``best.pt`` when training wrote one, else ``last.pt``."""
    return BEST if (train_dir / BEST).exists() else LAST


def _read_result(path: Path) -> VariantResult | None:
    """The stored result at ``path``, or None if absent or unreadable (then it is recomputed)."""
    if not path.exists():
        return None
    try:
        return VariantResult.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError):
        return None


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def run_study(config: StudyConfig, out: str | Path, build_data: bool = False, progress: bool = True,
              log: Callable[[str], None] = print, report: bool = True) -> StudyResult:
    """Run the ablation study ``config`` into ``out``: every variant, once per training seed (see the
    module docstring for the files).

    Parameters
    ----------
    config : StudyConfig
    out : str or Path
        Output folder (re-running with the same folder resumes).
    build_data : bool
        Build missing training data and scans from the study's ``build:`` recipes first.
    progress : bool
        Progress bars.
    log : callable
        Receives one line per event.
    report : bool
        Write ``study.json``, ``study.csv``, ``summary.md`` and ``report.html`` (after each run and at
        the end).

    Raises
    ------
    pesprobe.study.data.MissingDataError
        If data are missing (the message gives the commands that make them).
    StudyError
        For settings that cannot be used, or a training folder written with other settings.
    """
    import torch

    from pesprobe.study.data import ensure_data

    start = time.perf_counter()
    out = Path(out)
    ensure_data(config, build_data, progress, log)
    study = _Study(config, out, progress, log)
    threads = torch.get_num_threads()
    if study.device == "cpu":
        torch.set_num_threads(config.threads)
    try:
        return _run(study, config, out, start, log, report)
    finally:
        torch.set_num_threads(threads)


def _run(study: _Study, config: StudyConfig, out: Path, start: float, log: Callable[[str], None],
         report: bool) -> StudyResult:
    from pesprobe.study.report import write_outputs

    seeds: list[int | None] = list(config.seeds) or [None]
    trained = f" x {len(seeds)} training seeds ({', '.join(map(str, seeds))})" if config.seeds else ""
    log(f"study {config.name!r}: {len(config.variants)} variants{trained}, {len(study.scans)} BSCT scans, "
        f"{len(study.molecules)} MD molecules x {len(study.md_config.seeds)} seeds, device {study.device} -> {out}")
    result = StudyResult(config=config, variants=[], scans=study.scans, md_molecules=[m.id for m in study.molecules],
                         out=out)
    runs = [(seed, variant) for seed in seeds for variant in config.variants]
    for index, (seed, variant) in enumerate(runs):
        tick = time.perf_counter()
        result.add(study.run_variant(variant, seed))
        log(f"[{variant.name}{'' if seed is None else f' seed {seed}'}] done in {time.perf_counter() - tick:.1f} s")
        result.seconds = time.perf_counter() - start
        if report:
            write_outputs(result, final=index == len(runs) - 1)
    return result
