"""The dataset interface every dataset of the tutorial follows, and image loading.

A multi-label dataset here is a list of image files with a label matrix:

- ``class_names``: the n label names, in a fixed order;
- ``labels``: an ``N x n`` uint8 matrix (1 = present, 0 = absent), used to build the graph;
- ``difficult``: optional ``N x n`` bool matrix (VOC convention: ignored for AP);
- ``dataset[i]`` returns ``(image_tensor, target, i)`` with a float multi-hot target.

An image that cannot be read is not fatal: whatever Pillow raises on it (a corrupt or
truncated file, an unknown format, a header claiming more pixels than Pillow's
decompression-bomb limit) makes ``__getitem__`` return an :class:`UnreadableImage` record, and
:func:`collate_skip_unreadable` drops it from the batch and counts it, so a long run goes on and
reports how many images it skipped. The training loop warns once per file, from the main
process (:func:`report_unreadable`), above its progress bar.

Training augmentation is drawn per image (:class:`SeededAugmentation`): from a generator seeded
by (run seed, epoch, image index), so it does not depend on which process or loader worker
reads the image.
"""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T
from tqdm.auto import tqdm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or empty; the message says how to get the data."""


class UnreadableImageWarning(UserWarning):
    """An image file could not be decoded and was skipped."""


@dataclass(frozen=True)
class UnreadableImage:
    """What ``dataset[i]`` returns for an image that cannot be read: which one, and why."""

    index: int
    path: Path
    reason: str
    source: str = "dataset"  # the dataset's name

    def message(self) -> str:
        return (f"{self.source}: skipping unreadable image {self.path} ({self.reason}). "
                "Re-download or regenerate it to include it again.")


def open_rgb(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB; raises whatever Pillow raises on a bad file."""
    with Image.open(path) as image:
        return image.convert("RGB")


def unreadable_reason(error: Exception) -> str:
    """Why an image could not be read, in words; a decompression bomb names Pillow's limit."""
    if isinstance(error, Image.DecompressionBombError):
        return (f"DecompressionBombError: {error} Pillow refuses images above twice "
                f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS} pixels; raise that limit if the "
                "image is genuine")
    return f"{type(error).__name__}: {error}"


AUGMENTATIONS = ("default", "authors")  # build_transform(augmentation=...)
AUTHORS_CROP_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)


class MultiScaleCrop:
    """The authors' training crop (their util.py, ``MultiScaleCrop``, as their engine.py calls it:
    ``scales=(1.0, 0.9, 0.8, 0.7, 0.6), max_distort=2``), resized to ``size`` x ``size``.

    The crop's width and height are each a fraction of the image's *short* side taken from
    ``scales`` (a side within 2 px of ``size`` becomes ``size``), at most ``max_distort`` steps
    apart in the list, so the crop's aspect ratio lies between 3/4 and 4/3; it sits at one of 13
    fixed offsets: the corners, the centre, the edges' midpoints and the four quarter points of a
    grid with steps of a quarter of the free space. Width-height pair and offset are drawn uniformly,
    from torch's generator (so :class:`SeededAugmentation` fixes them).
    """

    def __init__(self, size: int, scales: Sequence[float] = AUTHORS_CROP_SCALES, max_distort: int = 2):
        self.size, self.scales, self.max_distort = size, tuple(scales), max_distort

    def crop_sizes(self, width: int, height: int) -> list[tuple[int, int]]:
        """Every allowed (crop width, crop height) for a ``width`` x ``height`` image."""
        sides = [int(min(width, height) * scale) for scale in self.scales]
        sides = [self.size if abs(side - self.size) < 3 else side for side in sides]
        return [(sides[j], sides[i]) for i in range(len(sides)) for j in range(len(sides))
                if abs(i - j) <= self.max_distort]

    @staticmethod
    def offsets(width: int, height: int, crop_width: int, crop_height: int) -> list[tuple[int, int]]:
        """The 13 allowed (left, top) corners of the crop."""
        step_x, step_y = (width - crop_width) // 4, (height - crop_height) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0),
                (1, 1), (3, 1), (1, 3), (3, 3)]
        return [(i * step_x, j * step_y) for i, j in grid]

    def sample_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """A random crop (left, top, crop width, crop height) for a ``width`` x ``height`` image."""
        sizes = self.crop_sizes(width, height)
        crop_width, crop_height = sizes[int(torch.randint(len(sizes), ()))]
        places = self.offsets(width, height, crop_width, crop_height)
        left, top = places[int(torch.randint(len(places), ()))]
        return left, top, crop_width, crop_height

    def __call__(self, image: Image.Image) -> Image.Image:
        left, top, crop_width, crop_height = self.sample_box(*image.size)
        crop = image.crop((left, top, left + crop_width, top + crop_height))
        return crop.resize((self.size, self.size), Image.BILINEAR)


