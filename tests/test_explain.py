"""Tests of xraykit.explain (Grad-CAM) under the active Keras backend."""

import keras
import numpy as np
import pytest

from xraykit.explain import conv_layer_path, find_conv_layer, grad_cam
from xraykit.models import build_model
from xraykit.synthetic import phantoms


def _small_localizer(size=28):
    """Two convs and global max pooling: quick to train on phantoms, 14x14 feature map."""
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def test_grad_cam_peaks_on_the_opacity():
    """A CNN trained on phantoms whose label is an opacity looks at the opacity."""
    from scipy.ndimage import binary_dilation

    keras.utils.set_random_seed(0)
    x, y, masks = phantoms(480, 28, seed=1)
    model = _small_localizer()
    model.compile(keras.optimizers.Adam(5e-3), "binary_crossentropy", metrics=["accuracy"])
    # Backends draw different initial weights from one seed and some start slower: train in
    # rounds of 5 epochs until the phantoms are learned, 40 epochs at most.
    for _ in range(8):
        model.fit(x[:400], y[:400], epochs=5, batch_size=40, verbose=0)
        _, accuracy = model.evaluate(x[400:], y[400:], verbose=0)
        if accuracy > 0.85:
            break
    assert accuracy > 0.75, f"phantom CNN did not learn (accuracy {accuracy:.2f})"

    positives = np.flatnonzero(y[400:, 0] == 1) + 400
    cams = grad_cam(model, x[positives])
    assert cams.shape == (len(positives), 28, 28)
    assert np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    hits = []
    for cam, mask in zip(cams, masks[positives]):
        i, j = np.unravel_index(cam.argmax(), cam.shape)
        hits.append(binary_dilation(mask, iterations=2)[i, j])
    # The opacity covers ~3% of the image; chance would put the peak there ~10% of the time.
    assert np.mean(hits) >= 0.7, f"heatmap peak on the opacity in only {np.mean(hits):.0%}"


def test_grad_cam_scratch_model_from_xraykit(small_data):
    model = build_model("small_cnn", (28, 28, 1), width=8, depth=2)
    assert find_conv_layer(model).name == "block2_relu"
    images = small_data.x_test[:4]
    cams = grad_cam(model, images)
    assert cams.shape == (4, 28, 28) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and cams.min() >= 0.0 and cams.max() <= 1.0
    # A named layer works too, and a single image gets a batch axis.
    one = grad_cam(model, images[0], layer_name="block1_relu")
    assert one.shape == (1, 28, 28) and np.isfinite(one).all()


def test_grad_cam_nested_application_backbone(small_data):
    """keras.applications backbone nested in the xraykit wrapper: the map comes from inside."""
    model = build_model("resnet50v2", (32, 32, 1), weights=None)
    path = conv_layer_path(model)
    assert len(path) == 2 and path[0].name == "backbone"
    assert len(path[-1].output.shape) == 4
    images = np.stack([np.pad(im, ((2, 2), (2, 2), (0, 0))) for im in small_data.x_test[:2]])
    cams = grad_cam(model, images)
    assert cams.shape == (2, 32, 32)
    assert np.isfinite(cams).all() and cams.min() >= 0.0 and cams.max() <= 1.0


