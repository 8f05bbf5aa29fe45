"""load_model: every damaged, forged or wrong file is one FileFormatError naming the file, judged
before any layer is built; a training checkpoint is recognised and the way to use it named."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import gpunet as gn
from gpunet import layers as L
from gpunet import serialization as ser
from gpunet.architecture import expected_weights
from gpunet.serialization import FileFormatError
from tests.helpers import peak_bytes
from tests.test_serialization import meta_entry, npy_bytes, npy_header_only, npz_bytes


def small_model() -> gn.Sequential:
    return gn.Sequential([L.Dense(4, 5), L.ReLU(), L.Dense(5, 3)], device="cpu")


def test_round_trip_still_works(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    loaded = gn.load_model(tmp_path / "m.npz", device="cpu")
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)


def write_model(path, arch: dict, weights: dict[str, bytes]) -> None:
    path.write_bytes(npz_bytes({"__meta__.npy": meta_entry({"architecture": arch}),
                                **{f"{k}.npy": v for k, v in weights.items()}}))


def dense_arch(n_in: int, n_out: int) -> dict:
    return {"layers": [{"class": "Dense", "config": {"in_features": n_in,
                                                     "out_features": n_out}}],
            "input_shape": [n_in]}


def test_huge_architecture_without_weights_allocates_nothing(tmp_path):
    path = tmp_path / "hostile.npz"
    write_model(path, dense_arch(10000, 10000), {})
    assert path.stat().st_size < 1024

    def load():
        with pytest.raises(FileFormatError,
                           match=r"missing: layer0.W of shape \(10000, 10000\), layer0.b"):
            gn.load_model(path, device="cpu")

    assert peak_bytes(load) < 1 << 20  # was 1.5 GB before failing


def test_weights_shaped_unlike_the_architecture_are_refused_before_building(tmp_path):
    path = tmp_path / "m.npz"
    write_model(path, dense_arch(10000, 10000),
                {"layer0.W": npy_bytes(np.ones((2, 2), np.float32)),
                 "layer0.b": npy_bytes(np.ones(10000, np.float32))})

    def load():
        with pytest.raises(FileFormatError, match=r"'layer0.W' is \(2, 2\)"):
            gn.load_model(path, device="cpu")

    assert peak_bytes(load) < 1 << 20


def test_non_finite_weights_are_refused_naming_the_entry(tmp_path):
    model = small_model()
    model.save(tmp_path / "good.npz")  # save refuses NaN: write the file by hand
    arrays, meta = ser.read_npz(tmp_path / "good.npz")
    arrays["layer2.b"][1] = np.nan
    meta.pop("format", None), meta.pop("version", None)
    ser.write_npz(tmp_path / "nan.npz", arrays, meta)
    with pytest.raises(FileFormatError, match=r"entry 'layer2.b' holds 1 non-finite"):
        gn.load_model(tmp_path / "nan.npz")


def test_a_checkpoint_is_recognised_and_the_way_to_use_it_named(tmp_path):
    model = small_model()
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0, checkpoint=tmp_path / "ck.npz")
    with pytest.raises(FileFormatError, match="training checkpoint") as info:
        gn.load_model(tmp_path / "ck.npz")
    assert "resume=" in str(info.value) and "--resume" in str(info.value)


@pytest.mark.parametrize("arch, fragment", [
    ({"layers": [{"class": "Dense"}]}, "layer 0 of the architecture must be"),  # KeyError
    ({"layers": [{"class": "Evil", "config": {}}]}, "unknown layer class 'Evil'"),
    ({"layers": []}, "non-empty list"),
    ("not a dict", "non-empty list"),
    ({"layers": [{"class": "Dense", "config": {"in_features": -1, "out_features": 2}}]},
     "in_features must be a positive int"),
    ({"layers": [{"class": "ReLU", "config": {"bogus": 1}}]},
     r"layer 0 \(ReLU\) cannot be built from its config .*unexpected keyword argument 'bogus'"),
    ({"layers": [{"class": "Dropout", "config": {"rate": 2}}]}, r"layer 0 \(Dropout\) cannot be"),
    ({"layers": [{"class": "ReLU", "config": {}}], "input_shape": "x"}, "input_shape"),
])
def test_bad_architectures_are_one_clear_error(tmp_path, arch, fragment):
    path = tmp_path / "m.npz"
    write_model(path, arch, {})
    with pytest.raises(FileFormatError, match=fragment) as info:
        gn.load_model(path, device="cpu")
    assert str(path) in str(info.value)


def test_a_meta_without_architecture_is_named(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes({"__meta__.npy": meta_entry({})}))
    with pytest.raises(FileFormatError, match="no model architecture"):
        gn.load_model(path)


def test_undeclared_entries_are_refused_unread(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz", "a") as z:  # a forged 400 MB extra entry
        z.writestr("extra.npy", npy_header_only((10000, 10000)))

    def load():
        with pytest.raises(FileFormatError, match="the architecture does not declare: extra"):
            gn.load_model(tmp_path / "m.npz", device="cpu")

    assert peak_bytes(load) < 1 << 20


def damaged_copies(data: bytes):
    """Truncations at many lengths and single flipped bytes across the whole file."""
    for n in range(0, len(data), max(1, len(data) // 60)):
        yield f"truncated to {n}", data[:n]
    for i in range(0, len(data), max(1, len(data) // 60)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        yield f"byte {i} flipped", bytes(flipped)


def test_damaged_model_files_never_raise_raw_exceptions(tmp_path):
    """BadZipFile, EOFError, JSONDecodeError, KeyError... all become FileFormatError."""
    model = small_model()
    model.save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    path = tmp_path / "bad.npz"
    loaded = 0
    for what, damaged in damaged_copies(data):
        path.write_bytes(damaged)
        try:
            gn.load_model(path, device="cpu")
            loaded += 1  # a flip in a zip field nobody checks (e.g. a timestamp) is harmless
        except FileFormatError as exc:
            assert str(path) in str(exc), what
    assert loaded < 20


def test_compressed_files_load_and_meta_is_json(tmp_path):
    model = small_model()
    arrays = {k: np.asarray(v) for k, v in model.weights().items()}
    path = tmp_path / "c.npz"
    meta = {"format": "gpunet", "version": 1, "architecture": model.architecture()}
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)
    loaded = gn.load_model(path, device="cpu")
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    assert ser.read_npz(path)[1]["architecture"] == model.architecture()
    assert expected_weights(path, [("Dense", {"in_features": 4, "out_features": 5})]) == {
        "layer0.W": (4, 5), "layer0.b": (5,)}


def test_a_folder_or_missing_file_is_named(tmp_path):
    with pytest.raises(FileFormatError, match="is a folder"):
        gn.load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        gn.load_model(tmp_path / "missing.npz")
