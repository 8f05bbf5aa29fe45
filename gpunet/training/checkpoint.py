"""Resumable training checkpoints: weights, optimizer state, the next epoch, the RNG state and
the state of fit's CallbackList (the History so far included), in one atomically written
`.npz` (no pickle).

Loading validates the whole checkpoint against the model before changing anything (shapes,
finiteness, epoch, optimizer and RNG state, the callbacks' state on stand-in copies), then
applies it; should applying still fail, what was changed is put back. A failed resume leaves
the model, optimizer, callbacks and RNG as they were.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpunet import backend, serialization
from gpunet.callbacks.callback_list import CallbackList
from gpunet.serialization import FileFormatError, NpzReader


def save_checkpoint(path: str | os.PathLike, model: Any, next_epoch: int,
                    callbacks: Any) -> None:
    """Write the state to resume at `next_epoch`; `callbacks` is fit's CallbackList."""
    arrays: dict[str, Any] = {"flat_params": model.flat_params}
    opt_meta = {}
    for key, value in model.optimizer.state_dict().items():
        if isinstance(value, (np.ndarray,)) or backend.is_gpu_array(value):
            arrays[f"optimizer/{key}"] = value
        else:
            opt_meta[key] = value
    for key, value in callbacks.get_arrays().items():
        arrays[f"callbacks/{key}"] = value
    meta = {"kind": "checkpoint", "architecture": model.architecture(),
            "next_epoch": next_epoch, "rng": backend.get_rng_state(), "optimizer": opt_meta,
            "optimizer_class": type(model.optimizer).__name__,
            "callbacks": callbacks.get_state()}
    if getattr(model, "run_info", None) is not None:  # the training command's data options
        meta["run"] = model.run_info
    serialization.write_npz(path, arrays, meta)


@dataclass
class Checkpoint:
    """A checkpoint read and checked against a model, not yet applied to it."""

    path: str
    meta: dict[str, Any]
    flat_params: np.ndarray
    optimizer: dict[str, Any]
    callback_arrays: dict[str, np.ndarray] = field(default_factory=dict)


def load_checkpoint(path: str | os.PathLike, model: Any, callbacks: Any) -> dict[str, Any]:
    """Restore model, optimizer, RNG and callbacks in place; return the meta.

    Raises FileNotFoundError or `FileFormatError` (a ValueError naming the file) and then
    nothing has changed."""
    ck = read_checkpoint(path, model, callbacks)
    _apply(ck, model, callbacks)
    return ck.meta


def read_checkpoint(path: str | os.PathLike, model: Any,
                    callbacks: Any = None) -> Checkpoint:
    """Read and validate everything a resume needs, changing nothing: the check the training
    command runs before it starts, and the first half of `load_checkpoint`."""
    with serialization.open_npz(path) as f:
        meta = f.meta
        _check_kind(f, model)
        flat = f.read_float("flat_params", tuple(model.flat_params.shape))
        optimizer = _read_optimizer(f, model)
        cb_arrays = _read_callback_arrays(f, model)
    _check_progress(path, meta)
    _check_rng(path, meta.get("rng"))
    ck = Checkpoint(os.fspath(path), meta, flat, optimizer, cb_arrays)
    _restore_callbacks(ck, model, [copy.copy(cb) for cb in callbacks or []])  # dry run
    return ck


# -- validation (each names the file and what was expected) -----------------------------------
def _check_kind(f: NpzReader, model: Any) -> None:
    meta = f.meta
    if meta.get("kind") != "checkpoint":
        what = "a saved model (load it with gn.load_model)" if "architecture" in meta \
            else "not a training checkpoint"
        raise FileFormatError(f"{f.path}: is {what}; --resume / fit(resume=...) needs a "
                              "checkpoint written by --checkpoint / fit(checkpoint=...)")
    arch = meta.get("architecture")
    if not isinstance(arch, dict) or arch.get("layers") != model.architecture()["layers"]:
        raise FileFormatError(f"{f.path}: the checkpoint's architecture differs from this "
                              "model's (another --model, --dropout or layer sizes?)")
    if meta.get("optimizer_class") != type(model.optimizer).__name__:
        raise FileFormatError(f"{f.path}: checkpoint optimizer {meta.get('optimizer_class')}, "
                              f"this run uses {type(model.optimizer).__name__}")


