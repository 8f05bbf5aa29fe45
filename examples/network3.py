"""Nielsen's network3.py in gpunet: the convolutional network of chapter 6 of "Neural Networks
and Deep Learning".

The book's network: two convolution-pooling layers (20 then 40 filters of 5x5, each followed by
2x2 max-pooling), a fully connected layer of 100 neurons and a softmax output layer, ReLU
activations, the log-likelihood (cross-entropy) cost, SGD with eta = 0.03, mini-batches of 10,
L2 regularisation lambda = 0.1, 60 epochs: about 99.2% on the test set with 50,000 training
images. The book then expands the training set five-fold, shifting each image one pixel up,
down, left and right, and adds dropout, and gets further (see chapter 6).

gpunet's version adds dropout (rate 0.5) after the fully connected layer and keeps gpunet's own
He-uniform initialisation. network3's L2 term is lambda/2 * sum(w^2) per mini-batch divided by
the number of mini-batches, which is SGD(weight_decay = lambda * 10 / n) here (gpunet also
decays the biases, the book does not).

Data: offline, the 5,000 real MNIST training digits bundled with gpunet (25,000 after the
expansion) and the official 10,000 test digits; the full 60,000 when present ($GPUNET_DATA) or
downloadable. The book used 50,000 (250,000 expanded): expect less here.

`--pool l2` swaps max-pooling for L2 pooling (the square root of the sum of squares over each
window, which chapter 6 mentions) when this gpunet has `gn.layers.L2Pool2D`.

    python examples/network3.py                # full (see examples/README.md for its cost)
    python examples/network3.py --epochs 5     # fewer epochs
    python examples/network3.py --quick        # seconds
"""

from __future__ import annotations

import time

import _common as common
import numpy as np

import gpunet as gn

L = gn.layers


def expand(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The book's expand_mnist.py: each image, and copies shifted one pixel up, down, left
    and right (the pixels shifted in are 0). Images are (N, 1, 28, 28)."""
    copies = [x]
    for axis, step in ((2, -1), (2, 1), (3, -1), (3, 1)):
        shifted = np.roll(x, step, axis=axis)
        edge = 0 if step == 1 else -1  # the row or column that wrapped around
        if axis == 2:
            shifted[:, :, edge, :] = 0
        else:
            shifted[:, :, :, edge] = 0
        copies.append(shifted)
    return np.concatenate(copies), np.tile(y, len(copies))


def pool(kind: str) -> L.Layer:
    if kind == "l2":
        if not hasattr(L, "L2Pool2D"):
            raise SystemExit("--pool l2: this gpunet has no gn.layers.L2Pool2D yet "
                             "(issue 14, item 1); use --pool max")
        return L.L2Pool2D(2)
    return L.MaxPool2D(2)


def build(kind: str, device: str) -> gn.Sequential:
    return gn.Sequential([
        L.Conv2D(1, 20, 5), L.ReLU(), pool(kind),       # (20, 24, 24) -> (20, 12, 12)
        L.Conv2D(20, 40, 5), L.ReLU(), pool(kind),      # (40, 8, 8) -> (40, 4, 4)
        L.Flatten(), L.Dense(40 * 4 * 4, 100), L.ReLU(), L.Dropout(0.5),
        L.Dense(100, 10),                               # softmax is inside CrossEntropy
    ], device=device, input_shape=(1, 28, 28))


def plot(results: dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    acc = results["accuracy"]
    ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], marker=".", label="gpunet")
    ax.axhline(99.2, color="gray", ls="--", label="book: about 99.2% (50,000 images, ReLU)")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)",
           title=f"conv-pool x2, dense 100, dropout 0.5, {results['pool']} pooling\n"
                 f"{results['data']}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    common.save_figure(fig, out, "network3.png")


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--epochs", type=int, default=None, help="default 60 (the book's); quick 1")
    p.add_argument("--pool", choices=("max", "l2"), default="max")
    args = p.parse_args()
    gn.seed(args.seed)
    epochs = args.epochs or (1 if args.quick else 60)
    data = common.load(args, layout="image", n_train=400 if args.quick else None,
                       n_test=1000 if args.quick else None)
    x, y = expand(data.x_train, data.y_train)
    print(f"{data.description}; expanded to {len(x):,} by one-pixel shifts")
    model = build(args.pool, args.device)
    print(model.summary())
    model.compile(loss=gn.losses.CrossEntropy(),
                  optimizer=gn.optimizers.SGD(lr=0.03, weight_decay=0.1 * 10 / len(x)),
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=10, verbose=1,
                        validation_data=(data.x_test, data.y_test))
    acc = history.history["val_accuracy"]
    results = {"data": data.description, "pool": args.pool, "epochs": epochs,
               "training_images": len(x), "accuracy": acc, "best": max(acc), "final": acc[-1],
               "seconds_per_epoch": float(np.median(history.history["seconds"])),
               "wall_seconds": time.perf_counter() - t0}
    rows = [["book (ReLU, 50,000 images not expanded, 60 epochs)", "about 99.2%", "-"],
            [f"gpunet ({len(x):,} images expanded, {epochs} epochs)",
             f"{common.pct(results['best'])}", common.pct(results["final"])]]
    print(common.table(["run", "best test accuracy", "final"], rows))
    common.save_json(args.out, "network3.json", results)
    plot(results, args.out)


if __name__ == "__main__":
    main()
