"""Nielsen's network.py (chapter 1 of "Neural Networks and Deep Learning"), re-implemented
compactly for Python 3 and NumPy, to time gpunet against the book's own algorithm.

It keeps the book's structure on purpose: column vectors, one `backprop` call per training
sample, the per-sample gradients summed over the mini-batch, then
    w -> w - (eta / m) * sum_x dC_x/dw.
Only what the timing needs was changed: a seeded generator instead of the global one, and
`sgd` returns the seconds each epoch's training took (without the test evaluation) and the
number of test digits it classified correctly.
"""

from __future__ import annotations

import random
import time

import numpy as np

Sample = tuple[np.ndarray, np.ndarray]  # x (784, 1), y one-hot (10, 1)


class Network:
    def __init__(self, sizes: list[int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:],
                                                                    strict=True)]
        self.shuffle = random.Random(seed).shuffle

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        for b, w in zip(self.biases, self.weights, strict=True):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def sgd(self, training_data: list[Sample], epochs: int, mini_batch_size: int, eta: float,
            test_data: list[tuple[np.ndarray, int]], verbose: bool = False
            ) -> list[tuple[float, int]]:
        """Mini-batch stochastic gradient descent; per epoch (training seconds, correct)."""
        n = len(training_data)
        results = []
        for j in range(epochs):
            t0 = time.perf_counter()
            self.shuffle(training_data)
            mini_batches = [training_data[k:k + mini_batch_size]
                            for k in range(0, n, mini_batch_size)]
            for mini_batch in mini_batches:
                self.update_mini_batch(mini_batch, eta)
            seconds = time.perf_counter() - t0
            correct = self.evaluate(test_data)
            if verbose:
                print(f"Epoch {j}: {correct} / {len(test_data)} ({seconds:.2f} s)")
            results.append((seconds, correct))
        return results

    def update_mini_batch(self, mini_batch: list[Sample], eta: float) -> None:
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b, strict=True)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w, strict=True)]
        self.weights = [w - (eta / len(mini_batch)) * nw
                        for w, nw in zip(self.weights, nabla_w, strict=True)]
        self.biases = [b - (eta / len(mini_batch)) * nb
                       for b, nb in zip(self.biases, nabla_b, strict=True)]

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
        """The gradient of C_x = ||y - a||^2 / 2 for one sample, layer by layer."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights, strict=True):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for layer in range(2, self.num_layers):
            z = zs[-layer]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sp
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return nabla_b, nabla_w

    def evaluate(self, test_data: list[tuple[np.ndarray, int]]) -> int:
        test_results = [(np.argmax(self.feedforward(x)), y) for (x, y) in test_data]
        return sum(int(x == y) for (x, y) in test_results)

    def cost_derivative(self, output_activations: np.ndarray, y: np.ndarray) -> np.ndarray:
        return output_activations - y


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    return sigmoid(z) * (1 - sigmoid(z))


def as_samples(x: np.ndarray, y: np.ndarray) -> list[Sample]:
    """(N, 784) images and integer labels as the book's training list of column vectors."""
    onehot = np.eye(10)[y]
    return [(xi.reshape(-1, 1), ti.reshape(-1, 1)) for xi, ti in zip(x, onehot, strict=True)]


def as_test(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Test images as column vectors with their integer labels, as in the book."""
    return [(xi.reshape(-1, 1), int(ti)) for xi, ti in zip(x, y, strict=True)]
