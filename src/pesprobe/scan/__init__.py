"""Scan generation: bond stretches, angle bends and torsions labelled by a reference method.

Modules: :mod:`~pesprobe.scan.inputs` (SMILES, XYZ, SDF, SPICE HDF5, crystals),
:mod:`~pesprobe.scan.graph` (bond detection, fragments), :mod:`~pesprobe.scan.geometry` (frames),
:mod:`~pesprobe.scan.plan` (what to scan, seeded choice), :mod:`~pesprobe.scan.label` (reference
labels with SCF retry, relaxation), :mod:`~pesprobe.scan.generate` and :mod:`~pesprobe.scan.build`
(the resumable batch builder), :mod:`~pesprobe.scan.presets`. Nothing is imported here, so that the
CLI starts fast; import from the modules.
"""
