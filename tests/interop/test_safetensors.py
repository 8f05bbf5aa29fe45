"""safetensors files: a bit-exact round trip, readable by the reference library, and every
damaged or hostile file refused with a message naming the problem before anything is built."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest

import gpunet as gn
from gpunet.interop import safetensors as st
from gpunet.serialization import FileFormatError
from tests.interop.helpers import inputs, reference_models


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name → (model, path of its .safetensors file)."""
    folder = tmp_path_factory.mktemp("st")
    out = {}
    for name, model in reference_models().items():
        model.save(folder / f"{name}.safetensors")
        out[name] = (model, folder / f"{name}.safetensors")
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "every_kind"])
def test_round_trip_is_bit_exact(saved, name):
    model, path = saved[name]
    back = gn.load_model(path, device="cpu")
    assert back.architecture() == model.architecture()
    for key, value in model.get_weights().items():
        got = back.get_weights()[key]
        assert got.dtype == value.dtype and got.tobytes() == value.tobytes(), key
    x = inputs(model, 5)
    assert back.predict(x).tobytes() == model.predict(x).tobytes()


def test_the_reference_library_reads_gpunet_files(saved):
    safetensors = pytest.importorskip("safetensors", reason="pip install 'gpunet[safetensors]'")
    from safetensors.numpy import load_file

    model, path = saved["cnn"]
    arrays = load_file(str(path))
    assert set(arrays) == set(model.get_weights())
    for key, value in model.get_weights().items():
        assert arrays[key].tobytes() == value.tobytes()
    with safetensors.safe_open(str(path), framework="np") as f:
        assert json.loads(f.metadata()["architecture"]) == model.architecture()


def test_torch_reads_gpunet_files(saved):
    pytest.importorskip("safetensors", reason="pip install 'gpunet[safetensors]'")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model, path = saved["mlp"]
    tensors = load_file(str(path))
    for key, value in model.get_weights().items():
        assert tensors[key].dtype == torch.float32
        np.testing.assert_array_equal(tensors[key].numpy(), value)


def test_gpunet_reads_files_the_reference_library_wrote(saved, tmp_path):
    pytest.importorskip("safetensors", reason="pip install 'gpunet[safetensors]'")
    from safetensors.numpy import save_file

    model, _ = saved["cnn"]
    meta = {"format": "gpunet", "version": "1", "architecture": json.dumps(model.architecture())}
    save_file({k: np.array(v) for k, v in model.get_weights().items()},
              str(tmp_path / "ref.safetensors"), metadata=meta)
    back = gn.load_model(tmp_path / "ref.safetensors", device="cpu")
    x = inputs(model, 3)
    assert back.predict(x).tobytes() == model.predict(x).tobytes()


# -- damaged and hostile files ---------------------------------------------------------------

def mlp_arch() -> dict:
    L = gn.layers
    return gn.Sequential([L.Dense(3, 2), L.ReLU()], device="cpu").architecture()


def raw(header: dict, data: bytes = b"", arch: dict | None = None, meta: dict | None = None,
        length: int | None = None) -> bytes:
    """A safetensors file as bytes, anything in it chosen by the test."""
    header = dict(header)
    if meta is None:
        meta = {"format": "gpunet", "version": "1",
                "architecture": json.dumps(arch if arch is not None else mlp_arch())}
    if meta != {}:
        header["__metadata__"] = meta
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def good_tensors(w_shape=(3, 2), b_shape=(2,), w=None) -> tuple[dict, bytes]:
    w = np.ones(w_shape, np.float32) if w is None else w
    b = np.zeros(b_shape, np.float32)
    header = {"layer0.W": {"dtype": "F32", "shape": list(w.shape),
                           "data_offsets": [0, w.nbytes]},
              "layer0.b": {"dtype": "F32", "shape": list(b.shape),
                           "data_offsets": [w.nbytes, w.nbytes + b.nbytes]}}
    return header, w.tobytes() + b.tobytes()


def load(tmp_path, content: bytes):
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    return gn.load_model(path, device="cpu")


def test_a_well_formed_hand_made_file_loads(tmp_path):
    model = load(tmp_path, raw(*good_tensors()))
    np.testing.assert_array_equal(model.get_weights()["layer0.W"], np.ones((3, 2)))


