"""Does the attention look at the object? The pointing game (Zhang et al., ECCV 2016).

For an image, a label that is really present and its attention map (h x w), the map *points*
at its arg-max cell; the trial is a **hit** when the centre of that cell, in image pixels,
falls inside one of the label's boxes. The hit rate over all (image, true label) pairs is
the pointing-game score. A map that ignores the image still hits by chance, as often as a
uniformly random point would: the fraction of the image the label's boxes cover. That chance
level is reported beside the score, and so is the hit rate of always pointing at the image
centre (objects are rarely at the border, so the centre is a stronger baseline than chance; a
map with a single cell points nowhere else).

Conventions
-----------
- Boxes are ``(x0, y0, x1, y1)`` in pixels of the image as stored, **end exclusive** (the scene
  dataset's convention: a box covers the pixels ``x0 <= x < x1``, ``y0 <= y < y1``). A point
  ``(x, y)`` is inside when ``x0 <= x < x1`` and ``y0 <= y < y1``.
- Cell ``(i, j)`` of an ``h x w`` map covers ``[j W / w, (j + 1) W / w) x [i H / h, (i + 1) H / h)``
  of a ``W x H`` image (the map spans the whole image, as the backbone's feature maps do);
  its centre is ``((j + 0.5) W / w, (i + 0.5) H / h)``.
- Ties: the first maximal cell in row-major order (``numpy.argmax``).
- ``resolution="image"`` upsamples the map bilinearly to the image first (as the figures draw it)
  and points at the middle of its maximal pixels. Bilinear interpolation never peaks between
  cells, so this moves the point by less than a cell; it is reported to show that the score is
  not an artefact of the cell centres.
- A map on an h x w grid can only point at its h x w cell centres: a trial whose boxes hold none
  of them cannot be hit. The share of trials that can is the grid's **ceiling**, reported beside
  the score (deep branches of small images have coarse grids: 2 x 2 at 128 px at output stride 32).

- :func:`pointing_game`        one trial: one map, the boxes of its label (at cell or image resolution)
- :func:`box_area_fraction`    the chance level of one trial (area of the union of the boxes / image area)
- :func:`grid_reachable`       can a map on an h x w grid hit this trial at all (its ceiling)?
- :func:`upsample_map`         a map bilinearly upsampled to the image (``resolution="image"``)
- :func:`pointing_game_score`  hit rate per branch (and per class) of MSRN's label attention, or of a
  baseline's class activation map (``source="cam"``), at cell or image resolution
- :func:`pointing_game_scores` the same at several resolutions from one pass over the images
- :func:`attention_statistics` how focused each branch's attention is, and how much of it is in the boxes

Why the maps point where they do:

- :func:`label_map_correlation`  do different labels' maps of one image differ?
- :func:`normalised_entropy`, :func:`peak_ratio`  how focused is a map?
- :func:`map_statistics`         both, and the label-map correlation, per branch over a dataset
- :func:`embedding_cosine`       do the label embeddings that steer the attention differ?
- :func:`head_label_mixing`      does label c's logit read label c's own row of M?
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from .data.dataset import collate_skip_unreadable

Box = Sequence[float]  # (x0, y0, x1, y1), image pixels, end exclusive


def _size(image_size) -> tuple[float, float]:
    """``image_size`` as ``(width, height)``: an int (square image) or a ``(width, height)`` pair."""
    if isinstance(image_size, (int, float, np.integer, np.floating)):
        return float(image_size), float(image_size)
    width, height = image_size
    return float(width), float(height)


def _pixel_grid(image_size) -> tuple[int, int]:
    """``(height, width)`` of the image in whole pixels."""
    width, height = _size(image_size)
    return int(round(height)), int(round(width))


POINTING_SOURCES = {"attention": "label_attention", "cam": "class_activation_map"}
POINTING_RESOLUTIONS = ("cell", "image")


def upsample_map(attention_map, image_size) -> torch.Tensor:
    """An h x w map bilinearly upsampled to the image's ``height x width`` (``align_corners=False``,
    the convention of the attention figures): one value per pixel, whose centre is ``(x + 0.5, y + 0.5)``."""
    values = torch.as_tensor(attention_map).detach().float().cpu()
    if values.ndim != 2 or values.numel() == 0:
        raise ValueError(f"the attention map must be a non-empty h x w array, got shape {tuple(values.shape)}")
    return F.interpolate(values[None, None], size=_pixel_grid(image_size), mode="bilinear", align_corners=False)[0, 0]


def peak_point(attention_map, image_size) -> tuple[float, float]:
    """``(x, y)`` in image pixels: the centre of the map's arg-max cell (first one on ties)."""
    values = attention_map.detach().float().cpu().numpy() if isinstance(attention_map, torch.Tensor) \
        else np.asarray(attention_map, dtype=float)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"the attention map must be a non-empty h x w array, got shape {values.shape}")
    h, w = values.shape
    i, j = np.unravel_index(int(np.argmax(values)), (h, w))
    width, height = _size(image_size)
    return (j + 0.5) * width / w, (i + 0.5) * height / h


