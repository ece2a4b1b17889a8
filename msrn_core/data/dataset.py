"""The dataset interface every dataset of the tutorial follows, and image loading.

A multi-label dataset here is a list of image files with a label matrix:

- ``class_names``: the n label names, in a fixed order;
- ``labels``: an ``N x n`` uint8 matrix (1 = present, 0 = absent), used to build the graph;
- ``difficult``: optional ``N x n`` bool matrix (VOC convention: ignored for AP);
- ``dataset[i]`` returns ``(image_tensor, target, i)`` with a float multi-hot target.

An image that cannot be read is not fatal: ``__getitem__`` returns ``None`` and
:func:`collate_skip_unreadable` drops it from the batch and counts it, so a long run goes on
and reports how many images it skipped.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or empty; the message says how to get the data."""


class UnreadableImageWarning(UserWarning):
    """An image file could not be decoded and was skipped."""


def build_transform(image_size: int, train: bool) -> Callable:
    """The paper's augmentation: multi-scale crop + flip for training, plain resize for test.

    Multi-scale crop: a square crop whose side is 1.0 to 0.6 of the image's short side
    (the authors' code, as ML-GCN's; the paper gives only the 448 px size), resized to ``image_size``.
    """
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if train:
        return T.Compose([
            T.RandomResizedCrop(image_size, scale=(0.36, 1.0), ratio=(1.0, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            normalize,
        ])
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
        path = self.image_paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
            warnings.warn(
                f"{self.name}: skipping unreadable image {path} ({type(error).__name__}: {error}). "
                "Re-download or regenerate it to include it again.",
                UnreadableImageWarning,
                stacklevel=2,
            )
            return None

    def __getitem__(self, index: int):
        image = self.load_image(index)
        if image is None:
            return None
        tensor = self.transform(image) if self.transform is not None else T.functional.to_tensor(image)
        target = torch.from_numpy(self.labels[index].astype(np.float32))
        return tensor, target, index


@dataclass
class Batch:
    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    skipped: int  # unreadable images dropped from this batch

    def pin_memory(self) -> "Batch":
        """Called by ``DataLoader(pin_memory=True)`` so host-to-GPU copies can overlap compute."""
        return Batch(self.images.pin_memory(), self.targets.pin_memory(), self.indices, self.skipped)


def collate_skip_unreadable(items) -> Batch:
    """Collate ``(image, target, index)`` items, dropping unreadable ones (``None``) and counting them."""
    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    if not kept:
        return Batch(torch.empty(0), torch.empty(0), torch.empty(0, dtype=torch.long), skipped)
    images, targets, indices = zip(*kept)
    return Batch(torch.stack(images), torch.stack(targets), torch.tensor(indices), skipped)


def check_label_matrix(labels: np.ndarray, class_names: Sequence[str], split: str = "train") -> list[str]:
    """Names of classes with no positive example in ``labels`` (a warning-worthy condition)."""
    positives = np.asarray(labels).sum(axis=0)
    return [name for name, count in zip(class_names, positives) if count == 0]
