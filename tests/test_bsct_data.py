"""Loading the published layout and the compact format; every bad-input case gets a clear message."""

import shutil

import numpy as np
import pytest
from ase.io import read

from pesprobe.data import ScanSet, load_scans, read_compact, write_compact, write_published
from pesprobe.data import published as published_module

from conftest import make_scan


def _messages(scans: ScanSet) -> str:
    return "\n".join(str(p) for p in scans.problems)


def test_published_layout_matches_ase(sample_dir):
    scans = load_scans(sample_dir)
    assert len(scans) == 27 and not scans.problems
    scan = scans["C-C/220"]
    assert scan.n_frames == 100 and scan.n_atoms == 40
    atoms = read(sample_dir / "C-C" / "220" / "atoms_57.xyz")
    np.testing.assert_array_equal(scan.positions[57], atoms.positions)
    np.testing.assert_array_equal(scan.ref_forces[57], atoms.get_forces())
    assert scan.ref_energy[57] == atoms.get_potential_energy()
    i, j = scan.meta["bond_index"]
    lengths = np.linalg.norm(scan.positions[:, i] - scan.positions[:, j], axis=1)
    np.testing.assert_allclose(lengths, scan.coordinate, atol=1e-6)
    assert scan.meta["bond"] == "C-C" and scan.meta["labels"].shape == (40,)


def test_compact_round_trip(tmp_path, sample_dir):
    scans = load_scans(sample_dir, cache=False)
    path = write_compact(scans, tmp_path / "set.npz")
    again = read_compact(path)
    assert again.ids() == scans.ids()
    for a, b in zip(scans, again):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.ref_forces, b.ref_forces)
        np.testing.assert_array_equal(a.ref_energy, b.ref_energy)
        assert a.meta["rotation"] == b.meta["rotation"]
        np.testing.assert_array_equal(a.meta["labels"], b.meta["labels"])


def test_second_load_comes_from_cache(small_copy, monkeypatch):
    first = load_scans(small_copy)

    def boom(*args, **kwargs):
        raise AssertionError("frame files were parsed again")

    monkeypatch.setattr(published_module, "read_xyz_frame", boom)
    second = load_scans(small_copy)
    assert second.ids() == first.ids()
    np.testing.assert_array_equal(second["C-O/101"].positions, first["C-O/101"].positions)


def test_changed_data_invalidates_cache(small_copy):
    before = load_scans(small_copy)
    path = small_copy / "C-O" / "101" / "atoms_3.xyz"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("energy=", "energy=1").replace("energy=1-", "energy=-1")
    path.write_text("\n".join(lines) + "\n")
    after = load_scans(small_copy)
    assert after["C-O/101"].ref_energy[3] != before["C-O/101"].ref_energy[3]


def test_stray_file_and_folder_reported(small_copy):
    (small_copy / "notes.bin").write_bytes(b"\0")
    (small_copy / "Empty-Bond").mkdir()
    (small_copy / "C-O" / "stray.dat").write_text("x")
    scans = load_scans(small_copy)
    text = _messages(scans)
    assert len(scans) == 3
    assert "notes.bin" in text and "stray file" in text
    assert "Empty-Bond" in text and "no scan folders" in text
    assert "stray.dat" in text


def test_missing_and_malformed_partition(small_copy):
    (small_copy / "C-O" / "101" / "partition.npz").unlink()
    (small_copy / "C-S" / "713" / "partition.npz").write_bytes(b"not a zip file")
    scans = load_scans(small_copy)
    assert scans.ids() == ["N-O/4583"]
    text = _messages(scans)
    assert "C-O/101/partition.npz" in text and "missing partition.npz" in text
    assert "C-S/713/partition.npz" in text and "unreadable partition.npz" in text