def image_peak_point(attention_map, image_size) -> tuple[float, float]:
    """``(x, y)`` in image pixels: where the map, bilinearly upsampled to the image, is largest.

    A bilinear map takes its maximum on a plateau around the best cell (a single pixel beside an
    interior cell's centre; at the border, the block that ``align_corners=False`` clamps to the
    cell's value), so the point is the mean of the maximal pixels' centres: a perfectly flat map
    points at the image centre, a corner cell at the middle of its clamped block.
    """
    upsampled = upsample_map(attention_map, image_size).numpy()
    rows, cols = np.nonzero(upsampled >= upsampled.max())
    return float(cols.mean() + 0.5), float(rows.mean() + 0.5)


def pointing_game(attention_map, boxes: Sequence[Box], image_size, resolution: str = "cell") -> bool:
    """True when the map's peak lies inside one of ``boxes``.

    ``attention_map``: h x w tensor or array; ``boxes``: the label's boxes ``(x0, y0, x1, y1)``
    in image pixels, end exclusive; ``image_size``: the side of a square image or
    ``(width, height)``. ``resolution="cell"``: the peak is the centre of the arg-max cell
    (:func:`peak_point`); ``"image"``: the peak of the map upsampled to the image
    (:func:`image_peak_point`). No box: always a miss.
    """
    if resolution not in POINTING_RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r} for the pointing game; choose one of {POINTING_RESOLUTIONS}")
    x, y = peak_point(attention_map, image_size) if resolution == "cell" else image_peak_point(attention_map, image_size)
    return any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in boxes)


def box_area_fraction(boxes: Sequence[Box], image_size) -> float:
    """Fraction of the image covered by the union of ``boxes`` (clipped to the image).

    This is the probability that a point drawn uniformly over the image lands in a box: the
    pointing game's chance level. Overlapping boxes are counted once (exact union area, by
    cutting the image along every box edge).
    """
    width, height = _size(image_size)
    clipped = [(max(0.0, x0), max(0.0, y0), min(width, x1), min(height, y1)) for x0, y0, x1, y1 in boxes]
    clipped = [b for b in clipped if b[2] > b[0] and b[3] > b[1]]
    if not clipped:
        return 0.0
    xs = sorted({v for b in clipped for v in (b[0], b[2])})
    ys = sorted({v for b in clipped for v in (b[1], b[3])})
    area = 0.0
    for xa, xb in zip(xs[:-1], xs[1:]):
        for ya, yb in zip(ys[:-1], ys[1:]):
            if any(b[0] <= xa and xb <= b[2] and b[1] <= ya and yb <= b[3] for b in clipped):
                area += (xb - xa) * (yb - ya)
    return area / (width * height)


def _dataset_image_size(dataset, index: int):
    """The pixel frame of the boxes: the scene config's image size, else the stored image's size."""
    config = getattr(dataset, "config", None)
    if getattr(config, "image_size", None) is not None:
        return config.image_size
    image = dataset.load_image(index)
    if image is None:
        raise ValueError(f"image {index} cannot be read, so its size (the frame of its boxes) is unknown")
    return image.size  # (width, height)


def grid_reachable(grid_shape, boxes: Sequence[Box], image_size) -> bool:
    """True when some cell centre of an ``h x w`` grid over the image lies inside one of ``boxes``.

    A map on that grid can only point at its cell centres, so a trial where none of them falls
    in a box is lost whatever the map holds; the share of reachable trials is the grid's ceiling.
    """
    h, w = grid_shape
    width, height = _size(image_size)
    xs = (np.arange(w) + 0.5) * width / w
    ys = (np.arange(h) + 0.5) * height / h
    return any(((x0 <= xs) & (xs < x1)).any() and ((y0 <= ys) & (ys < y1)).any() for x0, y0, x1, y1 in boxes)