HEADER, DATA = good_tensors()
ARCH = mlp_arch()
HOSTILE = {
    "empty file": (b"", "shorter than the 8-byte header length"),
    "huge header length": (raw(HEADER, DATA, length=1 << 62), "header length 4611686018427387904"),
    "header past the end": (raw(HEADER, DATA)[:40], "exceeds the file's remaining"),
    "header not JSON": (struct.pack("<Q", 5) + b"{oops", "header is not JSON"),
    "header a list": (struct.pack("<Q", 2) + b"[]", "header is a JSON list"),
    "truncated data": (raw(HEADER, DATA[:-4]), "tensors end at byte 32 of 28"),
    "gap in data": (raw(HEADER, DATA + b"\0" * 4), "tensors end at byte 32 of 36"),
    "overlapping tensors": (raw({**HEADER, "layer0.b": {**HEADER["layer0.b"],
                                "data_offsets": [16, 24]}}, DATA), "starts at 16, expected 24"),
    "offsets not matching shape": (raw({**HEADER, "layer0.W": {**HEADER["layer0.W"],
                                       "shape": [3, 3]}}, DATA), r"do not hold F32 \[3, 3\]"),
    "integer dtype": (raw({**HEADER, "layer0.b": {**HEADER["layer0.b"], "dtype": "I32"}}, DATA),
                      "dtype 'I32'"),
    "negative shape": (raw({**HEADER, "layer0.b": {**HEADER["layer0.b"], "shape": [-2]}}, DATA),
                       "bad shape"),
    "no metadata": (raw(HEADER, DATA, meta={}), "metadata format None"),
    "not gpunet": (raw(HEADER, DATA, meta={"format": "pt"}), "metadata format 'pt'"),
    "newer version": (raw(HEADER, DATA, meta={"format": "gpunet", "version": "9"}),
                      "written by a newer gpunet"),
    "no architecture": (raw(HEADER, DATA, meta={"format": "gpunet", "version": "1"}),
                        "holds no model architecture"),
    "architecture not JSON": (raw(HEADER, DATA, meta={"format": "gpunet", "version": "1",
                                                      "architecture": "{"}), "is not JSON"),
    "unknown layer class": (raw(HEADER, DATA, arch={"layers": [{"class": "Evil", "config": {}}]}),
                            "layer 0: unknown layer class 'Evil'"),
    "unexpected config": (raw(HEADER, DATA, arch={**ARCH, "layers": [
        {"class": "ReLU", "config": {"exec": "rm -rf"}}]}),
        r"layer 0 \(ReLU\) cannot be built from its config .*'exec'"),
    "bad input_shape": (raw(HEADER, DATA, arch={**ARCH, "input_shape": [3, -1]}),
                        "input_shape must be null or a list of positive ints"),
    "bad layer size": (raw(HEADER, DATA, arch={"layers": [{"class": "Dense", "config": {
        "in_features": "3", "out_features": 2}}]}), "in_features must be a positive int"),
    "missing weight": (raw({"layer0.W": HEADER["layer0.W"]}, DATA[:24]),
                       r"1 are missing: layer0.b of shape \(2,\)"),
    "wrong shape": (raw(*good_tensors((2, 3))), r"'layer0.W' is \(2, 3\) of float32; the "
                                                r"architecture declares floating point of "
                                                r"shape \(3, 2\)"),
    "extra tensor": (raw({**HEADER, "layer5.W": {"dtype": "F32", "shape": [1],
                                                 "data_offsets": [32, 36]}}, DATA + DATA[:4]),
                     "tensors the architecture does not declare: layer5.W"),
    "NaN weight": (raw(*good_tensors(w=np.full((3, 2), np.nan, np.float32))),
                   "entry 'layer0.W' holds 6 non-finite values"),
    "inf weight": (raw(*good_tensors(w=np.array([[1, 2], [3, np.inf], [5, 6]], np.float32))),
                   "entry 'layer0.W' holds 1 non-finite values"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_damaged_or_hostile_file_is_refused_naming_the_problem(tmp_path, case):
    content, message = HOSTILE[case]
    with pytest.raises(FileFormatError, match=message) as info:
        load(tmp_path, content)
    assert "m.safetensors" in str(info.value)


def test_declared_sizes_are_checked_before_anything_is_allocated(tmp_path):
    """A Dense(10⁶, 10⁶) (4 TB) whose file holds a few bytes, and a tensor header claiming
    4 TB: both refused at once, without building the layer or allocating the tensor."""
    huge = {"layers": [{"class": "Dense", "config": {"in_features": 10**6,
                                                     "out_features": 10**6}}]}
    giant = {"layer0.W": {"dtype": "F32", "shape": [10**6, 10**6],
                          "data_offsets": [0, 4 * 10**12]}}
    for content, message in ((raw(HEADER, DATA, arch=huge), "architecture declares"),
                             (raw(giant, DATA), "tensors end at byte 4000000000000")):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=message):
            load(tmp_path, content)
        assert time.perf_counter() - start < 1.0


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        gn.load_model(tmp_path / "absent.safetensors")


def test_write_is_atomic_and_refuses_integer_arrays(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(TypeError, match="x has dtype int64, expected float16/32/64"):
        st.write(path, {"x": np.arange(3)}, {})
    assert list(tmp_path.iterdir()) == []
    st.write(path, {"x": np.arange(3, dtype=np.float64)}, {"note": [1, 2]})
    arrays, meta = st.read(path)
    assert arrays["x"].dtype == np.float64 and meta["note"] == [1, 2]
    assert (len(path.read_bytes()) - 8) % 8 == 0  # header padded: data 8-byte aligned
