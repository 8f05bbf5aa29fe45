"""Overfitting and its cures: chapter 3 of "Neural Networks and Deep Learning".

The book's setup: a 784-30-10 sigmoid network with the cross-entropy cost and N(0, 1) weights,
SGD with eta = 0.5 and mini-batches of 10, trained on only the first 1,000 training images for
400 epochs. The accuracy on the training images reaches 100% while the test accuracy stalls
(book: 82.27%) and the test cost starts to rise after a few dozen epochs: the network learns
the peculiarities of its 1,000 images instead of digits. Then each cure, on the same network:

- L2 regularisation, lambda = 0.1: SGD(weight_decay = lambda / n) takes the book's step
  w -> (1 - eta*lambda/n) w - eta*grad (gpunet also decays the biases; the book does not).
  Book: 87.1%.
- dropout: half the hidden neurons dropped at random in every mini-batch, as the book
  describes it (Dropout(0.5) after the hidden layer).
- augmentation: every image shifted by up to 2 pixels and rotated by up to 15 degrees, drawn
  afresh each time it is seen (gpunet.augment.RandomShiftRotate).
- early stopping: stop once the accuracy on held-out validation images has not improved for 10
  epochs (the book's "no improvement in ten epochs" rule) and keep the best weights.
- more data: all the training images not held out for validation, for as many mini-batch
  updates as the baseline gets (at least 30 epochs).

Data: offline, the 5,000 real MNIST training digits bundled with gpunet (so "more data" is
4,000 images and the validation set 1,000) and the official 10,000 test digits; with the full
60,000 (present in $GPUNET_DATA or downloadable) the split is the book's 50,000 / 10,000.

    python examples/overfitting.py            # full: 400 epochs
    python examples/overfitting.py --quick    # seconds
"""

from __future__ import annotations

import time

import _common as common
import numpy as np

import gpunet as gn
from gpunet.augment import RandomShiftRotate

L = gn.layers
BOOK = {"baseline": 0.8227, "L2 lambda 0.1": 0.871}


class Probe(gn.callbacks.Callback):
    """After every epoch, loss and accuracy on the given (x, y) sets, with the public
    evaluate() (inference mode: no dropout, no augmentation)."""

    def __init__(self, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__()
        self.sets = sets
        self.logs: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name, (x, y) in self.sets.items():
            result = self.model.evaluate(x, y)
            self.logs.setdefault(f"{name}_accuracy", []).append(result["accuracy"])
            self.logs.setdefault(f"{name}_loss", []).append(result["loss"])


def train(cure: str, splits: dict, epochs: int, device: str) -> dict:
    """One run of the book's network with one cure ("baseline": none)."""
    x, y = splits["more data"] if cure == "more data" else splits["train"]
    hidden = [L.Sigmoid(), L.Dropout(0.5)] if cure == "dropout" else [L.Sigmoid()]
    model = gn.Sequential([L.Dense(784, 30, init="normal"), *hidden, L.Dense(30, 10),
                           L.Sigmoid()], device=device)
    rng = gn.backend.rng()  # the book's large_weight_initializer: N(0, 1) weights and biases
    model.set_weights({k: rng.standard_normal(v.shape) for k, v in model.weights().items()})
    decay = 0.1 / len(x) if cure.startswith("L2") else 0.0
    model.compile(loss=gn.losses.BinaryCrossEntropy(),
                  optimizer=gn.optimizers.SGD(lr=0.5, weight_decay=decay), metrics=["accuracy"])
    probe = Probe({"train": (x, y), "test": splits["test"]})
    callbacks: list = [probe]
    if cure == "early stopping":
        callbacks.append(gn.callbacks.EarlyStopping(monitor="val_accuracy", patience=10,
                                                    restore_best_weights=True))
    augment = RandomShiftRotate(2, 15) if cure == "augmentation" else None
    t0 = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=10, verbose=0, callbacks=callbacks,
              augment=augment, validation_data=splits["validation"])
    final = model.evaluate(*splits["test"])
    result = {**probe.logs, "training_images": len(x), "epochs_run": len(probe.logs["test_loss"]),
              "final_test_accuracy": final["accuracy"], "final_test_loss": final["loss"],
              "final_train_accuracy": model.evaluate(x, y)["accuracy"],
              "best_test_accuracy": max(probe.logs["test_accuracy"]),
              "seconds": time.perf_counter() - t0}
    print(f"{cure}: test accuracy {common.pct(final['accuracy'])} after "
          f"{result['epochs_run']} epochs ({result['seconds']:.0f} s)", flush=True)
    return result


def plot(results: dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    base = results["runs"]["baseline"]
    epochs = range(1, len(base["test_loss"]) + 1)
    axes[0].plot(epochs, [100 * a for a in base["train_accuracy"]], label="training images")
    axes[0].plot(epochs, [100 * a for a in base["test_accuracy"]], label="test images")
    axes[0].set(xlabel="epoch", ylabel="accuracy (%)", title="baseline: 1,000 training images")
    axes[1].plot(epochs, base["test_loss"], color="C3")
    axes[1].set(xlabel="epoch", ylabel="test cost (cross-entropy)",
                title="baseline: the test cost rises")
    for cure, r in results["runs"].items():
        axes[2].plot(range(1, len(r["test_accuracy"]) + 1),
                     [100 * a for a in r["test_accuracy"]], label=cure)
    axes[2].set(xlabel="epoch", ylabel="test accuracy (%)", title="each cure")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[2].legend(fontsize=8)
    fig.suptitle(results["data"], fontsize=9)
    common.save_figure(fig, out, "overfitting.png")


def main() -> None:
    args = common.parser(__doc__).parse_args()
    gn.seed(args.seed)
    data = common.load(args, n_test=2000 if args.quick else None)
    n, n_val = (300, 1000) if args.quick else (1000, min(10_000, len(data.x_train) // 5))
    n_more = 1200 if args.quick else len(data.x_train) - n_val
    splits = {"train": (data.x_train[:n], data.y_train[:n]),
              "more data": (data.x_train[:n_more], data.y_train[:n_more]),
              "validation": (data.x_train[-n_val:], data.y_train[-n_val:]),
              "test": (data.x_test, data.y_test)}
    print(f"{data.description}; training on the first {n:,}, validating on the last {n_val:,}")
    epochs = 3 if args.quick else 400
    runs = {}
    for cure in ("baseline", "L2 lambda 0.1", "dropout", "augmentation", "early stopping",
                 "more data"):
        gn.seed(args.seed)  # the same initial weights for every cure
        cure_epochs = max(min(30, epochs), epochs * n // n_more) if cure == "more data" \
            else epochs
        runs[cure] = train(cure, splits, cure_epochs, args.device)
    results = {"data": data.description, "runs": runs}
    rows = [[cure, f"{r['training_images']:,}", str(r["epochs_run"]),
             common.pct(r["final_train_accuracy"]), common.pct(r["final_test_accuracy"]),
             common.pct(r["best_test_accuracy"]), f"{r['final_test_loss']:.3f}",
             common.pct(BOOK.get(cure))] for cure, r in runs.items()]
    print(common.table(["cure", "training images", "epochs", "train accuracy", "test accuracy",
                        "best test (epoch end)", "test cost", "book"], rows))
    common.save_json(args.out, "overfitting.json", results)
    plot(results, args.out)


if __name__ == "__main__":
    main()
