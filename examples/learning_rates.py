"""The learning rate, first on a toy loss, then on a real network.

1. Gradient descent on loss(w) = (w + 1)^2, whose minimum is at w = -1, from w = 2 (our choice
   of start), with learning rates 0.6, 0.2, 0.01 and 0.99. The gradient is 2(w + 1), so each
   step multiplies the distance to the minimum by (1 - 2 lr): 0.2 creeps in by 0.6 a step,
   0.01 crawls (0.98 a step), 0.6 overshoots and comes back (-0.2 a step), and 0.99 jumps
   from side to side, barely closer each time (-0.98 a step). The steps are taken by gpunet's
   own SGD optimizer on a one-element parameter array.
2. The same four learning rates on a real network: a 784-30-10 network with a sigmoid hidden
   layer and a softmax output (cross-entropy cost), plain SGD with mini-batches of 10; the
   training loss after every epoch, and the final test accuracy.

One PNG of loss curves each: learning_rates_toy.png and learning_rates_mnist.png.

Data: offline, the 5,000 real MNIST training digits bundled with gpunet and the official 10,000
test digits; the full 60,000 when present ($GPUNET_DATA) or downloadable.

    python examples/learning_rates.py            # full: 20 epochs per learning rate
    python examples/learning_rates.py --quick    # seconds
"""

from __future__ import annotations

import _common as common
import numpy as np

import gpunet as gn

RATES = (0.6, 0.2, 0.01, 0.99)  # the notes' four; try others with --rates


def toy(lr: float, steps: int, start: float = 2.0) -> list[float]:
    """w before each step and after the last, stepping with gpunet's SGD."""
    w = np.array([start], dtype=np.float64)
    grad = np.zeros_like(w)
    opt = gn.optimizers.SGD(lr=lr)
    ws = [start]
    for _ in range(steps):
        grad[0] = 2 * (w[0] + 1)  # d/dw (w + 1)^2
        opt.step([w], [grad])  # w -= lr * grad, in place
        ws.append(float(w[0]))
    return ws


def network(data: common.Data, lr: float, epochs: int, device: str) -> dict:
    """784-30(sigmoid)-10(softmax) trained with SGD at `lr`; loss per epoch, test accuracy."""
    L = gn.layers
    model = gn.Sequential([L.Dense(784, 30, init="normal"), L.Sigmoid(), L.Dense(30, 10)],
                          device=device)
    model.compile(loss=gn.losses.CrossEntropy(), optimizer=gn.optimizers.SGD(lr=lr),
                  metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=10, verbose=0,
                        callbacks=[gn.callbacks.TerminateOnNaN()])
    test = model.evaluate(data.x_test, data.y_test)
    loss = history.history["loss"]
    print(f"network, lr {lr}: training loss per epoch " + " ".join(f"{v:.3f}" for v in loss)
          + f"; test accuracy {test['accuracy']:.4f}")
    return {"loss": loss, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "stopped": history.stop_reason}


def plot(results: dict, rates: list[float], out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for lr in rates:
        ws = np.array(results["toy"][str(lr)]["w"])
        axes[0].plot(ws, marker=".", label=f"lr {lr}")
        axes[1].plot(np.maximum((ws + 1) ** 2, 1e-16), marker=".", label=f"lr {lr}")
    axes[0].set(xlabel="step", ylabel="w (the minimum is at -1)",
                title="gradient descent on (w + 1)^2 from w = 2")
    axes[1].set(xlabel="step", ylabel="loss (w + 1)^2", yscale="log", title="its loss")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    common.save_figure(fig, out, "learning_rates_toy.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lr in rates:
        r = results["network"][str(lr)]
        ax.plot(range(1, len(r["loss"]) + 1), r["loss"], marker=".",
                label=f"lr {lr}: test accuracy {common.pct(r['test_accuracy'])}")
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)",
           title=f"784-30-10, SGD, mini-batch 10\n{results['data']}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend()
    common.save_figure(fig, out, "learning_rates_mnist.png")


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--rates", type=float, nargs="+", default=list(RATES),
                   help="learning rates to compare (default: %(default)s)")
    args = p.parse_args()
    rates = args.rates
    data = common.load(args, n_train=1000 if args.quick else None,
                       n_test=1000 if args.quick else None)
    print(data.description)
    results: dict = {"data": data.description, "toy": {}, "network": {}}
    for lr in rates:
        ws = toy(lr, 30)
        losses = [(w + 1) ** 2 for w in ws]
        results["toy"][str(lr)] = {"w": ws, "loss": losses}
        print(f"toy, lr {lr}: w after 1, 2, 3 steps {ws[1]:.3f} {ws[2]:.3f} {ws[3]:.3f}; "
              f"loss after 30 steps {losses[30]:.3g}")
    epochs = 2 if args.quick else 20
    for lr in rates:
        gn.seed(args.seed)  # the same initial weights and batch order for every rate
        results["network"][str(lr)] = network(data, lr, epochs, args.device)
    rows = [[f"{lr}", f"{results['toy'][str(lr)]['loss'][30]:.3g}",
             f"{results['network'][str(lr)]['loss'][-1]:.4f}",
             common.pct(results["network"][str(lr)]["test_accuracy"])] for lr in rates]
    print(common.table(["learning rate", "toy loss after 30 steps",
                        f"network: training loss, epoch {epochs}", "test accuracy"], rows))
    common.save_json(args.out, "learning_rates.json", results)
    plot(results, rates, args.out)


if __name__ == "__main__":
    main()
