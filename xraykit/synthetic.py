"""Procedural chest phantoms: lung fields, ribs, heart, spine and noise, with lobar opacities.

The label is learnable by construction: a positive image carries a bright, blurred opacity in
one lung zone, and the zone is returned as a mask, so explainability tests can check where a
model looked. Used by unit tests and as the course's offline fallback.

:func:`patient_phantoms` draws several images per patient that share the patient's anatomy, with
an optional label-correlated marker: the data of lesson 1's patient-level split and shortcut
experiments. :func:`write_phantom_folder` writes them as a folder of PNG files with an NIH-style
labels CSV: lesson 8's offline folder.
"""

from __future__ import annotations

import numpy as np

from xraykit.tasks import check_task

# Lung zones as (x, y) centres on a [-1, 1] grid; x grows to the image right (patient's left).
ZONES = {
    "right upper": (-0.42, -0.30),
    "right lower": (-0.42, 0.30),
    "left upper": (0.42, -0.30),
    "left lower": (0.42, 0.30),
}


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _chest(xs, ys, rib_phase, heart_radii, lung_texture=None):
    """Draws thorax, lungs, ribs, heart and spine on a (shifted, scaled) grid.

    Returns:
        ``(image, lungs)``: the float32 image and the boolean mask of the lung fields.
    """
    img = np.full(xs.shape, 0.08, np.float32)
    img[_ellipse(xs, ys, 0, 0.05, 0.95, 1.1)] = 0.45  # soft tissue of the thorax
    lungs = _ellipse(xs, ys, -0.42, -0.02, 0.3, 0.62) | _ellipse(xs, ys, 0.42, -0.02, 0.3, 0.62)
    img[lungs] = 0.16 if lung_texture is None else 0.16 + lung_texture[lungs]
    img[(np.sin(ys * 14 + 3 * xs**2 + rib_phase) > 0.75) & lungs] += 0.1  # ribs
    heart = _ellipse(xs, ys, 0.14, 0.32, *heart_radii)
    img[heart] = np.maximum(img[heart], 0.55)
    img[np.abs(xs) < 0.09] = 0.7  # spine and mediastinum
    return img, lungs


def phantoms(
    n: int,
    image_size: int = 28,
    seed: int = 0,
    task: str = "binary",
    positive_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws chest phantoms with their labels and opacity masks.

    Args:
        n: Number of images.
        image_size: Side of the square images, in pixels.
        seed: Random seed; the same seed gives the same images.
        task: ``"binary"`` (one opacity in a random zone for positives) or ``"multilabel"``
            (each of the four zones in :data:`ZONES` independently opaque).
        positive_fraction: Probability of a positive image (binary) or of each zone being
            opaque (multilabel).

    Returns:
        ``(images, labels, masks)``: images float32 ``(n, S, S, 1)`` in [0, 1]; labels int32
        ``(n, 1)`` for binary or ``(n, 4)`` for multilabel; masks bool ``(n, S, S)`` marking
        where the opacities are.

    Raises:
        ValueError: If ``task`` is unknown or ``n`` is not positive.
    """
    check_task(task, allowed=("binary", "multilabel"))
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}.")
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    zone_centres = np.array(list(ZONES.values()), dtype=np.float32)

    images = np.empty((n, image_size, image_size), np.float32)
    masks = np.zeros((n, image_size, image_size), bool)
    if task == "binary":
        labels = (rng.random((n, 1)) < positive_fraction).astype(np.int32)
        zones = np.where(labels[:, :1] == 1, rng.integers(0, 4, (n, 1)), -1)
        active = np.zeros((n, 4), bool)
        active[labels[:, 0] == 1, zones[labels[:, 0] == 1, 0]] = True
    else:
        active = rng.random((n, 4)) < positive_fraction
        labels = active.astype(np.int32)

    for i in range(n):
        dx, dy = rng.normal(0, 0.04, 2)
        scale = rng.uniform(0.92, 1.05)
        xs, ys = (x - dx) / scale, (y - dy) / scale
        img, lungs = _chest(xs, ys, rng.uniform(0, np.pi), (0.3, 0.26))
        for zone in np.flatnonzero(active[i]):
            cx, cy = zone_centres[zone] + rng.normal(0, 0.05, 2)
            radius = rng.uniform(0.15, 0.22)
            blob = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2)))
            img += rng.uniform(0.3, 0.45) * blob * lungs
            masks[i] |= (blob > 0.5) & lungs
        img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 0.03, img.shape)
        images[i] = np.clip(img, 0.0, 1.0)
    return images[..., None], labels, masks


def _smooth_field(rng, size: int, cells: int = 5) -> np.ndarray:
    """A smooth random field in [-1, 1]: a ``cells x cells`` grid of draws, bilinearly enlarged."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    pos = np.linspace(0, cells - 1, size, dtype=np.float32)
    i0 = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    t = pos - i0
    rows = grid[i0] * (1 - t)[:, None] + grid[i0 + 1] * t[:, None]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i0 + 1] * t[None, :]


