"""`import gpunet` stays light: the interop functions import onnx, safetensors and torch only
when called, so the base install (numpy, tqdm, threadpoolctl) needs none of them."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_import_gpunet_imports_no_optional_dependency():
    code = ("import sys, gpunet; gpunet.interop.export_onnx; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'safetensors', 'torch') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
