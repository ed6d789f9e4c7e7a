"""Procedural chest phantoms: lung fields, ribs, heart, spine and noise, with lobar opacities.

The label is learnable by construction: a positive image carries a bright, blurred opacity in
one lung zone, and the zone is returned as a mask, so explainability tests can check where a
model looked. Used by unit tests and as the course's offline fallback.
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
        img = np.full_like(x, 0.08)
        img[_ellipse(xs, ys, 0, 0.05, 0.95, 1.1)] = 0.45  # soft tissue of the thorax
        lungs = _ellipse(xs, ys, -0.42, -0.02, 0.3, 0.62) | _ellipse(xs, ys, 0.42, -0.02, 0.3, 0.62)
        img[lungs] = 0.16
        ribs = (np.sin(ys * 14 + 3 * xs**2 + rng.uniform(0, np.pi)) > 0.75) & lungs
        img[ribs] += 0.1
        heart = _ellipse(xs, ys, 0.14, 0.32, 0.3, 0.26)
        img[heart] = np.maximum(img[heart], 0.55)
        img[np.abs(xs) < 0.09] = 0.7  # spine and mediastinum
        for zone in np.flatnonzero(active[i]):
            cx, cy = zone_centres[zone] + rng.normal(0, 0.05, 2)
            radius = rng.uniform(0.15, 0.22)
            blob = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2)))
            img += rng.uniform(0.3, 0.45) * blob * lungs
            masks[i] |= (blob > 0.5) & lungs
        img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 0.03, img.shape)
        images[i] = np.clip(img, 0.0, 1.0)
    return images[..., None], labels, masks