def _read_optimizer(f: NpzReader, model: Any) -> dict[str, Any]:
    """The optimizer's state dict, checked by loading it into a stand-in copy."""
    saved = f.meta.get("optimizer")
    if not isinstance(saved, dict):
        raise FileFormatError(f"{f.path}: the optimizer state must be a JSON object")
    state = dict(saved)
    lr, iterations = state.get("lr"), state.get("iterations")
    if not isinstance(lr, int | float) or isinstance(lr, bool) or not np.isfinite(lr) or lr < 0:
        raise FileFormatError(f"{f.path}: optimizer lr must be a finite number >= 0, got {lr!r}")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise FileFormatError(f"{f.path}: optimizer iterations must be an int >= 0, "
                              f"got {iterations!r}")
    for name in f.names:
        if name.startswith("optimizer/"):
            key = name.split("/", 1)[1]
            if not key.startswith("state.0."):  # the model hands the optimizer one flat array
                raise FileFormatError(f"{f.path}: unexpected optimizer entry {name!r}; "
                                      "expected optimizer/state.0.<slot>")
            state[key] = f.read_float(name, tuple(model.flat_params.shape))
    try:
        copy.copy(model.optimizer).load_state_dict(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise FileFormatError(f"{f.path}: bad optimizer state: {exc}") from exc
    return state


def _check_progress(path: Any, meta: dict[str, Any]) -> None:
    epoch = meta.get("next_epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise FileFormatError(f"{path}: next_epoch must be an int >= 0, got {epoch!r}")
    saved = meta.get("callbacks")
    for entry in saved.get("callbacks", []) if isinstance(saved, dict) else []:
        done = entry.get("state", {}).get("epoch") if isinstance(entry, dict) \
            and entry.get("class") == "History" and isinstance(entry.get("state"), dict) else None
        if isinstance(done, list) and len(done) > epoch:
            raise FileFormatError(f"{path}: the History holds {len(done)} epochs but next_epoch "
                                  f"is {epoch}")


def _check_rng(path: Any, state: Any) -> None:
    """The RNG state must fit this gpunet's generator (set on a stand-in to check)."""
    kind = type(backend.rng().bit_generator)
    try:
        if not isinstance(state, dict) or state.get("bit_generator") != kind.__name__:
            raise ValueError(f"expected a {kind.__name__} state")
        kind().state = state
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise FileFormatError(f"{path}: bad random-generator state ({exc})") from exc


def _read_callback_arrays(f: NpzReader, model: Any) -> dict[str, np.ndarray]:
    """The callbacks' arrays; best-weight copies are checked against the model from their
    headers before they are read."""
    out = {}
    for name in f.names:
        if not name.startswith("callbacks/"):
            continue
        if name.endswith("best_weights"):
            out[name] = f.read_float(name, tuple(model.flat_params.shape))
        else:
            out[name] = f.read(name)
    return out


# -- applying -----------------------------------------------------------------------------------
def _restore_callbacks(ck: Checkpoint, model: Any, callbacks: Any) -> None:
    """Through the CallbackList's own rule: each callback takes the state of the first saved
    callback of its class not yet taken."""
    cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks)
    cbs.set_model(model)
    arrays = {k[len("callbacks/"):]: v for k, v in ck.callback_arrays.items()}
    try:
        cbs.set_state(ck.meta.get("callbacks"), arrays)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise FileFormatError(f"{ck.path}: bad callback state: {type(exc).__name__}: "
                              f"{exc}") from exc


def _apply(ck: Checkpoint, model: Any, callbacks: Any) -> None:
    """Apply a validated checkpoint; on any failure put back what was changed."""
    model.relink_params()
    old_params = model.flat_params.copy()
    old_opt = model.optimizer.state_dict()
    old_rng = backend.get_rng_state()
    try:
        model.flat_params[...] = backend.to_xp(ck.flat_params, model.xp)
        model.optimizer.load_state_dict(ck.optimizer)
        backend.set_rng_state(ck.meta["rng"])
        _restore_callbacks(ck, model, callbacks)
    except BaseException:
        model.flat_params[...] = old_params
        model.optimizer.load_state_dict(old_opt)
        backend.set_rng_state(old_rng)
        raise
