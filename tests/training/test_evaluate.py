"""evaluate and predict: batch sizes, empty inputs, one metric with fit."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.training.metrics import Tally, correct_count
from tests.training.test_fit import blobs, small_model


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "64", None])
def test_batch_size_must_be_a_positive_int(bad):
    model = small_model()
    x, y = blobs(10)
    with pytest.raises(ValueError, match=rf"predict: batch_size must be a positive int, "
                                         rf"got {bad!r}"):
        model.predict(x, batch_size=bad)
    with pytest.raises(ValueError, match=rf"evaluate: batch_size must be a positive int, "
                                         rf"got {bad!r}"):
        model.evaluate(x, y, batch_size=bad)


def test_predict_on_empty_x_has_the_output_shape():
    model = small_model()
    out = model.predict(np.zeros((0, 4), np.float32))
    assert out.shape == (0, 3) and out.dtype == np.float32
    cnn = gn.Sequential([gn.layers.Conv2D(1, 2, 3), gn.layers.Flatten()], device="cpu",
                        input_shape=(1, 5, 5))
    assert cnn.predict(np.zeros((0, 1, 5, 5), np.float32)).shape == (0, 18)


def test_predict_refuses_wrong_sample_shapes():
    with pytest.raises(ValueError, match=r"predict: x samples must have shape \(4,\)"):
        small_model().predict(np.zeros((3, 5), np.float32))


def test_evaluate_matches_the_tally_of_labels_and_one_hot_rows():
    model = small_model()
    x, y = blobs(50)
    out = model.predict(x)
    onehot = np.eye(3, dtype=np.float32)[y]
    right = int((out.argmax(axis=1) == y).sum())
    assert int(correct_count(out, y)) == int(correct_count(out, onehot)) == right
    by_labels, by_onehot = model.evaluate(x, y, batch_size=7), model.evaluate(x, onehot)
    assert by_labels["accuracy"] == by_onehot["accuracy"] == right / 50
    assert by_labels["loss"] == pytest.approx(by_onehot["loss"], rel=1e-6)
    tally = Tally(np, accuracy=False)
    tally.add(out, y, np.float32(2.0))
    assert tally.logs() == {"loss": 2.0}