def _maps_of(details: dict, source: str) -> tuple[list[torch.Tensor], list[str]]:
    """The maps the pointing game scores (one B x n x h x w tensor per entry) and their names."""
    key = POINTING_SOURCES[source]
    maps = details.get(key) if details else None
    if maps is None:
        if source == "attention":
            raise ValueError("this model returns no label attention maps (details['label_attention']): the pointing "
                             "game needs an MSRN with label embeddings (embeddings 'full' or 'label'), or "
                             "source='cam' for a plain ResNet or ML-GCN")
        raise ValueError("this model returns no class activation maps (details['class_activation_map']): use "
                         "source='cam' with the plain ResNet or ML-GCN, source='attention' with MSRN")
    if source == "cam":
        return [maps], ["cam"]
    stages = details.get("branch_stages") or [None] * len(maps)
    return list(maps), [f"layer{s}" if s is not None else f"branch {k}" for k, s in enumerate(stages)]


@torch.no_grad()
def pointing_game_score(model, dataset, branch: int | None = None, max_images: int | None = None,
                        device: str | torch.device = "cpu", batch_size: int = 32,
                        image_size=None, source: str = "attention", resolution: str = "cell") -> dict:
    """Pointing-game hit rates of ``model``'s maps on ``dataset`` (usually the test split).

    Each (image, true label) pair whose label has at least one box is one trial.

    - ``source="attention"``: MSRN's label attention, ``model(images, details=True).details
      ["label_attention"][k][b, c]``, one entry per branch (``"layer2"``, ...); ``branch`` (an
      index into the model's branches) scores one branch only, ``None`` all of them.
    - ``source="cam"``: the class activation map of a plain ResNet or ML-GCN,
      ``details["class_activation_map"][b, c]``, scored under the name ``"cam"``.
    - ``resolution="cell"``: the map points at the centre of its arg-max cell (:func:`pointing_game`);
      ``"image"``: the map is first upsampled bilinearly to the image size (:func:`upsample_map`) and
      points at the middle of its maximal pixels (:func:`image_peak_point`).

    ``max_images`` takes the first images of ``dataset``. ``image_size`` (the frame of the boxes)
    defaults to the scene config's image size.

    Returns a dict:

    - ``branches``: map names (``"layer2"``, ... or ``"cam"``), ``hit_rate``: name -> hit rate,
    - ``per_class``: name -> {class name -> hit rate} (classes with a trial only),
    - ``ceiling``: name -> the share of trials a map on that grid *could* hit (some cell centre,
      or pixel centre at ``resolution="image"``, inside a box; :func:`grid_reachable`),
    - ``grid``: name -> ``(h, w)`` of the map as scored,
    - ``random_baseline``: the chance level, the mean over trials of the boxes' area fraction
      (the expected hit rate of a uniformly random point), ``random_baseline_per_class``,
    - ``center_baseline``: the hit rate of always pointing at the image centre,
      ``center_baseline_per_class``,
    - ``trials_per_class``, ``num_trials``, ``num_images``, ``labels_without_box`` (true labels
      with no box, not scored), ``source``, ``resolution``.
    """
    return pointing_game_scores(model, dataset, branch, max_images, device, batch_size, image_size, source,
                                (resolution,))[resolution]


