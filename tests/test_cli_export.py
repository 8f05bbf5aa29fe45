"""The gpunet-export command: conversions by suffix; user errors exit 2 with one stderr line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gpunet as gn
from gpunet import cli_export
from gpunet import reference_models as models
from tests.conftest import REPO


@pytest.fixture
def saved(tmp_path):
    model = models.cnn(device="cpu")
    model.save(tmp_path / "cnn.npz")
    return model, tmp_path / "cnn.npz"


def one_error_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpunet-export: error: ")
    for fragment in fragments:
        assert fragment in err


def test_npz_to_onnx(saved, capsys):
    pytest.importorskip("onnx", reason="pip install 'gpunet[onnx]'")
    ort = pytest.importorskip("onnxruntime", reason="pip install 'gpunet[onnx]'")
    model, path = saved
    out = path.with_suffix(".onnx")
    assert cli_export.main([str(path), str(out)]) == 0
    line = capsys.readouterr().out
    assert f"wrote {out}: ONNX opset 17, input (batch, 1, 28, 28)" in line and "bytes" in line
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got[0], model.predict(x, workers=1), atol=1e-4)


def test_npz_to_safetensors_and_back(saved, tmp_path, capsys):
    model, path = saved
    assert cli_export.main([str(path), str(tmp_path / "m.safetensors")]) == 0
    assert cli_export.main([str(tmp_path / "m.safetensors"), str(tmp_path / "back.npz")]) == 0
    back = gn.load_model(tmp_path / "back.npz", device="cpu")
    for key, value in model.get_weights().items():
        assert back.get_weights()[key].tobytes() == value.tobytes()


@pytest.mark.parametrize("args, fragments", [
    (["absent.npz", "out.onnx"], ["no such model or checkpoint file: absent.npz"]),
    (["{model}", "out.tflite"], ["OUT must end in one of .onnx, .safetensors, .npz"]),
    (["{model}"], ["the following arguments are required: out"]),
    (["{model}", "out.onnx", "--opset", "12"], ["opset must be >= 17, got 12"]),
    (["{damaged}", "out.onnx"], ["not a readable gpunet .safetensors file"]),
])
def test_user_errors_exit_2_with_one_line(saved, tmp_path, capsys, args, fragments):
    _, path = saved
    damaged = tmp_path / "bad.safetensors"
    damaged.write_bytes(b"\xff" * 20)
    args = [a.format(model=path, damaged=damaged) for a in args]
    if "--opset" in args:  # the opset is checked by the ONNX exporter
        pytest.importorskip("onnx", reason="pip install 'gpunet[onnx]'")
    assert cli_export.main(args) == 2
    one_error_line(capsys, *fragments)
    assert not (tmp_path / "out.onnx").exists()


def test_without_the_onnx_package_the_error_says_what_to_install(saved, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    _, path = saved
    assert cli_export.main([str(path), str(path.with_suffix(".onnx"))]) == 2
    one_error_line(capsys, "pip install 'gpunet[onnx]'")


def test_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "gpunet.cli_export", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "gpunet-export" in proc.stdout
