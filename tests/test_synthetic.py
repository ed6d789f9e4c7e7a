"""xraykit.synthetic.patient_phantoms: several images per patient, and a shortcut marker."""

import numpy as np
import pytest

from xraykit import synthetic


def test_patient_phantoms_shapes_ids_and_seed():
    x, y, ids, marked = synthetic.patient_phantoms(10, 4, image_size=24, seed=3)
    assert x.shape == (40, 24, 24, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.shape == (40, 1) and y.dtype == np.int32
    np.testing.assert_array_equal(ids, np.repeat(np.arange(10), 4))
    assert not marked.any()  # no marker unless asked for
    for p in range(10):  # the label belongs to the patient
        assert len(np.unique(y[ids == p])) == 1
    assert y[::4].sum() == 5  # positive_fraction=0.5 of the patients
    again = synthetic.patient_phantoms(10, 4, image_size=24, seed=3)
    np.testing.assert_array_equal(x, again[0])
    assert not np.array_equal(x, synthetic.patient_phantoms(10, 4, image_size=24, seed=4)[0])


def _nearest_is_same_patient(x, ids):
    flat = x.reshape(len(x), -1)
    dist = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    return float((ids[dist.argmin(1)] == ids).mean())


def test_images_of_a_patient_share_the_anatomy():
    x, _, ids, _ = synthetic.patient_phantoms(20, 5, seed=0)
    # The nearest other image is mostly one of the same patient (1 in 5 by chance)...
    assert _nearest_is_same_patient(x, ids) > 0.75
    # ...and more often with the patient's lung texture than without it.
    plain, _, _, _ = synthetic.patient_phantoms(20, 5, seed=0, anatomy=0.0)
    assert _nearest_is_same_patient(x, ids) > _nearest_is_same_patient(plain, ids)


def test_opacity_brightens_the_lungs_of_positive_patients():
    x, y, _, _ = synthetic.patient_phantoms(40, 3, seed=1, opacity=0.5, anatomy=0.0)
    clean, _, _, _ = synthetic.patient_phantoms(40, 3, seed=1, opacity=0.0, anatomy=0.0)
    gain = (x - clean).reshape(len(x), -1).sum(1)
    positive = y[:, 0] == 1
    assert gain[positive].min() > 5 * np.abs(gain[~positive]).max() + 1.0


def test_marker_follows_the_label_and_changes_only_its_box():
    x, y, _, marked = synthetic.patient_phantoms(60, 5, seed=2, marker_rate=(0.1, 0.9))
    positive = y[:, 0] == 1
    assert 0.8 < marked[positive].mean() <= 1.0 and 0.0 <= marked[~positive].mean() < 0.2
    plain, y_plain, _, _ = synthetic.patient_phantoms(60, 5, seed=2)
    np.testing.assert_array_equal(y, y_plain)
    rows, cols = synthetic.marker_region(28)
    outside = np.ones((28, 28), bool)
    outside[rows, cols] = False
    np.testing.assert_array_equal(x[:, outside], plain[:, outside])  # same images otherwise
    assert np.all(x[marked][:, rows, cols].max(axis=(1, 2, 3)) >= 0.9)
    assert not np.array_equal(x[marked][:, rows, cols], plain[marked][:, rows, cols])
    _, y_u, _, m_u = synthetic.patient_phantoms(200, 5, seed=2, marker_rate=(0.5, 0.5))
    assert abs(m_u[y_u[:, 0] == 1].mean() - m_u[y_u[:, 0] == 0].mean()) < 0.1


@pytest.mark.parametrize("kwargs, match", [
    ({"n_patients": 1}, "n_patients"),
    ({"images_per_patient": 0}, "images_per_patient"),
    ({"image_size": 8}, "image_size"),
    ({"positive_fraction": 1.0}, "positive_fraction"),
    ({"marker_rate": (0.1, 1.5)}, "marker_rate"),
    ({"marker_rate": (0.1,)}, "marker_rate"),
])
def test_patient_phantoms_bad_arguments(kwargs, match):
    args = {"n_patients": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        synthetic.patient_phantoms(**args)


def test_phantom_folder_is_png_files_with_an_nih_style_labels_csv(tmp_path):
    import csv

    from PIL import Image

    from xraykit.synthetic import patient_phantoms, write_phantom_folder

    folder = write_phantom_folder(tmp_path / "phantoms", n_patients=4, images_per_patient=3,
                                  image_size=32, seed=5)
    with open(folder / "labels.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images, labels, patients, _ = patient_phantoms(4, 3, 32, seed=5, opacity=0.3)
    assert [r["patient_id"] for r in rows] == [str(p) for p in patients]
    assert [r["finding_labels"] for r in rows] == [
        "Pneumonia" if y else "No Finding" for y in labels[:, 0]]
    for row, image in zip(rows, images):
        pixels = np.asarray(Image.open(folder / "images" / row["image"]))
        assert pixels.dtype == np.uint8 and pixels.shape == (32, 32)
        np.testing.assert_allclose(pixels / 255.0, np.clip(image[..., 0], 0, 1), atol=0.5 / 255)
    assert not [p for p in folder.rglob(".*")]  # no temporary file left
