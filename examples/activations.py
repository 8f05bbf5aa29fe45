"""The vanishing gradient: sigmoid, tanh, ReLU and LeakyReLU in a deep network (chapter 5 of
"Neural Networks and Deep Learning").

The network: 784-30-30-30-30-30-10, six Dense layers with the activation under test after
each of the five hidden ones, a softmax output (cross-entropy cost), N(0, 1/n_in) weights
(gpunet's Dense init="normal"), SGD with eta = 0.1 and mini-batches of 10.

During the first epoch the script records, after every mini-batch, the length of each layer's
bias gradient norm(dC/db), the book's measure of how fast a layer learns. With the sigmoid
(sigma' <= 1/4) the first layers' gradients are much smaller than the last ones': the early
layers learn slowest, the vanishing gradient the chapter describes. tanh shrinks them less, and
ReLU and LeakyReLU (derivative 1 where active) hardly at all. Then training continues and the
final test accuracy of each is printed.

The norms come from the public API only: a callback reads `layer.grads["b"]` of every Dense
layer in `on_batch_end` (the gradients of the step just taken); the first epoch is a fit() of
its own with log_every=1, so that the callback sees every mini-batch on a GPU too.

Data: offline, the 5,000 real MNIST training digits bundled with gpunet and the official 10,000
test digits; the full 60,000 when present ($GPUNET_DATA) or downloadable.

    python examples/activations.py            # full: 30 epochs per activation
    python examples/activations.py --quick    # seconds
"""

from __future__ import annotations

import _common as common
import numpy as np

import gpunet as gn

L = gn.layers
ACTIVATIONS = {"sigmoid": L.Sigmoid, "tanh": L.Tanh, "ReLU": L.ReLU,
               "LeakyReLU": lambda: L.LeakyReLU(0.01)}
SIZES = [784, 30, 30, 30, 30, 30, 10]


class GradientNorms(gn.callbacks.Callback):
    """norm(dC/db) of every Dense layer after each mini-batch."""

    def __init__(self) -> None:
        super().__init__()
        self.norms: list[list[float]] = []  # one row per mini-batch, one column per layer

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        dense = [layer for layer in self.model.layers if isinstance(layer, L.Dense)]
        self.norms.append([float(self.model.xp.linalg.norm(layer.grads["b"]))
                           for layer in dense])


def build(name: str, device: str) -> gn.Sequential:
    layers: list = []
    for n_in, n_out in zip(SIZES[:-2], SIZES[1:-1], strict=True):
        layers += [L.Dense(n_in, n_out, init="normal"), ACTIVATIONS[name]()]
    layers.append(L.Dense(SIZES[-2], SIZES[-1], init="normal"))
    return gn.Sequential(layers, device=device)


def run(name: str, data: common.Data, epochs: int, device: str) -> dict:
    model = build(name, device)
    model.compile(loss=gn.losses.CrossEntropy(), optimizer=gn.optimizers.SGD(lr=0.1),
                  metrics=["accuracy"])
    probe = GradientNorms()
    model.fit(data.x_train, data.y_train, epochs=1, batch_size=10, verbose=0, log_every=1,
              callbacks=[probe])
    if epochs > 1:
        model.fit(data.x_train, data.y_train, epochs=epochs - 1, batch_size=10, verbose=0)
    norms = np.array(probe.norms)
    mean = norms.mean(axis=0)
    test = model.evaluate(data.x_test, data.y_test)
    print(f"{name}: mean norm(dC/db) per layer over epoch 1 "
          + " ".join(f"{v:.2e}" for v in mean) + f"; test accuracy {common.pct(test['accuracy'])}")
    return {"norms": norms.tolist(), "mean_norms": mean.tolist(),
            "first_to_last": float(mean[0] / mean[-1]), "test_accuracy": test["accuracy"]}


def plot(results: dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey=True)
    for ax, (name, r) in zip(axes.flat, results["runs"].items(), strict=True):
        norms = np.array(r["norms"])
        width = max(1, min(20, len(norms) // 10))  # a moving average over `width` batches
        kernel = np.ones(width) / width
        for i in range(norms.shape[1]):
            ax.plot(np.convolve(norms[:, i], kernel, mode="valid"), label=f"layer {i + 1}")
        ax.set(yscale="log", xlabel="mini-batch (epoch 1)", ylabel="norm(dC/db)",
               title=f"{name}: test accuracy {common.pct(r['test_accuracy'])} "
                     f"after {results['epochs']} epochs")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"784-30-30-30-30-30-10, SGD eta 0.1\n{results['data']}", fontsize=9)
    common.save_figure(fig, out, "activations.png")


def main() -> None:
    args = common.parser(__doc__).parse_args()
    data = common.load(args, n_train=1000 if args.quick else None,
                       n_test=1000 if args.quick else None)
    print(data.description)
    epochs = 2 if args.quick else 30
    runs = {}
    for name in ACTIVATIONS:
        gn.seed(args.seed)
        runs[name] = run(name, data, epochs, args.device)
    results = {"data": data.description, "epochs": epochs, "runs": runs}
    rows = [[name, " ".join(f"{v:.1e}" for v in r["mean_norms"]), f"{r['first_to_last']:.3f}",
             common.pct(r["test_accuracy"])] for name, r in runs.items()]
    print(common.table(["activation", "mean norm(dC/db) in epoch 1, layers 1-6",
                        "layer 1 / layer 6", "test accuracy"], rows))
    common.save_json(args.out, "activations.json", results)
    plot(results, args.out)


if __name__ == "__main__":
    main()
