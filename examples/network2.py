"""Nielsen's network2.py in gpunet: chapter 3 of "Neural Networks and Deep Learning".

Three experiments, each with a plot in network2.png:

1. The learning slowdown on one neuron. A single sigmoid neuron must turn input 1 into output 0,
   starting saturated (w = b = 2, output 0.98), as in chapter 3's opening example. With the
   quadratic cost the gradient carries a factor sigma'(z), which is tiny when the neuron is
   saturated, so it barely moves for many epochs; with the cross-entropy cost that factor
   cancels and it learns at once. Both use eta = 0.15.
2. The same on MNIST: the 784-30-10 sigmoid network with the book's N(0, 1) weights, eta = 0.5,
   mini-batch 10, trained with each cost; test accuracy measured every 50 mini-batches over the
   first epochs.
3. network2's full recipe: cross-entropy, L2 regularisation with lambda = 5.0, eta = 0.5,
   mini-batch 10, 30 epochs, with chapter 3's improved N(0, 1/n_in) weights against the old
   N(0, 1) ones. The book's L2 step is w -> (1 - eta*lambda/n) w - eta*grad, n the number of
   training images; gpunet's SGD(weight_decay=lambda/n) takes exactly that step, but decays
   the biases as well (the book leaves them alone; it notes this changes little). For the
   book's accuracies with this recipe see chapter 3 ("Regularization" and "Weight
   initialization"); they are for 50,000 training images.

Data: offline, the 5,000 real MNIST training digits bundled with gpunet and the official 10,000
test digits; the full 60,000 when present ($GPUNET_DATA) or downloadable. The book trained on
50,000, and lambda/n is ten times larger for n = 5,000 than for 50,000.

    python examples/network2.py            # full
    python examples/network2.py --quick    # seconds
"""

from __future__ import annotations

import _common as common
import numpy as np

import gpunet as gn

L = gn.layers
COSTS = {"quadratic": gn.losses.MSE, "cross-entropy": gn.losses.BinaryCrossEntropy}


def one_neuron(cost: str, epochs: int) -> list[float]:
    """Part 1: the output of one saturated sigmoid neuron after each epoch of training."""
    model = gn.Sequential([L.Dense(1, 1), L.Sigmoid()], device="cpu")
    model.set_weights({"layer0.W": np.array([[2.0]]), "layer0.b": np.array([2.0])})
    model.compile(loss=COSTS[cost](), optimizer=gn.optimizers.SGD(lr=0.15))
    x, y = np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32)
    outputs = []
    for _ in range(epochs):
        model.fit(x, y, epochs=1, batch_size=1, verbose=0)
        outputs.append(float(model.predict(x)[0, 0]))
    return outputs


def mnist_net(init: str, device: str) -> gn.Sequential:
    """784-30-10 sigmoid; weights N(0, 1) ("large", network.py) or N(0, 1/n_in) ("scaled",
    network2.py's default), biases N(0, 1)."""
    return common.nielsen_net(init != "large", device)


class EveryNBatches(gn.callbacks.Callback):
    """Test accuracy every `n` mini-batches (the public evaluate() inside a callback)."""

    def __init__(self, n: int, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.n, self.x, self.y = n, x, y
        self.batches, self.accuracy = 0, []

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1
        if self.batches % self.n == 0:
            self.accuracy.append(self.model.evaluate(self.x, self.y)["accuracy"])


def slowdown(data: common.Data, epochs: int, device: str) -> dict:
    """Part 2: both costs from the same saturating N(0, 1) start, accuracy every 50 batches."""
    curves = {}
    for cost in COSTS:
        gn.seed(1)  # the same initial weights for both costs
        model = mnist_net("large", device)
        model.compile(loss=COSTS[cost](), optimizer=gn.optimizers.SGD(lr=0.5))
        probe = EveryNBatches(50, data.x_test[:2000], data.y_test[:2000])
        model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=10, verbose=0,
                  callbacks=[probe])
        curves[cost] = probe.accuracy
        print(f"part 2, {cost}: test accuracy every 50 mini-batches "
              + " ".join(f"{a:.2f}" for a in probe.accuracy))
    return curves


def regularized(data: common.Data, init: str, epochs: int, device: str) -> dict:
    """Part 3: network2's recipe; the test accuracy after each epoch."""
    model = mnist_net(init, device)
    decay = 5.0 / len(data.x_train)  # lambda / n
    model.compile(loss=gn.losses.BinaryCrossEntropy(),
                  optimizer=gn.optimizers.SGD(lr=0.5, weight_decay=decay),
                  metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=10, verbose=0,
                        validation_data=(data.x_test, data.y_test))
    acc = history.history["val_accuracy"]
    print(f"part 3, {init} init: test accuracy per epoch " + " ".join(f"{a:.4f}" for a in acc))
    return {"accuracy": acc, "best": max(acc), "final": acc[-1],
            "train_accuracy": model.evaluate(data.x_train, data.y_train)["accuracy"]}


def plot(results: dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for cost, outputs in results["one_neuron"].items():
        axes[0].plot(range(1, len(outputs) + 1), outputs, label=cost)
    axes[0].set(xlabel="epoch", ylabel="output a (target 0)",
                title="1. one saturated neuron, w = b = 2, eta 0.15")
    for cost, acc in results["slowdown"].items():
        axes[1].plot([50 * (i + 1) for i in range(len(acc))], [100 * a for a in acc],
                     label=cost)
    axes[1].set(xlabel="mini-batches of 10", ylabel="test accuracy (%)",
                title="2. 784-30-10, N(0, 1) weights, eta 0.5")
    for init, label in (("scaled", "N(0, 1/n_in) weights"), ("large", "N(0, 1) weights")):
        acc = results["regularized"][init]["accuracy"]
        axes[2].plot(range(1, len(acc) + 1), [100 * a for a in acc], marker=".", label=label)
    axes[2].set(xlabel="epoch", ylabel="test accuracy (%)",
                title="3. cross-entropy, L2 lambda 5.0, eta 0.5")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(results["data"], fontsize=9)
    common.save_figure(fig, out, "network2.png")


def main() -> None:
    args = common.parser(__doc__).parse_args()
    gn.seed(args.seed)
    quick = args.quick
    data = common.load(args, n_train=1000 if quick else None, n_test=1000 if quick else None)
    print(data.description)
    results = {"data": data.description,
               "one_neuron": {c: one_neuron(c, 30 if quick else 300) for c in COSTS}}
    for cost, outputs in results["one_neuron"].items():
        print(f"part 1, {cost}: output after 10, 30, all epochs: {outputs[9]:.3f} "
              f"{outputs[29]:.3f} {outputs[-1]:.3f}")
    results["slowdown"] = slowdown(data, 1 if quick else 3, args.device)
    epochs = 2 if quick else 30
    gn.seed(args.seed)
    results["regularized"] = {init: regularized(data, init, epochs, args.device)
                              for init in ("scaled", "large")}
    rows = [["book (50,000 images)", "see chapter 3", "-", "-"]]
    for init, name in (("scaled", "gpunet, N(0, 1/n_in) weights"),
                       ("large", "gpunet, N(0, 1) weights")):
        r = results["regularized"][init]
        rows.append([name, common.pct(r["best"]), common.pct(r["final"]),
                     common.pct(r["train_accuracy"])])
    print(f"part 3: 784-30-10, cross-entropy, lambda 5.0, eta 0.5, {epochs} epochs")
    print(common.table(["run", "best test accuracy", "final test", "final train"], rows))
    common.save_json(args.out, "network2.json", results)
    plot(results, args.out)


if __name__ == "__main__":
    main()