def test_grad_cam_bad_inputs():
    model = build_model("small_cnn", (28, 28, 1), width=4, depth=1)
    with pytest.raises(ValueError, match="expects"):
        grad_cam(model, np.zeros((1, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, np.zeros((1, 28, 28, 1), np.float32), class_index=3)
    with pytest.raises(ValueError, match="No layer named"):
        grad_cam(model, np.zeros((1, 28, 28, 1), np.float32), layer_name="nope")
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="4-D"):
        grad_cam(dense, np.zeros((1, 4, 1, 1)))


def test_grad_cam_and_error_figures():
    from xraykit.plotting import plot_errors, plot_grad_cam

    x, y, masks = phantoms(8, 28, seed=3)
    heatmaps = masks[:4].astype("float32")
    fig = plot_grad_cam(x[:4], heatmaps, titles=list("abcd"), show_image=True)
    # Pairs of panels: the plain image, then the image with its heatmap and title on top.
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 8
    for i, (plain, overlay) in enumerate(zip(drawn[::2], drawn[1::2])):
        assert len(plain.images) == 1 and plain.get_title() == ""
        np.testing.assert_array_equal(plain.images[0].get_array(), x[i, ..., 0])
        assert len(overlay.images) == 2 and overlay.get_title() == "abcd"[i]
        np.testing.assert_array_equal(overlay.images[1].get_array(), heatmaps[i])
    # Scores rising with the index: the false positives are the negatives scored >= 0.5, the
    # most confident first; the false negatives the positives below 0.5, the lowest first.
    scores = np.linspace(0, 1, 8)
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    fig = plot_errors(x, labels, scores, threshold=0.5, n=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"#{i} score {scores[i]:.2f}" for i in (7, 5)] + [
        f"#{i} score {scores[i]:.2f}" for i in (0, 2)]
    fig = plot_errors(x, scores >= 0.5, scores, threshold=0.5)  # no mistakes at all
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == [
        "no false positives", "no false negatives"]
    with pytest.raises(ValueError, match="match"):
        plot_grad_cam(x[:2], masks[:3])


@pytest.mark.parametrize("final", ["activation", "dense"])
def test_grad_cam_saturated_wrong_prediction_still_has_a_map(final):
    """A saturated, confidently wrong score still gets a non-empty, finite map.

    p rounds to 1.0 in float32, so the sigmoid's gradient is zero; the logit's is not.
    """
    x, y, _ = phantoms(4, 28, seed=5)
    if final == "activation":
        model = build_model("small_cnn", (28, 28, 1), width=8, depth=2)
        dense = model.get_layer("logits")
    else:
        model = _small_localizer()
        dense = model.layers[-1]
    kernel = np.abs(keras.ops.convert_to_numpy(dense.kernel)) + 0.5
    dense.kernel.assign(kernel)
    dense.bias.assign(np.full(dense.bias.shape, 200.0, np.float32))
    negatives = x[y[:, 0] == 0][:1] if (y[:, 0] == 0).any() else x[:1]
    p = keras.ops.convert_to_numpy(model(negatives))
    assert p.min() > 0.9999  # saturated: the sigmoid's gradient is (numerically) zero
    cams = grad_cam(model, negatives)
    assert np.isfinite(cams).all()
    assert cams.max() == pytest.approx(1.0), "the map is empty for a saturated prediction"


def test_score_gradients_match_finite_differences():
    """The gradient of the class logit with respect to the feature map, against its formula."""
    from xraykit.explain import score_gradients

    inputs = keras.Input((28, 28, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(a)  # smooth: finite differences are exact
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    dense = model.layers[-1]
    x, _, _ = phantoms(2, 28, seed=2)
    features, grads = score_gradients(model, x, conv_layer_path(model, "features"))
    kernel = keras.ops.convert_to_numpy(dense.kernel)[:, 0]
    # d(logit)/dA_ijc = kernel_c / (h * w) for average pooling: the same at every pixel.
    expected = np.broadcast_to(kernel / (28 * 28), grads.shape)
    np.testing.assert_allclose(grads, expected, rtol=1e-4, atol=1e-9)
    bias = keras.ops.convert_to_numpy(dense.bias)[0]
    np.testing.assert_allclose(features.mean(axis=(1, 2)) @ kernel + bias,
                               _logit(model(x)), rtol=1e-3, atol=1e-4)


def _logit(p):
    from scipy.special import logit

    return logit(np.asarray(keras.ops.convert_to_numpy(p), np.float64))[:, 0]


def test_grad_cam_at_a_backbones_output_is_the_heads_weighting_of_its_feature_map():
    """At 64 px the chosen map is the backbone's own output (the layer before pooling).

    With global average pooling and one dense layer after it, the gradient of logit k is the
    head's weight W[c, k] / (h * w) at every position, so Grad-CAM is ReLU(A @ W[:, k]),
    upsampled and scaled to a peak of 1: computed here without any gradient.
    """
    model = build_model("resnet50v2", (64, 64, 1), task="multilabel", num_classes=3,
                        weights=None, seed=0)
    path = conv_layer_path(model)
    assert path[-1].output is path[0].outputs[0]  # the case that needs no inner head model
    images = np.random.default_rng(0).random((3, 64, 64, 1), dtype=np.float32)
    features_model = keras.Model(model.inputs, model.get_layer("head_pool").input)
    features = np.asarray(features_model.predict(images, verbose=0), dtype=np.float64)
    kernel = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    for k in range(3):
        raw = np.maximum(features @ kernel[:, k], 0).astype(np.float32)
        expected = keras.ops.convert_to_numpy(keras.ops.image.resize(
            raw[..., None], (64, 64), interpolation="bilinear"))[..., 0]
        expected = np.maximum(expected, 0) / np.maximum(expected.max(axis=(1, 2), keepdims=True),
                                                        1e-12)
        np.testing.assert_allclose(grad_cam(model, images, class_index=k), expected, atol=1e-4)
