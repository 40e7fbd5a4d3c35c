"""The study file: data, how to build it, the training budget, MD settings and the model variants.

A study file is YAML with these sections (every key is checked; an unknown key is an error that
names it, e.g. ``variants[2].modle``)::

    name: BSCT-guided design            # title of the report
    seed: 0                             # one seed for every variant (init, batches, split)
    # seeds: [0, 1, 2]                  # or: train and evaluate every variant once per seed (not with seed:)
    device: auto                        # cpu, cuda, cuda:N or auto
    threads: 1                          # torch threads on CPU (small models: 1 is as fast, and safe to share)
    data:                               # optional where build: says where the data go
      train: data/train.xyz             # extended XYZ (or any format pesprobe train reads)
      valid: data/val.xyz               # optional; else valid_fraction of the training molecules
      scans: data/bsct.npz              # BSCT scan set (compact .npz or published-layout folder)
      max_force: 30.0                   # optional: drop structures with a force component above it, eV/Å
    build:                              # how to make missing data (--build-data)
      train: {preset: xtb-train, out: data/xtb-train}         # pesprobe data sample
      scans: {preset: xtb-organic, out: data/bsct-xtb}         # pesprobe scan build
    budget: {steps: 1500}               # or {minutes: 6}: the same for every variant
    train: {batch_size: 8, lr: 0.002}   # pesprobe train's train: section (not steps/out/seed/device)
    model: {d_model: 48}                # ModelConfig fields shared by all variants
    bsct: {max_scans: 24}               # BSCT on all scans, or on N spread over the bond types
    md: {molecules: 6, length_ps: 2}    # MDConfig fields, plus molecules: N or a list of scan ids
    variants:
      - {name: knn, label: hard kNN baseline, model: {graph: knn}}
      - {name: diffknn, extends: knn, label: + differentiable kNN, model: {graph: diffknn}}

A variant's model is the shared ``model:`` section, then the chain of variants it ``extends``,
then its own overrides. Relative paths are relative to the study file's folder (for the studies
shipped with pesprobe, relative to the current folder).

``seed: k`` (the default ``seed: 0``) is one training seed, results in ``variants/<name>/``.
``seeds: [k1, k2, ...]`` trains and evaluates every variant once per seed (model initialisation,
batch order, rotations), results in ``variants/<name>/seed<k>/``; the molecule split of
``valid_fraction`` uses the first seed, so every seed validates on the same molecules.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: Studies shipped in ``pesprobe/resources/studies``.
SHIPPED = ("default", "quick", "ablation")
#: ``train:`` keys the study sets itself, per variant.
RESERVED_TRAIN_KEYS = ("steps", "epochs", "out", "seed", "device")
#: Keys of the ``build.train`` recipe besides :class:`pesprobe.data.sample.SampleSettings` fields.
TRAIN_RECIPE_KEYS = ("preset", "smiles", "out", "jobs")
#: Keys of the ``build.scans`` recipe.
SCAN_RECIPE_KEYS = ("preset", "smiles", "out", "reference", "bond_types", "per_type", "points", "seed", "jobs")


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file and the key."""


@dataclass
class Variant:
    """One model design of the study.

    Attributes
    ----------
    name : str
        Short name: table row and folder ``variants/<name>``.
    label : str
        What changes, for the report (e.g. ``"+ diffknn"``).
    extends : str or None
        The variant this one modifies: the report compares the two ("did this step lower FSD?").
    overrides : dict
        This variant's own :class:`~pesprobe.models.ModelConfig` overrides.
    model : dict
        The resolved overrides: shared ``model:`` section, the ``extends`` chain, then ``overrides``.
    """

    name: str
    label: str
    extends: str | None
    overrides: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainRecipe:
    """How to make the training and validation sets (:func:`pesprobe.data.sample.sample_dataset`).

    Attributes
    ----------
    preset : str or None
        A ``pesprobe data sample`` preset (``xtb-train``).
    smiles : list of str
        ``"SMILES name"`` entries, used instead of (or besides) the preset's molecules.
    out : Path
        Output folder (``train.xyz``, ``val.xyz``, ``test.xyz``).
    settings : dict
        :class:`~pesprobe.data.sample.SampleSettings` overrides (reference, temperatures ...).
    jobs : int
        Worker processes.
    """

    preset: str | None
    smiles: list[str]
    out: Path
    settings: dict[str, Any]
    jobs: int = 1


