#!/usr/bin/env python3
"""One number for an A/B of two checkouts: seconds of the cnn's second epoch on 12,800
Fashion-MNIST images (batch 128, SGD momentum 0.9, seed 0). Run it alternately from each
checkout (`PYTHONPATH=<checkout> python scripts/bench/ab_epoch.py --workers 2`) and compare
the pairs; it works with any gpunet that has `gpunet.reference_models` or `gpunet.models`."""

from __future__ import annotations

import argparse
import os

import gpunet as gn

try:
    from gpunet.reference_models import cnn
except ImportError:  # checkouts before the rename
    from gpunet.models import cnn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--images", type=int, default=12_800)
    p.add_argument("--data-dir", default=os.path.join(
        os.environ.get("GPUNET_DATA", "../shared/data"), "fashion-mnist"))
    args = p.parse_args()
    (x, y), _ = gn.datasets.load_fashion_mnist(data_dir=args.data_dir)
    x = gn.datasets.to_float(x[:args.images]).reshape(-1, 1, 28, 28)
    gn.seed(0)
    model = cnn(device="cpu")
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.01, momentum=0.9))
    history = model.fit(x, y[:args.images], epochs=2, batch_size=128, verbose=0,
                        workers=args.workers)
    print(f"{history.history['seconds'][1]:.3f}")


if __name__ == "__main__":
    main()
