"""serialization: atomic .npz writes with a JSON meta entry, read back without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import serialization


def test_round_trip_is_exact_and_leaves_no_temporary_file(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([np.nan])}
    path = serialization.write_npz(tmp_path / "sub" / "f.npz", arrays, {"kind": "test", "n": 2})
    back, meta = serialization.read_npz(path)
    np.testing.assert_array_equal(back["a"], arrays["a"])
    assert np.isnan(back["b"][0]) and meta["kind"] == "test" and meta["n"] == 2
    assert meta["format"] == serialization.FORMAT and meta["version"] == serialization.VERSION
    assert [p.name for p in path.parent.iterdir()] == ["f.npz"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = serialization.write_npz(tmp_path / "f.npz", {"a": np.zeros(2)}, {})
    with pytest.raises(TypeError):
        serialization.write_npz(path, {"a": np.zeros(2)}, {"bad": object()})
    np.testing.assert_array_equal(serialization.read_npz(path)[0]["a"], np.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]


def test_pickled_and_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable gpunet .npz file"):
        serialization.read_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="no __meta__ entry"):
        serialization.read_npz(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="no such model or checkpoint file"):
        serialization.read_npz(tmp_path / "missing.npz")