@dataclass
class ScanRecipe:
    """How to make the BSCT scan set (:func:`pesprobe.scan.build.build_scans`).

    Attributes
    ----------
    preset : str or None
        A ``pesprobe scan build`` preset (``xtb-organic``).
    smiles : list of str
        ``"SMILES name"`` entries, used instead of (or besides) the preset's molecules.
    out : Path
        Output folder; the compact file is ``<out>.npz``.
    reference : str or None
        Reference SPEC (default: the preset's, else ``gfn2-xtb``).
    bond_types : list of str or None
        Bond types to scan (default: the preset's, else all without hydrogen).
    per_type : int or None
        Scans per bond type.
    points : int or None
        Frames per scan.
    seed : int or None
    jobs : int
    """

    preset: str | None
    smiles: list[str]
    out: Path
    reference: str | None = None
    bond_types: list[str] | None = None
    per_type: int | None = None
    points: int | None = None
    seed: int | None = None
    jobs: int = 1


@dataclass
class StudyConfig:
    """A validated study (see the module docstring for the file format).

    Attributes
    ----------
    name : str
    source : str
        The study file.
    seed : int
        The training seed of a one-seed study; with ``seeds``, the first of them (also the seed of
        the validation split).
    device : str
    threads : int
        torch intra-op threads when running on the CPU.
    train_path, valid_path, scans_path : Path or None
        Data (``valid_path`` None: ``valid_fraction`` of the training molecules are held out).
    valid_fraction : float
    max_force : float or None
        Training and validation structures with a force component above it are dropped, eV/Å.
    train_recipe, scan_recipe : optional
        How to build missing data.
    steps, minutes : int or None, float or None
        The training budget of every variant (exactly one is set).
    train : dict
        ``train:`` section of each variant's training config.
    bsct_max_scans : int or None
    bsct_batch_frames : int
    md : dict
        :class:`~pesprobe.md.MDConfig` fields.
    md_molecules : int or list of str
        Number of held-out molecules for MD (taken from the BSCT scans), or their scan ids.
    variants : list of Variant
    seeds : list of int
        The training seeds of a ``seeds:`` study (one run per variant and seed, each in
        ``variants/<name>/seed<k>``); empty for a one-seed study (``seed``, ``variants/<name>``).
    """

    name: str
    source: str
    seed: int
    device: str
    threads: int
    train_path: Path | None
    valid_path: Path | None
    scans_path: Path | None
    valid_fraction: float
    train_recipe: TrainRecipe | None
    scan_recipe: ScanRecipe | None
    steps: int | None
    minutes: float | None
    train: dict[str, Any]
    bsct_max_scans: int | None
    bsct_batch_frames: int
    md: dict[str, Any]
    md_molecules: int | list[str]
    variants: list[Variant]
    max_force: float | None = None
    seeds: list[int] = field(default_factory=list)

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def md_config(self):
        """The :class:`~pesprobe.md.MDConfig` of the MD stability test."""
        from pesprobe.md import MDConfig

        md = dict(self.md)
        if "seeds" in md:
            md["seeds"] = tuple(md["seeds"])
        return MDConfig(**md)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the resolved study (paths as strings), for ``study.json``."""
        def recipe(r: Any) -> dict[str, Any] | None:
            return None if r is None else {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(r).items()}

        return {
            "name": self.name, "source": self.source, "seed": self.seed, "seeds": list(self.seeds),
            "device": self.device, "threads": self.threads,
            "data": {"train": _str(self.train_path), "valid": _str(self.valid_path), "scans": _str(self.scans_path),
                     "valid_fraction": self.valid_fraction, "max_force": self.max_force},
            "build": {"train": recipe(self.train_recipe), "scans": recipe(self.scan_recipe)},
            "budget": {"steps": self.steps, "minutes": self.minutes}, "train": dict(self.train),
            "bsct": {"max_scans": self.bsct_max_scans, "batch_frames": self.bsct_batch_frames},
            "md": {**self.md, "molecules": self.md_molecules},
            "variants": [{"name": v.name, "label": v.label, "extends": v.extends, "overrides": v.overrides,
                          "model": v.model} for v in self.variants],
        }


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def digest(obj: Any) -> str:
    """Short SHA-256 of a JSON-able object (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- reading
def shipped_study_path(name: str) -> Path:
    """Path of a study shipped with pesprobe (``default``, ``quick`` or ``ablation``)."""
    if name not in SHIPPED:
        raise StudyError(f"unknown shipped study {name!r}; shipped: {', '.join(SHIPPED)}")
    return Path(str(resources.files("pesprobe").joinpath("resources", "studies", f"{name}.yaml")))


def load_study(path_or_name: str | Path, base_dir: str | Path | None = None) -> StudyConfig:
    """Read and validate a study file, or a shipped study by name (``default``, ``quick``, ``ablation``).

    Parameters
    ----------
    path_or_name : str or Path
        A YAML file, or the name of a shipped study.
    base_dir : str or Path, optional
        Folder that relative paths are relative to (default: the file's folder; the current
        folder for shipped studies).

    Raises
    ------
    StudyError
        Naming the file and the first bad key.
    """
    import yaml

    shipped = str(path_or_name) in SHIPPED and not Path(path_or_name).exists()
    path = shipped_study_path(str(path_or_name)) if shipped else Path(path_or_name)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StudyError(f"{path}: cannot read study file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML ({exc})") from None
    if base_dir is None:
        base_dir = Path.cwd() if shipped else path.parent
    try:
        return study_from_dict(raw, Path(base_dir), source=str(path))
    except StudyError as exc:
        raise StudyError(f"{path}: {exc}") from None


def study_from_dict(raw: Any, base_dir: Path, source: str = "<dict>") -> StudyConfig:
    """Validate a study given as nested dicts (see :func:`load_study`)."""
    top = _mapping(raw, "study")
    _known(top, ("name", "seed", "seeds", "device", "threads", "data", "build", "budget", "train", "model", "bsct",
                 "md", "variants"), "")
    if "seed" in top and "seeds" in top:
        raise StudyError("seeds: give seed (one seed) or seeds (a list of seeds), not both")
    seeds = _seeds(top["seeds"]) if "seeds" in top else []
    seed = seeds[0] if seeds else _int(top.get("seed", 0), "seed")
    device = _str_value(top.get("device", "auto"), "device")
    threads = _positive_int(top.get("threads", 1), "threads")
    if device.split(":")[0] not in ("cpu", "cuda", "auto"):
        raise StudyError(f"device: must be cpu, cuda, cuda:N or auto, got {device!r}")

    build = _mapping(top.get("build") or {}, "build")
    _known(build, ("train", "scans"), "build")
    train_recipe = _train_recipe(build["train"], base_dir) if build.get("train") else None
    scan_recipe = _scan_recipe(build["scans"], base_dir) if build.get("scans") else None

    data = _mapping(top.get("data") or {}, "data")
    _known(data, ("train", "valid", "scans", "valid_fraction", "max_force"), "data")
    train_path = _path(data.get("train"), base_dir, "data.train")
    valid_path = _path(data.get("valid"), base_dir, "data.valid")
    scans_path = _path(data.get("scans"), base_dir, "data.scans")
    if train_recipe is not None:
        train_path = train_path or train_recipe.out / "train.xyz"
        valid_path = valid_path or train_recipe.out / "val.xyz"
    if scan_recipe is not None:
        scans_path = scans_path or scan_recipe.out.with_name(scan_recipe.out.name + ".npz")
    if train_path is None:
        raise StudyError("data.train: give a training file, or a build.train recipe")
    if scans_path is None:
        raise StudyError("data.scans: give a scan set, or a build.scans recipe")
    valid_fraction = _float(data.get("valid_fraction", 0.1), "data.valid_fraction")
    if not 0.0 <= valid_fraction < 1.0:
        raise StudyError(f"data.valid_fraction: must be in [0, 1), got {valid_fraction}")
    max_force = _float(data["max_force"], "data.max_force") if data.get("max_force") is not None else None
    if max_force is not None and not max_force > 0:
        raise StudyError(f"data.max_force: must be > 0 (eV/Å), got {max_force}")

    steps, minutes = _budget(top.get("budget"))
    train = dict(_mapping(top.get("train") or {}, "train"))
    for key in RESERVED_TRAIN_KEYS:
        if key in train:
            raise StudyError(f"train.{key}: set by the study (budget:, seed:, device:, the output folder); remove it")

    bsct = _mapping(top.get("bsct") or {}, "bsct")
    _known(bsct, ("max_scans", "batch_frames"), "bsct")
    max_scans = bsct.get("max_scans")
    if max_scans is not None:
        max_scans = _positive_int(max_scans, "bsct.max_scans")
    batch_frames = _positive_int(bsct.get("batch_frames", 64), "bsct.batch_frames")

    md = dict(_mapping(top.get("md") or {}, "md"))
    molecules = md.pop("molecules", 4)
    if isinstance(molecules, list):
        if not molecules or not all(isinstance(m, str) for m in molecules):
            raise StudyError(f"md.molecules: must be a number or a non-empty list of scan ids, got {molecules!r}")
    else:
        molecules = _positive_int(molecules, "md.molecules")

    variants = _variants(top.get("variants"), _mapping(top.get("model") or {}, "model"))
    config = StudyConfig(
        name=_str_value(top.get("name", Path(source).stem), "name"), source=source, seed=seed, device=device,
        threads=threads,
        train_path=train_path, valid_path=valid_path, scans_path=scans_path, valid_fraction=valid_fraction,
        train_recipe=train_recipe, scan_recipe=scan_recipe, steps=steps, minutes=minutes, train=train,
        bsct_max_scans=max_scans, bsct_batch_frames=batch_frames, md=md, md_molecules=molecules,
        variants=variants, max_force=max_force, seeds=seeds)
    _check_nested(config)
    return config


def _check_nested(config: StudyConfig) -> None:
    """Validate the parts other packages own: MD settings, each variant's model and training config."""
    try:
        config.md_config()
    except (TypeError, ValueError) as exc:
        raise StudyError(f"md: {exc}") from None
    from pesprobe.train.config import ConfigError, TrainConfig

    for v in config.variants:
        loop = {**config.train, "steps": config.steps or 1, "seed": config.seed, "device": config.device}
        try:
            TrainConfig.from_dict({"model": v.model, "data": {"train": ["unused.xyz"]}, "train": loop})
        except ConfigError as exc:
            raise StudyError(f"variants ({v.name}): {exc}") from None


def _variants(raw: Any, shared_model: dict[str, Any]) -> list[Variant]:
    if not isinstance(raw, list) or not raw:
        raise StudyError("variants: must be a non-empty list")
    variants: list[Variant] = []
    by_name: dict[str, Variant] = {}
    for index, item in enumerate(raw):
        where = f"variants[{index}]"
        item = _mapping(item, where)
        _known(item, ("name", "label", "extends", "model"), where)
        name = _str_value(item.get("name"), f"{where}.name")
        if not name or not all(c.isalnum() or c in "._-" for c in name):
            raise StudyError(f"{where}.name: use letters, digits, '.', '_' and '-' only, got {name!r}")
        if name in by_name:
            raise StudyError(f"{where}.name: {name!r} is used twice")
        extends = item.get("extends")
        if extends is not None and extends not in by_name:
            raise StudyError(f"{where}.extends: {extends!r} is not an earlier variant "
                             f"(earlier: {', '.join(by_name) or 'none'})")
        overrides = dict(_mapping(item.get("model") or {}, f"{where}.model"))
        base = by_name[extends].model if extends is not None else shared_model
        variant = Variant(name=name, label=_str_value(item.get("label", name), f"{where}.label"), extends=extends,
                          overrides=overrides, model={**base, **overrides})
        variants.append(variant)
        by_name[name] = variant
    return variants


def _seeds(raw: Any) -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise StudyError(f"seeds: must be a non-empty list of integers, got {raw!r}")
    seeds = [_int(value, f"seeds[{k}]") for k, value in enumerate(raw)]
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"seeds: each seed once, got {raw!r}")
    return seeds


