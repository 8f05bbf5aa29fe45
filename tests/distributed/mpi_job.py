"""Scenarios the multi-rank tests run under `mpiexec -n N python mpi_job.py SCENARIO ARGS`.

Each prints one line "RESULT <json>" per rank that has something to report; the tests in
test_mpi.py parse them. Small data, a few steps: each run takes a second or two.
"""

from __future__ import annotations

import json
import sys
import zlib

import numpy as np

import gpunet as gn
from gpunet import distributed as dist

N_FEATURES, N_CLASSES = 12, 3


def data(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A learnable toy problem: labels from a fixed random linear map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    w = np.random.default_rng(99).standard_normal((N_FEATURES, N_CLASSES))
    return x, (x @ w).argmax(axis=1).astype(np.int64)


def build(optimizer: str, seed: int, dropout: float = 0.0, device: str = "cpu") -> gn.Sequential:
    gn.seed(seed)
    L = gn.layers
    layers = [L.Dense(N_FEATURES, 16), L.ReLU()]
    if dropout:
        layers.append(L.Dropout(dropout))
    layers.append(L.Dense(16, N_CLASSES))
    model = gn.Sequential(layers, device=device)
    opt = gn.optimizers.SGD(lr=0.05, momentum=0.9) if optimizer == "momentum" \
        else gn.optimizers.Adam(lr=0.01)
    model.compile(loss=gn.losses.CrossEntropy(), optimizer=opt, metrics=["accuracy"])
    return model


def crc(model: gn.Sequential) -> int:
    return zlib.crc32(np.ascontiguousarray(model.flat_params).view(np.uint8))


def report(**values: object) -> None:
    print("RESULT " + json.dumps(values), flush=True)


def report_all(comm: dist.Communicator, **values: object) -> None:
    """Every rank's values, printed by rank 0 alone (mpiexec may interleave ranks' lines)."""
    for each in comm.allgather_json(values):
        if comm.rank == 0:
            report(**each)


def same_maths(comm: dist.Communicator, epochs: int = 3) -> None:
    """N ranks, each seeded differently, against one process seeded like rank 0."""
    x, y = data(90)
    xt, yt = data(50, seed=8)
    out = {}
    for optimizer in ("momentum", "adam"):
        kwargs = dict(epochs=epochs, batch_size=16, validation_split=0.2, verbose=0)
        ref = build(optimizer, seed=100) if comm.rank == 0 else None
        ref_hist = ref.fit(x, y, **kwargs).history if ref is not None else None
        model = build(optimizer, seed=100 + comm.rank)  # other seeds: the broadcast must fix
        calls = comm.allreduce_calls
        hist = model.fit(x, y, distributed=comm, **kwargs).history
        steps = comm.allreduce_calls - calls
        crcs = comm.allgather_floats([crc(model)])[:, 0]
        test = model.evaluate(xt, yt, distributed=comm)
        hists = comm.allgather_json({k: v for k, v in hist.items()
                                     if k not in ("seconds", "images_per_second")})
        if comm.rank == 0:
            out[optimizer] = {
                "max_abs_diff": float(np.abs(model.flat_params - ref.flat_params).max()),
                "scale": float(np.abs(ref.flat_params).max()),
                "same_on_all_ranks": bool((crcs == crcs[0]).all()),
                "histories_equal": all(h == hists[0] for h in hists),
                "history": hist, "ref_history": ref_hist, "allreduce_calls": steps,
                "test": test, "ref_test": ref.evaluate(xt, yt)}
    if comm.rank == 0:
        report(**out)


def decisions(comm: dist.Communicator, folder: str) -> None:
    """Callbacks decide from all-reduced figures; only rank 0 writes (paths hold the rank)."""
    x, y = data(90)
    model = build("momentum", seed=3, dropout=0.3)
    r = comm.rank
    cbs = [gn.callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=0.1),
           gn.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5,
                                          min_delta=0.02),
           gn.callbacks.ModelCheckpoint(f"{folder}/best-{r}.npz", monitor="val_loss"),
           gn.callbacks.CSVLogger(f"{folder}/log-{r}.csv")]
    hist = model.fit(x, y, epochs=12, batch_size=16, validation_split=0.2, callbacks=cbs,
                     checkpoint=f"{folder}/ckpt-{r}.npz", verbose=1, distributed=comm)
    hists = comm.allgather_json({"history": hist.history, "stop": hist.stop_reason,
                                 "lr": model.optimizer.lr, "crc": crc(model)})
    if r == 0:
        report(ranks=hists)


def train_resume(comm: dist.Communicator, path: str, epochs: int, resume: str) -> None:
    """Train (and resume when `resume` is "yes") to `epochs`; rank 0 reports the parameters."""
    x, y = data(90)
    model = build("momentum", seed=5)
    model.fit(x, y, epochs=int(epochs), batch_size=16, verbose=0, checkpoint=path,
              resume=path if resume == "yes" else None, distributed=comm)
    if comm.rank == 0:
        report(params=model.flat_params.tolist())