@torch.no_grad()
def pointing_game_scores(model, dataset, branch: int | None = None, max_images: int | None = None,
                         device: str | torch.device = "cpu", batch_size: int = 32, image_size=None,
                         source: str = "attention", resolutions: Sequence[str] = POINTING_RESOLUTIONS,
                         map_temperature: float | None = None) -> dict:
    """:func:`pointing_game_score` at several ``resolutions`` from ONE pass of the model over the
    images: resolution -> the dict :func:`pointing_game_score` returns at that resolution (the same
    numbers, with one forward pass where separate calls would make one per resolution).

    With ``map_temperature`` (the ``temperature`` of :func:`map_statistics`), each dict also holds
    ``"maps"``: what :func:`map_statistics` returns for the same images, from the same pass."""
    resolutions = tuple(dict.fromkeys(resolutions))
    if not resolutions:
        raise ValueError(f"pointing_game_scores needs at least one resolution of {POINTING_RESOLUTIONS}")
    for resolution in resolutions:
        _check_pointing_options(source, resolution, dataset)
    labels = np.asarray(dataset.labels)
    indices = list(range(len(dataset) if max_images is None else min(max_images, len(dataset))))
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                        collate_fn=collate_skip_unreadable)
    device = torch.device(device)
    model = model.to(device).eval()
    tallies = {resolution: _PointingTally(resolution) for resolution in resolutions}
    statistics = None if map_temperature is None else _MapStatistics(source, map_temperature)
    for batch in loader:
        if batch.images.numel() == 0:
            continue
        maps, all_names = _maps_of(model(batch.images.to(device), details=True).details, source)
        if statistics is not None:
            statistics.add(maps, all_names, labels[batch.indices.numpy()].astype(bool))
        chosen = range(len(maps)) if branch is None else [branch]
        for tally in tallies.values():
            tally.name_maps(all_names, chosen)
        for b, index in enumerate(batch.indices.tolist()):
            size = image_size if image_size is not None else _dataset_image_size(dataset, index)
            for tally in tallies.values():
                tally.add_image([(all_names[k], maps[k][b]) for k in chosen], dataset.boxes[index],
                                np.flatnonzero(labels[index]), size)
    extra = {} if statistics is None else {"maps": statistics.result()}
    return {resolution: {**tally.summary(list(dataset.class_names), source), **extra}
            for resolution, tally in tallies.items()}

def _check_pointing_options(source: str, resolution: str, dataset) -> None:
    """One clear error for an unknown map source or resolution, or a dataset without boxes."""
    if source not in POINTING_SOURCES:
        raise ValueError(f"unknown source {source!r} for the pointing game; choose one of {tuple(POINTING_SOURCES)}")
    if resolution not in POINTING_RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r} for the pointing game; choose one of {POINTING_RESOLUTIONS}")
    if getattr(dataset, "boxes", None) is None:
        raise ValueError("the pointing game needs a dataset with boxes (dataset.boxes), such as the scene dataset")