def _budget(raw: Any) -> tuple[int | None, float | None]:
    budget = _mapping(raw, "budget") if raw is not None else {}
    _known(budget, ("steps", "minutes"), "budget")
    if ("steps" in budget) == ("minutes" in budget):
        raise StudyError("budget: give exactly one of steps or minutes")
    if "steps" in budget:
        return _positive_int(budget["steps"], "budget.steps"), None
    minutes = _float(budget["minutes"], "budget.minutes")
    if not minutes > 0:
        raise StudyError(f"budget.minutes: must be > 0, got {minutes}")
    return None, minutes


def _train_recipe(raw: Any, base_dir: Path) -> TrainRecipe:
    from pesprobe.data.sample import SampleSettings

    recipe = _mapping(raw, "build.train")
    setting_keys = tuple(SampleSettings.__dataclass_fields__)
    _known(recipe, TRAIN_RECIPE_KEYS + setting_keys, "build.train")
    settings = {k: v for k, v in recipe.items() if k in setting_keys}
    for key in ("temperatures", "stretch_range", "split"):
        if key in settings:
            settings[key] = tuple(settings[key])
    try:
        SampleSettings(**settings)
    except (TypeError, ValueError) as exc:
        raise StudyError(f"build.train: {exc}") from None
    preset, smiles = _sources(recipe, "build.train")
    return TrainRecipe(preset=preset, smiles=smiles, out=_required_path(recipe, base_dir, "build.train"),
                       settings=settings, jobs=_positive_int(recipe.get("jobs", 1), "build.train.jobs"))