def test_partition_without_field(small_copy):
    path = small_copy / "C-O" / "101" / "partition.npz"
    data = dict(np.load(path))
    del data["perturb_range"]
    np.savez(path, **data)
    scans = load_scans(small_copy)
    assert "C-O/101" not in scans.ids()
    assert "lacks field 'perturb_range'" in _messages(scans)


def test_truncated_and_malformed_xyz(small_copy):
    truncated = small_copy / "C-O" / "101" / "atoms_10.xyz"
    truncated.write_text("\n".join(truncated.read_text().splitlines()[:6]) + "\n")
    malformed = small_copy / "C-O" / "101" / "atoms_11.xyz"
    malformed.write_text(malformed.read_text().replace(".", ",", 5))
    scans = load_scans(small_copy)
    scan = scans["C-O/101"]
    assert scan.n_frames == 98
    assert 10 not in scan.meta["frame_index"] and 11 not in scan.meta["frame_index"]
    # the coordinate of every kept frame still comes from its own index
    grid = np.linspace(*scan.meta["perturb_range"][:2], 100)
    np.testing.assert_array_equal(scan.coordinate, grid[scan.meta["frame_index"]])
    text = _messages(scans)
    assert "atoms_10.xyz" in text and "truncated" in text
    assert "atoms_11.xyz" in text and "unparsable number" in text


def test_frame_with_other_atoms(small_copy):
    other = small_copy / "C-S" / "713" / "atoms_5.xyz"
    lines = other.read_text().splitlines()
    other.write_text("\n".join([str(int(lines[0]) - 1), lines[1], *lines[2:-1]]) + "\n")
    species = small_copy / "C-S" / "713" / "atoms_6.xyz"
    lines = species.read_text().splitlines()
    first = lines[2].split()
    lines[2] = " ".join(["Xe" if first[0] != "Xe" else "He", *first[1:]])
    species.write_text("\n".join(lines) + "\n")
    scans = load_scans(small_copy)
    assert scans["C-S/713"].n_frames == 98
    text = _messages(scans)
    assert "atoms_5.xyz" in text and "atoms_6.xyz" in text and "differ from the scan" in text


def test_scan_with_too_few_valid_frames(small_copy):
    folder = small_copy / "N-O" / "4583"
    for path in folder.glob("atoms_*.xyz"):
        if int(path.stem.split("_")[1]) >= 2:
            path.unlink()
    scans = load_scans(small_copy)
    assert "N-O/4583" not in scans.ids() and len(scans) == 2
    assert "only 2 frames" in _messages(scans)


def test_not_a_scan_folder(tmp_path):
    with pytest.raises(ValueError, match="not a BSCT scan folder"):
        load_scans(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_scans(tmp_path / "nowhere")


def test_write_published_round_trip(tmp_path):
    scan = make_scan(n_frames=15)
    scan.meta.update(labels=np.array([0, 1, 1]), unit_vec=np.array([1.0, 0, 0]), rotation="0x,0y,0z",
                     perturb_range=np.array([0.75, 3.0, 15]))
    write_published([scan], tmp_path / "out")
    again = load_scans(tmp_path / "out")["C-C/gen"]
    np.testing.assert_allclose(again.positions, scan.positions, atol=1e-8)
    np.testing.assert_allclose(again.ref_forces, scan.ref_forces, atol=1e-8)
    np.testing.assert_array_equal(again.ref_energy, scan.ref_energy)
    np.testing.assert_allclose(again.coordinate, scan.coordinate)


def test_copy_of_sample_is_identical(small_copy, sample_dir):
    shutil.rmtree(small_copy / "C-S")
    a = load_scans(small_copy)
    b = load_scans(sample_dir)
    np.testing.assert_array_equal(a["C-O/101"].ref_forces, b["C-O/101"].ref_forces)


def test_multiframe_extxyz_round_trip_and_ase_readable(tmp_path, sample_dir):
    from ase.io import read as ase_read

    from pesprobe.data import write_scans_extxyz

    scans = load_scans(sample_dir)
    subset = ScanSet([scans["C-O/101"], scans["N-O/4583"]], source="subset")
    path = write_scans_extxyz(subset, tmp_path / "scans.extxyz")
    frames = ase_read(path, ":")
    assert len(frames) == 200 and frames[0].info["scan_id"] == "C-O/101"
    assert frames[5].get_potential_energy() == scans["C-O/101"].ref_energy[5]
    again = load_scans(path)
    assert again.ids() == ["C-O/101", "N-O/4583"] and not again.problems
    for a, b in zip(subset, again):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
        np.testing.assert_allclose(a.ref_forces, b.ref_forces, atol=1e-8)
        np.testing.assert_array_equal(a.coordinate, b.coordinate)
        np.testing.assert_array_equal(a.meta["labels"], b.meta["labels"])


def test_multiframe_extxyz_bad_frames_reported(tmp_path):
    from ase import Atoms
    from ase.io import write

    from pesprobe.data import write_scans_extxyz

    path = write_scans_extxyz([make_scan(n_frames=6)], tmp_path / "s.xyz")
    extra = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])
    text = path.read_text()
    write(tmp_path / "stray.xyz", extra)
    path.write_text(text + (tmp_path / "stray.xyz").read_text())
    scans = load_scans(path)
    assert scans.ids() == ["C-C/gen"]
    assert "frame6" in _messages(scans) and "no scan_id" in _messages(scans)