def fault(comm: dist.Communicator) -> None:
    """Rank 1 raises in the middle of an epoch while the others are in collectives."""

    class Boom(gn.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            if comm.rank == 1 and epoch == 2:
                raise RuntimeError("boom on purpose")

    x, y = data(90)
    build("momentum", seed=1).fit(x, y, epochs=50, batch_size=9, verbose=0,
                                  callbacks=[Boom()], distributed=comm)
    report(finished=True)  # never reached


def mismatch(comm: dist.Communicator) -> None:
    """The last rank gets fewer samples: every rank refuses, together, before any step."""
    x, y = data(90 if comm.rank < comm.size - 1 else 80)
    try:
        build("momentum", seed=1).fit(x, y, epochs=1, batch_size=16, verbose=0,
                                      distributed=comm)
    except dist.CollectiveError as exc:
        report_all(comm, rank=comm.rank, error=str(exc))



def nccl_standin(comm: dist.Communicator, api: str, devices: str) -> None:
    """The NCCL backend on stand-ins: id exchange over MPI, device binding, in-place
    all-reduce and broadcast of device arrays on the current stream, host arrays over MPI."""
    from mpi4py import MPI

    from gpunet.distributed.nccl import NCCLCommunicator
    from tests.distributed import nccl_standin as standin

    nccl, cp = standin.Nccl(tuple_api=api == "tuple"), standin.cupy(int(devices))
    try:
        nc = NCCLCommunicator(MPI.COMM_WORLD, comm.local_rank, cupy=cp, nccl=nccl)
    except dist.CollectiveError as exc:
        report_all(comm, rank=comm.rank, error=str(exc))
        return
    r = nc.rank
    grads = standin.device_array(np.arange(5, dtype=np.float32) * (r + 1))
    ptr = grads.ctypes.data
    nc.allreduce_(grads)
    params = standin.device_array(np.full(3, r, dtype=np.float64))
    nc.bcast_(params)
    host = np.full(2, r + 1.0)
    nc.allreduce_(host)  # a host array: MPI, not NCCL
    ctor = next(c for c in nccl.calls if c[0] == "NcclCommunicator")
    uid = ctor[2] if isinstance(ctor[2], bytes) else bytes(np.array(ctor[2], np.int8))
    report_all(comm, rank=r, size=nc.size, ctor_size=ctor[1], ctor_rank=ctor[3], uid=uid.hex(),
           made_ids=sum(c[0] == "get_unique_id" for c in nccl.calls), device=cp.used,
           local_rank=nc.local_rank, grads=grads.tolist(), params=params.tolist(),
           host=host.tolist(), ptr=ptr,
           calls=[list(c) for c in nccl.calls if c[0] in ("allReduce", "bcast")])


def diverge(comm: dist.Communicator) -> None:
    """Only the last rank's loss is NaN (in the first step): every rank stops before the
    step, together."""
    x, y = data(90)
    model = build("momentum", seed=1)
    if comm.rank == comm.size - 1:
        forward = model.loss.forward
        model.loss.forward = lambda out, target: (np.float32(np.nan), forward(out, target)[1])
    before = model.flat_params.copy()
    try:
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, distributed=comm)
    except FloatingPointError as exc:
        report_all(comm, rank=comm.rank, error=str(exc),
                   untouched=bool(np.array_equal(model.flat_params, before)))


def fake_gpu(comm: dist.Communicator) -> None:
    """The GPU code path on the NumPy-backed CuPy stand-in (tests/fake_cupy.py): batches
    streamed to the "device", the gradient all-reduced from device memory (the mpi backend
    stages it through the host), CuPy's generator seeded per rank. Against one process on the
    same path, with shuffling and validation."""
    from gpunet import backend
    from gpunet.kernels import _registry
    from tests import fake_cupy

    cp, cupyx = fake_cupy.gpu_module()
    backend._import_cupy = lambda: cp
    _registry._import_cupy, _registry._cache = (lambda: cp), {}
    sys.modules["cupyx"] = cupyx
    backend.gpu_status.cache_clear()
    x, y = data(90)
    kwargs = dict(epochs=3, batch_size=16, validation_split=0.2, verbose=0, log_every=2)
    ref = build("momentum", seed=4, device="gpu") if comm.rank == 0 else None
    ref_hist = ref.fit(x, y, **kwargs).history if ref is not None else None
    model = build("momentum", seed=4, device="gpu")
    hist = model.fit(x, y, distributed=comm, **kwargs).history
    test = model.evaluate(x, y, distributed=comm)
    on_device = comm.allgather_json(backend.is_gpu_array(model.flat_params))
    if ref is not None:
        diff = np.abs(backend.to_numpy(model.flat_params) - backend.to_numpy(ref.flat_params))
        report(max_abs_diff=float(diff.max()), on_device=on_device, val_loss=hist["val_loss"],
               ref_val_loss=ref_hist["val_loss"], test=test, ref_test=ref.evaluate(x, y),
               calls=comm.allreduce_calls)


def main() -> None:
    scenario, *args = sys.argv[1:]
    comm = dist.init()
    globals()[scenario](comm, *args)


if __name__ == "__main__":
    main()
