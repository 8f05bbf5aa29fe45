"""Nielsen's network.py in gpunet: chapter 1 of "Neural Networks and Deep Learning".

The book's setup: a 784-30-10 network of sigmoid neurons, the quadratic cost
C = 1/(2n) sum_x ||y(x) - a(x)||^2, mini-batch stochastic gradient descent with eta = 3.0 and
mini-batches of 10, 30 epochs, weights and biases drawn from N(0, 1). The book reports 95.42%
on the 10,000 test images at its best epoch (epoch 28), trained on 50,000 images.

Here the data differ: offline there are 5,000 real MNIST training digits (bundled with gpunet)
and the official 10,000 test digits; the full 60,000 are used when present ($GPUNET_DATA) or
downloadable. Fewer training images give a lower accuracy.

The script trains the book's network twice, with the book's N(0, 1) weights and with the
N(0, 1/n_in) weights of chapter 3, then runs a NumPy re-implementation of the book's own
per-sample loop (examples/_nielsen.py) on the same data and compares the seconds per epoch.

    python examples/network1.py            # full: 30 epochs
    python examples/network1.py --quick    # seconds: 1,000 images, 2 epochs
"""

from __future__ import annotations

import _common as common
import _nielsen
import numpy as np

import gpunet as gn

BOOK_ACCURACY = 0.9542  # chapter 1, best epoch of 30, 50,000 training images


def build(init: str, device: str) -> gn.Sequential:
    """The book's network ("book": N(0, 1) weights, "scaled": N(0, 1/n_in)), compiled as
    network.py trains it: quadratic cost, SGD with η = 3.0."""
    model = common.nielsen_net(init != "book", device)
    model.compile(loss=gn.losses.MSE(), optimizer=gn.optimizers.SGD(lr=3.0),
                  metrics=["accuracy"])
    return model


def summary(accuracy: list[float], seconds: list[float]) -> dict:
    return {"accuracy": accuracy, "seconds": seconds, "best": max(accuracy),
            "final": accuracy[-1], "best_epoch": int(np.argmax(accuracy)) + 1}


def run_gpunet(data: common.Data, init: str, epochs: int, device: str) -> dict:
    """Train with fit(); test accuracy after every epoch (as the book prints it)."""
    model = build(init, device)
    history = model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=10,
                        validation_data=(data.x_test, data.y_test), verbose=0)
    acc = history.history["val_accuracy"]
    print(f"gpunet, {init} init: test accuracy per epoch " + " ".join(f"{a:.4f}" for a in acc))
    return summary(acc, history.history["seconds"])


def race(data: common.Data, epochs: int, device: str, seed: int) -> tuple[dict, dict]:
    """gpunet (the book's N(0, 1) init) and the book's own per-sample loop, one epoch of each
    in turn, so that both are timed under the same load on this machine. The seconds are
    those of the training alone, without the evaluation on the test set."""
    model = build("book", device)
    net = _nielsen.Network([784, 30, 10], seed=seed)
    training = _nielsen.as_samples(data.x_train, data.y_train)
    test = _nielsen.as_test(data.x_test, data.y_test)
    ours: tuple[list, list] = ([], [])
    theirs: tuple[list, list] = ([], [])
    for epoch in range(epochs):
        history = model.fit(data.x_train, data.y_train, epochs=1, batch_size=10,
                            validation_data=(data.x_test, data.y_test), verbose=0)
        ours[0].append(history.history["val_accuracy"][0])
        ours[1].append(history.history["seconds"][0])
        ((seconds, correct),) = net.sgd(training, 1, 10, 3.0, test_data=test)
        theirs[0].append(correct / len(test))
        theirs[1].append(seconds)
        print(f"epoch {epoch + 1}: gpunet {ours[0][-1]:.4f} ({ours[1][-1]:.3f} s), "
              f"Nielsen's loop {theirs[0][-1]:.4f} ({seconds:.3f} s)", flush=True)
    return summary(*ours), summary(*theirs)


def model_device(device: str) -> str:
    return gn.backend.resolve_device(device)


def plot(results: dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("gpunet_book_init", "gpunet, N(0, 1) weights (the book's)"),
                       ("gpunet_scaled_init", "gpunet, N(0, 1/n_in) weights"),
                       ("nielsen_loop", "Nielsen's per-sample loop, N(0, 1)")):
        acc = results[key]["accuracy"]
        ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], marker=".", label=label)
    ax.axhline(100 * BOOK_ACCURACY, color="gray", ls="--",
               label="book: 95.42% (50,000 training images)")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)",
           title=f"784-30-10 sigmoid, quadratic cost, SGD eta 3.0\n{results['data']}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    common.save_figure(fig, out, "network1.png")


def main() -> None:
    args = common.parser(__doc__).parse_args()
    gn.seed(args.seed)
    epochs = 2 if args.quick else 30
    data = common.load(args, n_train=1000 if args.quick else None,
                       n_test=1000 if args.quick else None)
    print(data.description)
    ours, theirs = race(data, epochs, args.device, args.seed)
    results = {"data": data.description, "epochs": epochs, "book": BOOK_ACCURACY,
               "gpunet_book_init": ours, "nielsen_loop": theirs,
               "gpunet_scaled_init": run_gpunet(data, "scaled", epochs, args.device)}
    ratios = np.array(theirs["seconds"]) / np.array(ours["seconds"])
    results["speedup"] = float(np.median(ratios))  # of the epoch-by-epoch ratios
    rows = [["book (network.py, 50,000 images)", common.pct(BOOK_ACCURACY), "28", "-"]]
    for key, name in (("gpunet_book_init", "gpunet, N(0, 1) weights"),
                      ("gpunet_scaled_init", "gpunet, N(0, 1/n_in) weights"),
                      ("nielsen_loop", "Nielsen's loop (NumPy), N(0, 1)")):
        r = results[key]
        rows.append([name, f"{common.pct(r['best'])} (final {common.pct(r['final'])})",
                     str(r["best_epoch"]), f"{np.median(r['seconds']):.3f} s"])
    print(common.table(["run", "best test accuracy", "best epoch", "s/epoch (median)"], rows))
    print(f"gpunet is {results['speedup']:.1f}x faster per epoch than the per-sample loop "
          f"(median of the {epochs} epoch-by-epoch ratios, range {ratios.min():.1f}-"
          f"{ratios.max():.1f}x; {len(data.x_train):,} images, mini-batch 10, "
          f"device {model_device(args.device)})")
    common.save_json(args.out, "network1.json", results)
    plot(results, args.out)


if __name__ == "__main__":
    main()