def test_reported_frame_numbers_follow_the_files_after_a_skipped_frame(small_copy, tmp_path):
    """A truncated atoms_10.xyz must not shift q or the failed-frame numbers of the later files."""
    import calcs
    from pesprobe.bsct import evaluate

    golden_q = int(np.argmin(load_scans(small_copy)["C-O/101"].ref_energy))
    truncated = small_copy / "C-O" / "101" / "atoms_10.xyz"
    truncated.write_text("\n".join(truncated.read_text().splitlines()[:6]) + "\n")
    scan = load_scans(small_copy)["C-O/101"]
    x_of_file_60 = scan.positions[list(scan.meta["frame_index"]).index(60), 0, 0]
    flaky = calcs.FlakyMorse(raise_above=x_of_file_60 - 1e-9, nan_below=-np.inf)
    xs = scan.positions[:, 0, 0]
    assert (xs > x_of_file_60 - 1e-9).sum() >= 1
    m = evaluate(flaky, ScanSet([scan]), progress=False).metrics[0]
    failing_files = {int(scan.meta["frame_index"][i]) for i in np.flatnonzero(xs > x_of_file_60 - 1e-9)}
    assert m.equilibrium_index == golden_q and set(m.errors) == failing_files and 60 in m.errors


def test_frame_without_energy_is_reported(small_copy):
    frame = small_copy / "C-O" / "101" / "atoms_5.xyz"
    lines = frame.read_text().splitlines()
    lines[1] = " ".join(part for part in lines[1].split(" ") if not part.startswith("energy="))
    frame.write_text("\n".join(lines) + "\n")
    scans = load_scans(small_copy)
    assert "atoms_5.xyz" in _messages(scans) and "no energy= key" in _messages(scans)
    scan = scans["C-O/101"]
    assert scan.n_frames == 100 and np.isnan(scan.ref_energy[5])


def test_a_copied_folder_reports_its_own_paths(small_copy, tmp_path):
    truncated = small_copy / "C-O" / "101" / "atoms_10.xyz"
    truncated.write_text("\n".join(truncated.read_text().splitlines()[:6]) + "\n")
    assert str(small_copy) in _messages(load_scans(small_copy))
    copy = tmp_path / "copy"
    shutil.copytree(small_copy, copy)
    scans = load_scans(copy)
    assert str(copy / "C-O" / "101" / "atoms_10.xyz") in _messages(scans)
    assert str(small_copy) not in _messages(scans) and scans["C-O/101"].meta["source"].startswith(str(copy))