def _scan_recipe(raw: Any, base_dir: Path) -> ScanRecipe:
    recipe = _mapping(raw, "build.scans")
    _known(recipe, SCAN_RECIPE_KEYS, "build.scans")
    preset, smiles = _sources(recipe, "build.scans")
    bond_types = recipe.get("bond_types")
    if bond_types is not None and (not isinstance(bond_types, list) or not all(isinstance(b, str) for b in bond_types)):
        raise StudyError(f"build.scans.bond_types: must be a list like [C-C, C-O], got {bond_types!r}")
    return ScanRecipe(
        preset=preset, smiles=smiles, out=_required_path(recipe, base_dir, "build.scans"),
        reference=_str_value(recipe["reference"], "build.scans.reference") if "reference" in recipe else None,
        bond_types=bond_types,
        per_type=_positive_int(recipe["per_type"], "build.scans.per_type") if "per_type" in recipe else None,
        points=_positive_int(recipe["points"], "build.scans.points") if "points" in recipe else None,
        seed=_int(recipe["seed"], "build.scans.seed") if "seed" in recipe else None,
        jobs=_positive_int(recipe.get("jobs", 1), "build.scans.jobs"))


def _sources(recipe: dict[str, Any], where: str) -> tuple[str | None, list[str]]:
    preset = recipe.get("preset")
    if preset is not None:
        preset = _str_value(preset, f"{where}.preset")
    smiles = recipe.get("smiles") or []
    if not isinstance(smiles, list) or not all(isinstance(s, str) and s.strip() for s in smiles):
        raise StudyError(f"{where}.smiles: must be a list of 'SMILES name' strings, got {smiles!r}")
    if preset is None and not smiles:
        raise StudyError(f"{where}: give a preset or a smiles list")
    return preset, [s.strip() for s in smiles]


def _required_path(recipe: dict[str, Any], base_dir: Path, where: str) -> Path:
    path = _path(recipe.get("out"), base_dir, f"{where}.out")
    if path is None:
        raise StudyError(f"{where}.out: the output folder is required")
    return path


# ---------------------------------------------------------------------------------------- checks
def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudyError(f"{where or 'study'}: must be a mapping, got {type(value).__name__}")
    return value


def _known(mapping: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in keys:
            name = f"{where}.{key}" if where else str(key)
            raise StudyError(f"{name}: unknown key (known: {', '.join(keys)})")


def _path(value: Any, base_dir: Path, where: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise StudyError(f"{where}: must be a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _str_value(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StudyError(f"{where}: must be a string, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{where}: must be an integer, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    value = _int(value, where)
    if value < 1:
        raise StudyError(f"{where}: must be >= 1, got {value}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise StudyError(f"{where}: must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise StudyError(f"{where}: must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise StudyError(f"{where}: must be finite, got {value!r}")
    return out