def marker_region(image_size: int) -> tuple[slice, slice]:
    """Rows and columns of the box in which :func:`patient_phantoms` burns its marker.

    Args:
        image_size: Side of the square images, in pixels.

    Returns:
        ``(rows, cols)`` slices of the top-left box, so ``image[rows, cols]`` is the marker's box.
    """
    side = max(3, round(image_size * 0.18))
    start = max(1, round(image_size * 0.04))
    return slice(start, start + side), slice(start, start + side)


def _marker_block(image_size: int) -> tuple[slice, slice, np.ndarray]:
    """Rows, columns and an "L"-shaped stencil of the marker in the top-left corner."""
    rows, cols = marker_region(image_size)
    side = rows.stop - rows.start
    stencil = np.zeros((side, side), bool)
    stroke = max(1, side // 3)
    stencil[:, :stroke] = True  # the letter's stem
    stencil[-stroke:, :] = True  # and its foot
    return rows, cols, stencil


def _checked_patient_args(n_patients, images_per_patient, image_size, positive_fraction,
                          marker_rate):
    """Checks :func:`patient_phantoms`' arguments; returns ``marker_rate`` as floats (or None)."""
    if n_patients < 2 or images_per_patient < 1:
        raise ValueError(f"need n_patients >= 2 and images_per_patient >= 1, got {n_patients} "
                         f"and {images_per_patient}.")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 for the anatomy to fit, got {image_size}.")
    if not 0.0 < positive_fraction < 1.0:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}.")
    if marker_rate is None:
        return None
    marker_rate = tuple(float(p) for p in marker_rate)
    if len(marker_rate) != 2 or not all(0.0 <= p <= 1.0 for p in marker_rate):
        raise ValueError("marker_rate must be (p_negative, p_positive), two probabilities "
                         f"in [0, 1]; got {marker_rate}.")
    return marker_rate


