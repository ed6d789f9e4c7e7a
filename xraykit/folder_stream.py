"""Streaming a folder of radiographs: a ``keras.utils.PyDataset`` that reads batches on demand.

Imported by :func:`xraykit.folders.load_folder` only when ``stream=True`` is asked for, so that
``import xraykit`` does not import Keras (and fix its backend) before a notebook has chosen one.
"""

from __future__ import annotations

import keras
import numpy as np

from xraykit.images import read_images


class FolderSequence(keras.utils.PyDataset):
    """Batches read on demand from a folder, with worker threads.

    Create it through ``load_folder(..., stream=True)`` and pass it to ``model.fit`` or
    ``model.predict``. An unreadable file makes its batch shorter; it is recorded in
    ``failed`` and reported in an :class:`xraykit.images.UnreadableFileWarning`.

    Args:
        items: ``(path, labels)`` pairs, in order.
        class_names: Names of the classes.
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        image_size: Side of the square images.
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`xraykit.pixels.resize_square`).
        batch_size: Images per batch.
        workers: Threads reading batches.
        label_dtype: NumPy type of the labels (float32 when some are unknown, NaN).
    """

    def __init__(self, items, class_names, task, image_size, resize_mode, batch_size, workers,
                 label_dtype=np.int32):
        super().__init__(workers=max(1, workers), use_multiprocessing=False)
        self.items = list(items)
        self.class_names = class_names
        self.task = task
        self.image_size = image_size
        self.resize_mode = resize_mode
        self.batch_size = batch_size
        self.failed: dict[str, str] = {}
        self.label_dtype = label_dtype

    def __len__(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def __getitem__(self, index: int):
        chunk = self.items[index * self.batch_size:(index + 1) * self.batch_size]
        images, _, failed = read_images([p for p, _ in chunk], self.image_size,
                                        self.resize_mode, workers=1)
        self.failed.update(failed)
        labels = [label for path, label in chunk if str(path) not in failed]
        x = images[..., None]
        y = np.asarray(labels, dtype=self.label_dtype)
        return x, (y.reshape(-1) if self.task == "multiclass" else y)
