"""scripts/benchmark_export.py runs end to end on a few images and reports every field (no
timing is asserted, only that each is a positive number and the runtimes agree)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_quick_run_writes_every_field(tmp_path):
    pytest.importorskip("onnx", reason="pip install 'gpunet[onnx]'")
    pytest.importorskip("onnxruntime", reason="pip install 'gpunet[onnx]'")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark_export.py"),
                           "--images", "64", "--repeats", "1", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["mlp", "cnn"]
    for r in rows:
        assert r["images"] == 64 and r["max_abs_diff"] < 1e-4
        for key in ("npz", "safetensors", "onnx"):
            assert r[f"{key}_bytes"] > 4 * r["params"] and r[f"{key}_write_s"] > 0
        assert r["gpunet_predict_s"] > 0 and r["onnxruntime_s"] > 0
    assert "| mlp (242,762 params) |" in proc.stdout
