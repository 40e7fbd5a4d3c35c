"""The zoo's potentials, each with the reason its smoothness differs.

Three families:

``trained``
    pesprobe Transformers trained on the same GFN2-xTB data, differing in one design choice
    (graph: hard kNN / differentiable kNN / radius; k; cutoff; radial smearing width; attention
    temperature; force head) or in training length (under- to well-trained), two seeds for the
    reference design and the graphs.
``third_party``
    Offline reference methods and MLIPs (GFN2-xTB, GFN1-xTB, GFN-FF, SevenNet-0, CHGNet), where
    their packages are installed; slow ASE calculators run one MD seed (``md_seeds``).
``artifact``
    The reference design with a calibrated cutoff artifact on every pair (energy steps, force
    kinks; :mod:`pesprobe.zoo.contract`), and the zero-force null model.
``shipped``
    The shipped ``pesprobe:default``: the same design family, larger and trained longer on the
    larger ``xtb-train-large`` preset (its model card), so better trained than any trained member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Training settings shared by every trained member (the default study's, with the energy share of
#: ``pesprobe train`` when the zoo's first run started).
#: Every loss-balancing setting is pinned, so that members trained in different sittings of one zoo
#: run are trained alike even when the package's defaults move.
TRAIN = {"batch_size": 8, "lr": 0.002, "warmup_steps": 100, "min_lr_ratio": 0.05, "forces_weight": 10.0,
         "energy_weight": 1.0, "energy_share": 0.5, "energy_share_ramp": 0.2, "balance_decay": 0.99,
         "patience": None, "ema_decay": 0.99, "dtype": "float32"}
#: The reference design (the default study's model).
MODEL = {"graph": "diffknn", "cutoff": 5.0, "k": 12, "d_model": 32, "n_heads": 4, "n_blocks": 2, "embed_dim": 16,
         "readout_dim": 16, "n_rbf": 16, "rbf_width": 2.0, "attention_temperature": 1.0,
         "force_head": "conservative"}
STEPS = 2500


@dataclass
class Member:
    """One potential of the zoo.

    Attributes
    ----------
    name : str
        Display name and folder name.
    family : str
        ``"trained"``, ``"third_party"``, ``"artifact"`` or ``"shipped"``.
    reason : str
        Why its smoothness differs (one line, for the tables).
    model : dict
        Trained members: ModelConfig overrides of :data:`MODEL`.
    steps : int
        Trained members: optimiser steps.
    seed : int
        Trained members: training seed.
    spec : str
        Third-party and shipped members: the SPEC.
    artifact : dict
        Artifact members: ``{"base": member name, "kind": "step"|"kink"|"zero", "amplitude": A, "r_c": Å}``.
    md_seeds : tuple of int or None
        MD seeds when fewer than the profile's (slow ASE calculators).
    """

    name: str
    family: str
    reason: str
    model: dict[str, Any] = field(default_factory=dict)
    steps: int = STEPS
    seed: int = 0
    spec: str = ""
    artifact: dict[str, Any] = field(default_factory=dict)
    md_seeds: tuple[int, ...] | None = None


def _trained(name: str, reason: str, steps: int = STEPS, seed: int = 0, **model: Any) -> Member:
    return Member(name=name, family="trained", reason=reason, model=model, steps=steps, seed=seed)


def default_members() -> list[Member]:
    """The roster of the full zoo (≥ 24 potentials when the optional packages are present), batched torch
    members first: a run that stops early has MD for the cheap members of every family but one."""
    out = [
        _trained("diffknn-s0", "reference design: differentiable kNN, broadened smearing"),
        _trained("diffknn-s1", "reference design, another seed", seed=1),
        _trained("knn-s0", "hard kNN: discontinuous at every rank swap", graph="knn"),
        _trained("knn-s1", "hard kNN, another seed", seed=1, graph="knn"),
        _trained("radius-s0", "radius graph with a smooth envelope", graph="radius"),
        _trained("radius-s1", "radius graph, another seed", seed=1, graph="radius"),
        _trained("knn-k6", "hard kNN with k = 6: more rank swaps", graph="knn", k=6),
        _trained("diffknn-k6", "differentiable kNN with k = 6", k=6),
        _trained("diffknn-rc3", "short cutoff, 3 Å", cutoff=3.0),
        _trained("diffknn-narrow", "narrow smearing: 48 Gaussians, width 0.5 spacing", n_rbf=48, rbf_width=0.5),
        _trained("knn-narrow", "the paper's baseline: hard kNN with narrow smearing", graph="knn", n_rbf=48,
                 rbf_width=0.5),
        _trained("radius-rc3", "radius graph with a short 3 Å cutoff", graph="radius", cutoff=3.0),
        _trained("diffknn-T2", "attention temperature T = 2 (flatter attention)", attention_temperature=2.0),
        _trained("diffknn-T0.5", "attention temperature T = 0.5 (sharper attention)", attention_temperature=0.5),
        _trained("diffknn-200", "under-trained: 200 steps", steps=200),
        _trained("diffknn-800", "partly trained: 800 steps", steps=800),
        _trained("direct", "direct force head: forces not the gradient of the energy", force_head="direct"),
        Member("cutoff-step-10meV", "artifact", "reference design + 10 meV energy step at a 3 Å pair cutoff",
               artifact={"base": "diffknn-s0", "kind": "step", "amplitude": 0.01, "r_c": 3.0}),
        Member("cutoff-step-100meV", "artifact", "reference design + 100 meV energy step at a 3 Å pair cutoff",
               artifact={"base": "diffknn-s0", "kind": "step", "amplitude": 0.1, "r_c": 3.0}),
        Member("cutoff-kink-0.1", "artifact", "reference design + 0.1 eV/Å force jump at a 3 Å pair cutoff",
               artifact={"base": "diffknn-s0", "kind": "kink", "amplitude": 0.1, "r_c": 3.0}),
        Member("cutoff-kink-1", "artifact", "reference design + 1 eV/Å force jump at a 3 Å pair cutoff",
               artifact={"base": "diffknn-s0", "kind": "kink", "amplitude": 1.0, "r_c": 3.0}),
        Member("zero", "artifact", "zero forces: the null model", artifact={"kind": "zero"}),
        Member("pesprobe-default", "shipped", "the shipped model: 119k parameters, 22k steps on 394 molecules "
               "(xtb-train-large)", spec="pesprobe:default"),
        Member("gfn2-xtb", "third_party", "semi-empirical reference method of the labels", spec="gfn2-xtb",
               md_seeds=(0,)),
        Member("gfn1-xtb", "third_party", "an older semi-empirical method", spec="gfn1-xtb",
               md_seeds=(0,)),
        Member("gfn-ff", "third_party", "a force field (xtb-python)", spec="gfn-ff", md_seeds=(0,)),
        Member("7net-0", "third_party", "SevenNet-0, a materials MLIP (sevenn)", spec="7net-0", md_seeds=(0,)),
        Member("chgnet", "third_party", "CHGNet, a materials MLIP (boxed molecule)", spec="chgnet", md_seeds=(0,)),
    ]
    return out


def quick_members() -> list[Member]:
    """A tiny roster for tests and smoke runs (tiny models, few steps, no slow calculators)."""
    tiny = {"d_model": 16, "n_heads": 2, "n_blocks": 1, "embed_dim": 8, "readout_dim": 8, "n_rbf": 8, "k": 6,
            "cutoff": 4.0}
    return [
        Member("tiny-diffknn", "trained", "reference design (tiny)", model=dict(tiny), steps=30),
        Member("tiny-knn", "trained", "hard kNN (tiny)", model={**tiny, "graph": "knn"}, steps=30),
        Member("tiny-radius", "trained", "radius graph (tiny)", model={**tiny, "graph": "radius"}, steps=30),
        Member("tiny-step", "artifact", "tiny reference + 100 meV cutoff step",
               artifact={"base": "tiny-diffknn", "kind": "step", "amplitude": 0.1, "r_c": 2.5}),
        Member("zero", "artifact", "zero forces", artifact={"kind": "zero"}),
    ]