def build_transform(image_size: int, train: bool, augmentation: str = "default") -> Callable:
    """The training augmentation (crop + flip) or the test transform (a plain resize).

    ``"default"``: torchvision's ``RandomResizedCrop``, a square crop of 36 % to 100 % of the image's
    area (on the built-in square images a side of 0.6 to 1.0), anywhere in the image, resized to
    ``image_size``; this repository's choice, not the authors'. ``"authors"``: their
    :class:`MultiScaleCrop` (aspect 3/4 to 4/3, 13 fixed offsets). Both flip horizontally at
    random. At test both resize the whole image to ``image_size`` x ``image_size`` (the authors'
    ``Warp``, a bilinear resize without a crop). The paper gives only the 448 px size.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augmentation!r}; choose one of {AUGMENTATIONS}")
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if train:
        crop = (MultiScaleCrop(image_size) if augmentation == "authors" else
                T.RandomResizedCrop(image_size, scale=(0.36, 1.0), ratio=(1.0, 1.0), antialias=True))
        return T.Compose([crop, T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    return T.Compose([T.Resize((image_size, image_size), antialias=True), T.ToTensor(), normalize])


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation, for display: returns values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(-1, 1, 1)
    return (images * std + mean).clamp(0, 1)


class ImageListDataset(Dataset):
    """Images on disk plus a label matrix: the interface shared by all datasets."""

    def __init__(
        self,
        image_paths: Sequence[str | Path],
        labels: np.ndarray,
        class_names: Sequence[str],
        transform: Callable | None = None,
        difficult: np.ndarray | None = None,
        name: str = "dataset",
    ):
        labels = np.asarray(labels, dtype=np.uint8)
        if labels.ndim != 2 or labels.shape != (len(image_paths), len(class_names)):
            raise ValueError(
                f"{name}: label matrix has shape {labels.shape}, expected "
                f"({len(image_paths)} images, {len(class_names)} classes)"
            )
        if difficult is not None and np.asarray(difficult).shape != labels.shape:
            raise ValueError(f"{name}: the difficult mask must have the label matrix's shape {labels.shape}")
        self.image_paths = [Path(p) for p in image_paths]
        self.labels = labels
        self.class_names = list(class_names)
        self.transform = transform
        self.difficult = None if difficult is None else np.asarray(difficult, dtype=bool)
        self.name = name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_image(self, index: int) -> Image.Image | None:
        """The RGB image at ``index``, or ``None`` (with a warning) if it cannot be read."""
        image = self.read_image(index)
        if isinstance(image, UnreadableImage):
            warnings.warn(image.message(), UnreadableImageWarning, stacklevel=2)
            return None
        return image

    def read_image(self, index: int) -> Image.Image | UnreadableImage:
        """The RGB image at ``index``, or an :class:`UnreadableImage` record saying why not."""
        path = self.image_paths[index]
        try:
            return open_rgb(path)
        except Exception as error:  # Pillow's failures come in many types: any of them skips the image
            return UnreadableImage(index, path, unreadable_reason(error), self.name)

    def __getitem__(self, index: int):
        image = self.read_image(index)
        if isinstance(image, UnreadableImage):
            return image
        tensor = self.transform(image) if self.transform is not None else T.functional.to_tensor(image)
        target = torch.from_numpy(self.labels[index].astype(np.float32))
        return tensor, target, index


_MASK64 = 2**64 - 1


def _splitmix64(value: int) -> int:
    """One step of the SplitMix64 mixer: nearby inputs give unrelated 64-bit outputs."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one image's augmentation in one epoch (a hash of the three numbers)."""
    return _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ (epoch & _MASK64)) ^ (index & _MASK64))


