"""Resume validation: the whole checkpoint is checked against the model before anything changes;
a refused resume leaves weights, optimizer, callbacks and the RNG exactly as they were."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from gpunet import serialization as ser
from gpunet.serialization import FileFormatError
from gpunet.training.checkpoint import load_checkpoint, read_checkpoint

L = gn.layers


def model_and_callbacks():
    model = gn.Sequential([L.Dense(4, 6), L.ReLU(), L.Dense(6, 3)], device="cpu")
    model.compile(optimizer=gn.optimizers.Adam(lr=0.01))
    return model, [gn.callbacks.EarlyStopping(monitor="loss", patience=5,
                                              restore_best_weights=True),
                   gn.callbacks.TerminateOnNaN()]


@pytest.fixture
def checkpoint(tmp_path):
    model, cbs = model_and_callbacks()
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    model.fit(x, np.arange(40) % 3, epochs=2, verbose=0, callbacks=cbs,
              checkpoint=tmp_path / "ck.npz")
    return tmp_path / "ck.npz"


def forge(path, out, meta_update=None, arrays_update=None, drop=()):
    arrays, meta = ser.read_npz(path)
    meta.update(meta_update or {})
    arrays.update(arrays_update or {})
    for name in drop:
        arrays.pop(name)
    meta.pop("format"), meta.pop("version")
    ser.write_npz(out, arrays, meta)
    return out


def state_of(model, cbs):
    return (model.flat_params.copy(), json.dumps(model.optimizer.state_dict(), default=str),
            [p.copy() for v in model.optimizer.state_dict().values()
             if isinstance(v, np.ndarray) for p in [v]],
            json.dumps(backend.get_rng_state()),
            [json.dumps(cb.get_state()) for cb in cbs],
            [cb.get_arrays().get("best_weights") for cb in cbs])


def assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[3] == b[3] and a[4] == b[4]
    for x, y in zip(a[2], b[2], strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a[5], b[5], strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)


def flat_size(path) -> int:
    with ser.open_npz(path) as f:
        return f.header("flat_params")[0][0]


@pytest.mark.parametrize("name, change, fragment", [
    ("flat (1,)", {"arrays": {"flat_params": np.ones(1, np.float32)}}, "has shape (1,)"),
    ("flat NaN", {"flat_nan": True}, "non-finite"),
    ("no flat", {"drop": ["flat_params"]}, "no entry 'flat_params'"),
    ("epoch -3", {"meta": {"next_epoch": -3}}, "next_epoch must be an int >= 0"),
    ("epoch str", {"meta": {"next_epoch": "2"}}, "next_epoch must be an int >= 0"),
    ("history long", {"meta": {"callbacks": {"callbacks": [
        {"class": "History", "state": {"keys": [], "epoch": [0, 1, 2]}}]}}}, "History holds"),
    ("lr nan", {"meta": {"optimizer": {"lr": float("nan"), "iterations": 4}}}, "lr must be"),
    ("iterations", {"meta": {"optimizer": {"lr": 0.01, "iterations": -1}}}, "iterations"),
    ("opt shape", {"opt_shape": True}, "expected ("),
    ("opt index", {"opt_index": True}, "unexpected optimizer entry"),
    ("rng", {"meta": {"rng": {"bit_generator": "MT19937", "state": {}}}}, "random-generator"),
    ("rng junk", {"meta": {"rng": {"bit_generator": "PCG64", "state": "x"}}},
     "random-generator"),
    ("best_weights", {"arrays": {"callbacks/0.best_weights": np.ones(3, np.float32)}},
     "callbacks/0.best_weights"),
    ("cb state", {"meta": {"callbacks": {"callbacks": [
        {"class": "EarlyStopping", "state": {"wait": "x"}}]}}}, "bad callback state"),
    ("cb lists", {"meta": {"callbacks": [{}]}}, "bad callback state"),
    ("model file", {"meta": {"kind": "model"}}, "is a saved model"),
    ("optimizer", {"meta": {"optimizer_class": "SGD"}}, "checkpoint optimizer SGD"),
    ("architecture", {"meta": {"architecture": {"layers": []}}}, "architecture differs"),
])
def test_a_bad_checkpoint_is_refused_and_changes_nothing(checkpoint, tmp_path, name, change,
                                                         fragment):
    arrays = dict(change.get("arrays", {}))
    n = flat_size(checkpoint)
    if change.get("flat_nan"):
        flat = np.ones(n, np.float32)
        flat[3] = np.nan
        arrays["flat_params"] = flat
    if change.get("opt_shape"):
        arrays["optimizer/state.0.m"] = np.zeros(n + 1, np.float32)
    if change.get("opt_index"):
        arrays["optimizer/state.1.m"] = np.zeros(n, np.float32)
    bad = forge(checkpoint, tmp_path / "bad.npz", change.get("meta"), arrays,
                change.get("drop", ()))
    model, cbs = model_and_callbacks()
    for cb in cbs:
        cb.set_model(model)
    before = state_of(model, cbs)
    with pytest.raises(FileFormatError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(bad, model, cbs)
    assert_same(before, state_of(model, cbs))


def test_a_good_checkpoint_restores_everything(checkpoint):
    model, cbs = model_and_callbacks()
    for cb in cbs:
        cb.set_model(model)
    meta = load_checkpoint(checkpoint, model, cbs)
    arrays, _ = ser.read_npz(checkpoint)
    np.testing.assert_array_equal(model.flat_params, arrays["flat_params"])
    assert meta["next_epoch"] == 2 and model.optimizer.iterations > 0
    assert cbs[0].best_weights is not None


def test_read_checkpoint_is_a_dry_run(checkpoint):
    model, cbs = model_and_callbacks()
    for cb in cbs:
        cb.set_model(model)
    before = state_of(model, cbs)
    ck = read_checkpoint(checkpoint, model, cbs)
    assert ck.meta["next_epoch"] == 2
    assert_same(before, state_of(model, cbs))


def test_damaged_checkpoints_never_raise_raw_exceptions(checkpoint, tmp_path):
    from tests.test_loading import damaged_copies

    data = checkpoint.read_bytes()
    path = tmp_path / "bad.npz"
    for what, damaged in damaged_copies(data):
        path.write_bytes(damaged)
        model, cbs = model_and_callbacks()
        before = state_of(model, cbs)
        try:
            load_checkpoint(path, model, cbs)
        except FileFormatError as exc:
            assert str(path) in str(exc), what
            assert_same(before, state_of(model, cbs))


def test_fit_refuses_a_bad_resume_before_training(checkpoint, tmp_path):
    bad = forge(checkpoint, tmp_path / "bad.npz", {"next_epoch": -3})
    model, cbs = model_and_callbacks()
    before = model.flat_params.copy()
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    with pytest.raises(FileFormatError, match="next_epoch"):
        model.fit(x, np.arange(40) % 3, epochs=3, verbose=0, callbacks=cbs, resume=bad)
    np.testing.assert_array_equal(model.flat_params, before)