def _rate(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


class _PointingTally:
    """What :func:`pointing_game_score` counts while it walks the images, and its summary."""

    def __init__(self, resolution: str):
        self.resolution = resolution
        self.names: list[str] | None = None  # the maps scored, in order
        self.hits: dict[str, dict[int, list[bool]]] = {}  # map name -> class -> hit per trial
        self.reachable: dict[str, list[bool]] = {}  # map name -> could the map's grid hit, per trial
        self.grids: dict[str, tuple[int, int]] = {}  # map name -> (h, w) as scored
        self.chance: dict[int, list[float]] = {}  # class -> the boxes' area fraction, per trial
        self.centre: dict[int, list[bool]] = {}  # class -> does the image centre hit, per trial
        self.num_images, self.without_box = 0, 0

    def name_maps(self, all_names: list[str], chosen) -> None:
        """Fix the scored maps' names at the first batch."""
        if self.names is None:
            self.names = [all_names[k] for k in chosen]
            self.hits = {name: {} for name in self.names}
            self.reachable = {name: [] for name in self.names}

    def add_image(self, maps: list[tuple[str, torch.Tensor]], image_boxes, true_labels, size) -> None:
        """One image's trials: each true label with a box, scored on each ``(name, n x h x w map)``."""
        self.num_images += 1
        for c in true_labels:
            boxes = [tuple(box[1:]) for box in image_boxes if int(box[0]) == c]
            if not boxes:
                self.without_box += 1
                continue
            self.chance.setdefault(int(c), []).append(box_area_fraction(boxes, size))
            self.centre.setdefault(int(c), []).append(pointing_game(np.ones((1, 1)), boxes, size))
            for name, label_maps in maps:
                a = label_maps[c].float().cpu()
                scored_grid = tuple(a.shape) if self.resolution == "cell" else _pixel_grid(size)
                self.grids[name] = scored_grid
                self.hits[name].setdefault(int(c), []).append(pointing_game(a, boxes, size, self.resolution))
                self.reachable[name].append(grid_reachable(scored_grid, boxes, size))

    def summary(self, class_names: list[str], source: str) -> dict:
        """The dict :func:`pointing_game_score` returns."""
        names = self.names or []
        all_chance = [v for values in self.chance.values() for v in values]
        return {
            "branches": names,
            "hit_rate": {name: _rate([h for v in self.hits[name].values() for h in v]) for name in names},
            "per_class": {name: {class_names[c]: _rate(v) for c, v in sorted(self.hits[name].items())}
                          for name in names},
            "ceiling": {name: _rate(self.reachable[name]) for name in names},
            "grid": {name: self.grids.get(name) for name in names},
            "random_baseline": _rate(all_chance),
            "random_baseline_per_class": {class_names[c]: _rate(v) for c, v in sorted(self.chance.items())},
            "center_baseline": _rate([h for v in self.centre.values() for h in v]),
            "center_baseline_per_class": {class_names[c]: _rate(v) for c, v in sorted(self.centre.items())},
            "trials_per_class": {class_names[c]: len(v) for c, v in sorted(self.chance.items())},
            "num_trials": len(all_chance),
            "num_images": self.num_images,
            "labels_without_box": self.without_box,
            "source": source,
            "resolution": self.resolution,
        }


def box_mask(boxes: Sequence[Box], size: int) -> np.ndarray:
    """Boolean size x size mask of the union of boxes (x0, y0, x1, y1), end exclusive."""
    mask = np.zeros((size, size), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


@torch.no_grad()
def attention_statistics(model, dataset, num_images: int, batch_size: int = 32) -> tuple[pd.DataFrame, int]:
    """How focused each branch's label attention is, over the first ``num_images`` of ``dataset``.

    Every (image, true label) pair whose label has a box is one trial; per branch, the mean over
    the trials of:

    - ``entropy``: the map's entropy over log(HW) (1 = flat, 0 = all on one cell),
    - ``peak ratio``: HW x the map's maximum (1 = flat, HW = all on one cell),
    - ``mass in boxes``: the attention inside the label's boxes (each cell weighted by the share of
      it the boxes cover), against ``box area share (= chance)``, what a flat map puts there,
    - ``pointing hit`` and ``centre baseline``: the pointing game and its always-the-centre baseline,
    - ``lift``: mass in boxes / box area share.

    Returns the table (one row per branch, ``layer<s> (<h>x<w>)``) and the number of trials.
    """
    stages = None
    records = []
    for start in range(0, num_images, batch_size):
        batch_indices = list(range(start, min(start + batch_size, num_images)))
        batch = torch.stack([dataset[i][0] for i in batch_indices])
        size = batch.shape[-1]
        details = model(batch, details=True).details
        stages, maps_per_branch = details["branch_stages"], details["label_attention"]
        for k, i in enumerate(batch_indices):
            for label in np.flatnonzero(dataset.labels[i]):
                boxes = [tuple(box[1:]) for box in dataset.boxes[i] if box[0] == label]
                if not boxes:
                    continue
                mask = box_mask(boxes, size)
                for stage, maps in zip(stages, maps_per_branch):
                    one_map = maps[k:k + 1, label:label + 1]  # 1 x 1 x h x w
                    a = one_map[0, 0].numpy().astype(np.float64)
                    h, w = a.shape
                    cover = mask.reshape(h, size // h, w, size // w).mean(axis=(1, 3))  # box share of each cell
                    records.append({
                        "branch": f"layer{stage} ({h}x{w})",
                        "entropy": float(normalised_entropy(one_map)[0, 0]),
                        "peak ratio": float(peak_ratio(one_map)[0, 0]),
                        "mass in boxes": (a * cover).sum(),
                        "box area share": box_area_fraction(boxes, size),
                        "pointing hit": float(pointing_game(a, boxes, size)),
                        "centre baseline": float(pointing_game(np.ones((1, 1)), boxes, size)),
                    })
    if not records:
        raise ValueError(f"no (image, true label) pair with a box in the first {num_images} images of the dataset")
    stats = pd.DataFrame(records).groupby("branch", sort=False).mean()
    stats["lift"] = stats["mass in boxes"] / stats["box area share"]
    stats = stats.rename(columns={"box area share": "box area share (= chance)"})
    return stats, len(records) // len(stages)
# ============================================================================ why the maps point where they do
# Three measurements of what ties label c's attention to label c's object: whether the labels'
# maps differ at all, whether the label embeddings that steer them (eq. 7) differ, and whether
# label c's logit reads label c's own row of M = [O || Q] (paper eq. 9-10) or mixes them all.


def label_map_correlation(maps: torch.Tensor, present=None) -> float:
    """Mean Pearson correlation between *different* labels' maps of one image.

    ``maps``: B x n x h x w (one branch's ``label_attention``, or a CAM). ``present``: optional
    B x n boolean mask; then only pairs of labels present in the image count. 1 means every label
    looks at the same place (the maps are not label-specific), 0 unrelated maps, -1 opposite ones.
    Maps constant over the positions have no correlation and are left out; ``nan`` when no pair is left.
    """
    values = torch.as_tensor(maps).detach().double()
    if values.ndim != 4:
        raise ValueError(f"label_map_correlation needs maps B x n x h x w, got shape {tuple(values.shape)}")
    flat = values.flatten(2)
    centred = flat - flat.mean(dim=-1, keepdim=True)
    norms = centred.norm(dim=-1)
    valid = norms > 1e-12 * (1 + flat.abs().amax(dim=-1))
    if present is not None:
        valid &= torch.as_tensor(np.asarray(present), dtype=torch.bool).reshape(valid.shape)
    unit = centred / norms.clamp_min(1e-300).unsqueeze(-1)
    correlation = unit @ unit.transpose(1, 2)  # B x n x n
    pairs = valid.unsqueeze(2) & valid.unsqueeze(1) & ~torch.eye(values.shape[1], dtype=torch.bool)
    return float(correlation[pairs].mean()) if pairs.any() else float("nan")


def normalised_entropy(maps: torch.Tensor) -> torch.Tensor:
    """``H(a) / log(hw)`` of maps that sum to 1 over their positions (B x n x h x w -> B x n).

    1: flat (attention spread evenly, SGA acts as average pooling); 0: all weight on one cell.
    A map with a single position has no entropy to speak of: ``nan``.
    """
    values = torch.as_tensor(maps).detach().double().flatten(2)
    if values.shape[-1] < 2:
        return torch.full(values.shape[:2], float("nan"), dtype=torch.float64)
    return -(values * values.clamp_min(1e-300).log()).sum(-1) / math.log(values.shape[-1])


def peak_ratio(maps: torch.Tensor) -> torch.Tensor:
    """``hw * max_p a_p`` of maps that sum to 1 (B x n x h x w -> B x n): 1 flat, hw one cell."""
    values = torch.as_tensor(maps).detach().double().flatten(2)
    return values.shape[-1] * values.amax(dim=-1)


def as_distributions(maps: torch.Tensor, source: str, temperature: float = 1.0) -> torch.Tensor:
    """Maps as distributions over their positions (B x n x h x w, each map summing to 1).

    ``source="attention"``: MSRN's label attention already is one, returned as it is. ``"cam"``:
    a class activation map (or CSRA's score map) through a softmax over its positions at
    ``temperature``, the weights CSRA's residual attention gives the positions (T = 1 for a plain CAM).
    """
    values = torch.as_tensor(maps).detach().double()
    if source == "attention":
        return values
    flat = values.flatten(2)
    return torch.softmax(temperature * flat, dim=-1).view_as(values)


@torch.no_grad()
def map_statistics(model, dataset, source: str = "attention", max_images: int | None = None,
                   batch_size: int = 32, temperature: float = 1.0, device: str | torch.device = "cpu") -> dict:
    """How focused and how label-specific a model's maps are, per branch (``"layer2"``, ... or ``"cam"``).

    Over every (image, true label) pair of the first ``max_images`` of ``dataset``, the means of
    :func:`normalised_entropy` and :func:`peak_ratio` of the label's map (as a distribution,
    :func:`as_distributions` at ``temperature``), and per image :func:`label_map_correlation` between
    the maps of the labels present (averaged over the pairs of labels). Returns
    ``{branch: {"normalised_entropy", "peak_ratio", "label_map_correlation"}}``.
    """
    if source not in POINTING_SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {tuple(POINTING_SOURCES)}")
    labels = np.asarray(dataset.labels).astype(bool)
    indices = list(range(len(dataset) if max_images is None else min(max_images, len(dataset))))
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                        collate_fn=collate_skip_unreadable)
    device = torch.device(device)
    model = model.to(device).eval()
    statistics = _MapStatistics(source, temperature)
    for batch in loader:
        if batch.images.numel() == 0:
            continue
        maps, names = _maps_of(model(batch.images.to(device), details=True).details, source)
        statistics.add(maps, names, labels[batch.indices.numpy()])
    return statistics.result()


class _MapStatistics:
    """The running sums behind :func:`map_statistics`, batch by batch (also fed by :func:`pointing_game_scores`)."""

    def __init__(self, source: str, temperature: float = 1.0):
        self.source, self.temperature = source, temperature
        self.sums: dict[str, dict[str, float]] = {}

    def add(self, maps, names, present) -> None:
        """One batch: its maps per branch (B x n x h x w) and which labels each image holds (B x n)."""
        present = torch.as_tensor(np.asarray(present, dtype=bool))
        pairs = float((present.sum(1) * (present.sum(1) - 1)).sum())
        for name, branch_maps in zip(names, maps):
            branch_maps = branch_maps.float().cpu()
            distributions = as_distributions(branch_maps, self.source, self.temperature)
            total = self.sums.setdefault(name, dict.fromkeys(("entropy", "peak", "trials", "correlation", "pairs"), 0.0))
            total["entropy"] += float(normalised_entropy(distributions)[present].sum())
            total["peak"] += float(peak_ratio(distributions)[present].sum())
            total["trials"] += float(present.sum())
            correlation = label_map_correlation(branch_maps, present)
            if pairs and not math.isnan(correlation):
                total["correlation"] += correlation * pairs
                total["pairs"] += pairs

    def result(self) -> dict:
        return {name: {"normalised_entropy": total["entropy"] / max(total["trials"], 1),
                       "peak_ratio": total["peak"] / max(total["trials"], 1),
                       "label_map_correlation": total["correlation"] / total["pairs"] if total["pairs"] else float("nan")}
                for name, total in self.sums.items()}


def embedding_cosine(embeddings: torch.Tensor) -> float:
    """Mean cosine similarity between different rows of ``embeddings`` (e.g. the label embeddings E_l).

    Near 1: the labels steer the attention (eq. 7) in nearly the same direction, so their maps
    cannot differ much; near 0: unrelated directions.
    """
    values = torch.as_tensor(embeddings).detach().double()
    if values.ndim != 2 or len(values) < 2:
        raise ValueError(f"embedding_cosine needs at least two rows (n x d), got shape {tuple(values.shape)}")
    unit = F.normalize(values, dim=1)
    cosine = unit @ unit.t()
    return float(cosine[~torch.eye(len(values), dtype=torch.bool)].mean())


def head_label_mixing(model, images: torch.Tensor) -> dict:
    """How much of label c's logit comes from label c's own row of M: a gradient x input attribution.

    The head reads ``tanh(M)``, one row per label (O) and per group (Q). For every image and label
    c, row r's contribution to logit c is ``sum_j x_rj d logit_c / d x_rj`` (gradient x input; for
    a head without biases it adds up exactly to the logit, since LeakyReLU is piecewise linear).
    With shares ``|contribution| / sum over rows``, averaged over images and labels:

    - ``own_row``: the share of label c's own row O_c,
    - ``other_label_rows``: of the other labels' rows, ``group_rows``: of the group rows Q,
    - ``uniform``: ``1 / rows``, the own-row share of a head that weighs every row alike.

    The paper's head (fc1 over the flattened M) may mix freely; the per-label head gives label c
    only O_c and its groups. ``model``: an MSRN with label embeddings; ``images``: B x 3 x H x W.
    """
    model.eval()
    with torch.no_grad():
        details = model(images, details=True).details
    if not details or details.get("label_attention") is None:
        raise ValueError("head_label_mixing needs an MSRN with label embeddings (embeddings 'full' or 'label')")
    rows = details["head_rows"].float().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.classify(rows, details["assignment"])
        n, total = logits.shape[1], rows.shape[1]
        contributions = []
        for c in range(n):
            (gradient,) = torch.autograd.grad(logits[:, c].sum(), rows, retain_graph=c < n - 1)
            contributions.append((gradient * rows).sum(-1).detach())  # B x rows
    contribution = torch.stack(contributions, dim=1).double()  # B x n x rows
    share = contribution.abs() / contribution.abs().sum(-1, keepdim=True).clamp_min(1e-300)
    own = share[:, torch.arange(n), torch.arange(n)]
    label_share = share[..., :n].sum(-1)
    return {
        "own_row": float(own.mean()),
        "other_label_rows": float((label_share - own).mean()),
        "group_rows": float(share[..., n:].sum(-1).mean()),
        "uniform": 1.0 / total,
        "rows": total,
        "contribution": contribution,
        "logits": logits.detach(),
    }