class SeededAugmentation(Dataset):
    """``dataset`` whose item ``i`` draws its random augmentation from a generator seeded by
    ``(seed, epoch, i)``: the same crop and flip whichever process or loader worker reads it.

    So a multi-process run (each process loading its share of a global batch) feeds the model
    exactly the images a single-process run does. Call :meth:`set_epoch` before each epoch's
    iteration. The global random state is left as it was.
    """

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        # the CPU generator alone (torch.manual_seed would seed every device each call)
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(augmentation_seed(self.seed, self.epoch, index))
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)

    def __getattr__(self, name: str):  # class_names, labels ... of the wrapped dataset
        if name == "dataset":  # not set yet (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)


@dataclass
class Batch:
    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    skipped: int  # unreadable images dropped from this batch
    unreadable: tuple = ()  # their UnreadableImage records

    def pin_memory(self) -> "Batch":
        """Called by ``DataLoader(pin_memory=True)`` so host-to-GPU copies can overlap compute."""
        return Batch(self.images.pin_memory(), self.targets.pin_memory(), self.indices, self.skipped,
                     self.unreadable)


def collate_skip_unreadable(items) -> Batch:
    """Collate ``(image, target, index)`` items, dropping unreadable ones (``None`` or an
    :class:`UnreadableImage`) and counting them."""
    kept = [item for item in items if item is not None and not isinstance(item, UnreadableImage)]
    unreadable = tuple(item for item in items if isinstance(item, UnreadableImage))
    skipped = len(items) - len(kept)
    if not kept:
        return Batch(torch.empty(0), torch.empty(0), torch.empty(0, dtype=torch.long), skipped, unreadable)
    images, targets, indices = zip(*kept)
    return Batch(torch.stack(images), torch.stack(targets), torch.tensor(indices), skipped, unreadable)


def report_unreadable(batch: Batch, reported: set) -> None:
    """Warn about each unreadable image of ``batch`` not yet in ``reported`` (once per file)."""
    for record in batch.unreadable:
        if record.path not in reported:
            reported.add(record.path)
            warnings.warn(record.message(), UnreadableImageWarning, stacklevel=2)


@contextmanager
def warnings_above_progress_bars():
    """Print warnings with ``tqdm.write`` for the block, so they land above a progress bar
    instead of inside it."""
    shown = warnings.showwarning
    # warnings.catch_warnings(record=True) (pytest, notebooks) collects warnings through the
    # default showwarning: leave those alone, and any showwarning someone else installed
    recording = getattr(getattr(warnings, "_showwarnmsg_impl", None), "__name__", "") != "_showwarnmsg_impl"
    if recording or shown is not getattr(warnings, "_showwarning_orig", shown):
        yield
        return

    def show(message, category, filename, lineno, file=None, line=None):
        tqdm.write(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"),
                   file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = shown


def check_label_matrix(labels: np.ndarray, class_names: Sequence[str], split: str = "train") -> list[str]:
    """Names of classes with no positive example in ``labels`` (a warning-worthy condition)."""
    positives = np.asarray(labels).sum(axis=0)
    return [name for name, count in zip(class_names, positives) if count == 0]
