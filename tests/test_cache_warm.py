"""Warm runs: an unchanged folder is keyed by its files' stat signature, never re-hashed; any edit is seen."""

from __future__ import annotations

import os

import numpy as np

import pesprobe.data.loader as loader
from pesprobe.data import load_scans, write_published


def _folder(tmp_path):
    from conftest import make_scan

    from pesprobe.data import ScanSet

    root = tmp_path / "scans"
    write_published(ScanSet([make_scan(scan_id="C-C/1", n_frames=8)], source="t"), root)
    return root


def _counting(monkeypatch):
    calls = []
    original = loader.update_hash

    def counting(h, path):
        calls.append(path)
        return original(h, path)

    monkeypatch.setattr(loader, "update_hash", counting)
    return calls


def test_a_warm_load_only_stats_the_files(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    calls = _counting(monkeypatch)
    first = load_scans(root)
    assert calls, "the first load hashes the content"
    calls.clear()
    again = load_scans(root)
    assert calls == []
    assert np.array_equal(first[0].positions, again[0].positions)


def test_an_edit_with_the_same_size_and_mtime_is_still_seen(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    key = loader.folder_key(root)
    frame = sorted(root.rglob("atoms_*.xyz"))[0]
    stat = frame.stat()
    text = frame.read_text()
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    i = digits[len(digits) // 2]
    edited = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]
    frame.write_text(edited)
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, mtime put back
    assert frame.stat().st_size == stat.st_size and frame.stat().st_mtime_ns == stat.st_mtime_ns
    calls = _counting(monkeypatch)
    assert loader.folder_key(root) != key  # ctime moved: hashed again, new content → new key
    assert calls


def test_the_fast_key_equals_the_content_key(tmp_path):
    root = _folder(tmp_path)
    assert loader.folder_key(root) == loader.content_key(root) == loader.folder_key(root)
