"""The arguments of the preprocessing and augmentation helpers are checked before any layer runs.

Before: a NaN window center or a negative CLAHE clip limit returned an image, MixUp took
``alpha=0`` or NaN labels and returned NaN, an empty batch was "augmented", ``bins=0`` and
``batch_size=0`` failed deep inside NumPy or tf.data with messages that named neither.
"""

import numpy as np
import pytest

from xraykit import augmentation, preprocessing

IMAGES = np.random.default_rng(0).random((4, 16, 16, 1), dtype=np.float32)
LABELS = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("call, message", [
    (lambda: preprocessing.window(IMAGES, float("nan"), 0.5), "window center must be a finite"),
    (lambda: preprocessing.window(IMAGES, 0.5, 0.0), r"window width must be a finite number "
                                                     r"in \(0, inf\)"),
    (lambda: preprocessing.Window(0.5, float("inf")), "window width"),
    (lambda: preprocessing.clahe(IMAGES, clip_limit=-1), "clip_limit must be"),
    (lambda: preprocessing.clahe(IMAGES, tile_grid_size=(0, 4)), "tile_grid_size must be a whole"),
    (lambda: preprocessing.clahe(IMAGES, tile_grid_size=4), r"tile_grid_size must be \(rows"),
    (lambda: preprocessing.equalize_hist(IMAGES, bins=0), "bins must be a whole number >= 2"),
    (lambda: augmentation.augmentation_layers("light", strength=float("nan")), "strength must"),
    (lambda: augmentation.augment_numpy(IMAGES[:0], "light"), "images is empty"),
    (lambda: augmentation.augment_numpy(IMAGES * np.nan, "light"), "NaN"),
    (lambda: augmentation.mixup(IMAGES, LABELS, alpha=0), r"alpha must be a finite number in "
                                                          r"\(0, inf\)"),
    (lambda: augmentation.mixup(IMAGES, [0, np.nan, 1, 0]), "labels holds 1 NaN"),
    (lambda: augmentation.mixup(IMAGES, LABELS[:2]), r"images \(4\) and labels \(2\) differ"),
    (lambda: augmentation.mixup(IMAGES * 255, LABELS), "images must be in"),
    (lambda: augmentation.cutmix(IMAGES, LABELS, factor=-1), r"factor must be a finite number "
                                                             r"in \[0, 1\]"),
    (lambda: augmentation.randaugment(num_ops=0), "num_ops must be a whole number >= 1"),
    (lambda: augmentation.augmented_dataset(IMAGES, LABELS, batch_size=0, backend="pydataset"),
     "batch_size must be a whole number >= 1"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_good_arguments_still_work():
    mixed, soft = augmentation.mixup(IMAGES, LABELS, alpha=0.2)
    assert mixed.shape == IMAGES.shape and soft.shape == (4, 1)
    assert np.all((soft >= 0) & (soft <= 1))
    assert preprocessing.equalize_hist(IMAGES, bins=2).shape == IMAGES.shape
    equalized = preprocessing.clahe(IMAGES[0], clip_limit=1.5, tile_grid_size=[2, 2])
    assert equalized.shape == (16, 16, 1)


@pytest.mark.parametrize("option", ["rotation_factor", "translation_factor", "zoom_factor"])
def test_random_affine_refuses_nan_factors(option):
    from xraykit.affine import RandomAffine

    with pytest.raises(ValueError, match=f"RandomAffine: {option}=.* is out of range"):
        RandomAffine(**{option: float("nan")})
    with pytest.raises(ValueError, match=f"RandomAffine: {option}=.* is out of range"):
        RandomAffine(**{option: (0.0, float("inf"))})


@pytest.mark.parametrize("history, message", [
    ({"auc": [], "val_auc": []}, "holds 0 epoch"),
    ({"auc": [0.6, 0.7], "val_auc": [0.5]}, r"holds 2 epoch\(s\) of 'auc' and 1"),
    ({"auc": [0.6, 0.7], "val_auc": [np.nan, np.nan]}, "the run diverged"),
])
def test_gap_summary_refuses_empty_or_diverged_histories(history, message):
    from xraykit.runs import gap_summary

    with pytest.raises(ValueError, match=message):
        gap_summary(history)