def patient_phantoms(
    n_patients: int,
    images_per_patient: int = 6,
    image_size: int = 28,
    seed: int = 0,
    positive_fraction: float = 0.5,
    opacity: float = 0.2,
    anatomy: float = 1.0,
    marker_rate: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chest phantoms of several images per patient, for patient-level splits and shortcuts.

    Every patient gets their own anatomy, drawn once and shared by all their images: position
    and size of the thorax, heart size, rib phase, overall exposure and a smooth texture of the
    lung fields (scaled by ``anatomy``). Each image of the patient then varies a little (a shift
    of about a pixel, exposure, noise). The label belongs to the patient: a positive patient
    has a faint opacity in one lung zone, the same zone in all of their images. With a weak
    ``opacity`` and a strong ``anatomy``, a model can do better by recognising the *patient*
    than the disease, which is what an image-level split rewards.

    Optionally a spurious marker (a bright "L"-shaped block in the top-left corner, like a
    laterality letter or a department stamp) is burned in with a probability that depends on
    the label, so a model can learn the marker instead of the lungs (shortcut learning); it sits
    in :func:`marker_region`, where a real laterality letter or stamp would be.

    Args:
        n_patients: Number of patients (>= 2).
        images_per_patient: Images per patient (>= 1).
        image_size: Side of the square images, in pixels (>= 16).
        seed: Random seed; the same seed gives the same data.
        positive_fraction: Fraction of positive patients (rounded; at least one of each class).
        opacity: Peak brightness of a positive patient's opacity (0 = no disease signal).
        anatomy: Amplitude of the patient-specific lung texture, as a multiple of the default
            (0 = none, 1 = clearly visible).
        marker_rate: ``(p_negative, p_positive)``: probability that an image of a negative /
            positive patient carries the marker; ``None`` (default) draws no marker.
            ``(0.1, 0.9)`` makes the marker a strong shortcut, ``(0.5, 0.5)`` makes it useless.

    Returns:
        ``(images, labels, patient_ids, markers)``: images float32
        ``(n_patients * images_per_patient, S, S, 1)`` in [0, 1], grouped by patient; labels
        int32 ``(N, 1)``; patient ids int32 ``(N,)`` from 0 to ``n_patients - 1``; markers bool
        ``(N,)``, True where the image carries the marker.

    Raises:
        ValueError: On a bad count, size, fraction or marker rate.

    Example:
        ```python
        x, y, groups, marked = patient_phantoms(40, 6, marker_rate=(0.1, 0.9), seed=0)
        # split with sklearn.model_selection.GroupShuffleSplit(...).split(x, y, groups)
        ```
    """
    marker_rate = _checked_patient_args(n_patients, images_per_patient, image_size,
                                        positive_fraction, marker_rate)
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    n_pos = int(np.clip(round(n_patients * positive_fraction), 1, n_patients - 1))
    patient_labels = rng.permutation(np.r_[np.ones(n_pos), np.zeros(n_patients - n_pos)])
    zone_centres = np.array(list(ZONES.values()), dtype=np.float32)
    rows, cols, stencil = _marker_block(image_size)

    n = n_patients * images_per_patient
    images = np.empty((n, image_size, image_size), np.float32)
    labels = np.repeat(patient_labels.astype(np.int32), images_per_patient)[:, None]
    patient_ids = np.repeat(np.arange(n_patients, dtype=np.int32), images_per_patient)
    markers = np.zeros(n, bool)
    for p in range(n_patients):
        # The patient's own anatomy, shared by all of their images.
        pdx, pdy = rng.normal(0, 0.06, 2)
        pscale = rng.uniform(0.85, 1.08)
        heart_r = rng.uniform(0.22, 0.36)
        rib_phase = rng.uniform(0, 2 * np.pi)
        exposure = rng.uniform(0.8, 1.2)
        lung_texture = 0.24 * anatomy * _smooth_field(rng, image_size)
        zone = zone_centres[rng.integers(0, 4)]
        for k in range(images_per_patient):
            i = p * images_per_patient + k
            dx, dy = pdx + rng.normal(0, 0.04), pdy + rng.normal(0, 0.04)
            xs, ys = (x - dx) / pscale, (y - dy) / pscale
            img, lungs = _chest(xs, ys, rib_phase, (heart_r, heart_r * 0.85), lung_texture)
            if patient_labels[p]:
                cx, cy = zone + rng.normal(0, 0.04, 2)
                blob = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 0.2**2)))
                img += opacity * rng.uniform(0.8, 1.2) * blob * lungs
            img = img * exposure * rng.uniform(0.95, 1.05) + rng.normal(0, 0.03, img.shape)
            draw = rng.random()  # drawn always, so the marker changes nothing else
            if marker_rate is not None and draw < marker_rate[int(patient_labels[p])]:
                markers[i] = True
                img[rows, cols][stencil] = 0.95  # a view: writes into img
            images[i] = np.clip(img, 0.0, 1.0)
    return images[..., None], labels, patient_ids, markers


def write_phantom_folder(folder, n_patients: int = 16, images_per_patient: int = 4,
                         image_size: int = 128, seed: int = 0, finding: str = "Pneumonia"):
    """Writes patient phantoms as a folder of PNG files with an NIH-style ``labels.csv``.

    The offline stand-in for a folder of radiographs (lesson 8): ``images/phantom_NNNN.png``
    (8-bit grey) and ``labels.csv`` with the columns ``image`` (file name), ``finding_labels``
    (``finding`` for a positive patient's images, ``No Finding`` otherwise, as NIH writes them)
    and ``patient_id`` (several images per patient). Each file is written atomically.

    Args:
        folder: Where to write (created if needed).
        n_patients: Patients (>= 2).
        images_per_patient: Images per patient.
        image_size: Side of the images, in pixels.
        seed: Random seed of :func:`patient_phantoms`.
        finding: The finding a positive patient's images carry.

    Returns:
        The folder, as a ``pathlib.Path``.
    """
    import csv
    import io
    import pathlib

    from PIL import Image

    from xraykit.files import atomic_write

    folder = pathlib.Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, labels, patients, _ = patient_phantoms(n_patients, images_per_patient, image_size,
                                                   seed=seed, opacity=0.3)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["image", "finding_labels", "patient_id"])
    for i, image in enumerate(images):
        name = f"phantom_{i:04d}.png"
        pixels = np.round(np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8)
        with atomic_write(folder / "images" / name) as handle:
            Image.fromarray(pixels).save(handle, format="PNG")
        writer.writerow([name, finding if labels[i, 0] else "No Finding", int(patients[i])])
    with atomic_write(folder / "labels.csv", "w", encoding="utf-8") as handle:
        handle.write(table.getvalue())
    return folder
