"""The built-in synthetic multi-label scene dataset: the tutorial's offline default.

Nothing can be downloaded, so the tutorial draws its own multi-label images. They are built to
have the structure MSRN exploits:

- **Themes.** Every image is composed from one scene theme (street, kitchen, farm, seaside),
  occasionally two. Given its theme, each of the theme's classes appears with probability
  0.5-0.65, independently, so the conditional probability ``P(j | i)`` between two classes of
  one theme is above the paper's threshold ``t = 0.4``: the label co-occurrence graph has real
  edges inside themes and few across them. A few off-theme "noise" objects are sprinkled in.
- **Hub.** ``person`` appears in every theme with probability >= 0.5, so ``P(person | i) >= 0.4``
  for every class ``i``: it receives an edge from everything. ``dog`` (street, farm) and
  ``bird`` (farm, seaside) bridge two themes each.
- **Appearance follows meaning.** Classes of one *family* share visual parts: vehicles have
  two dark wheels under a body, animals have a body, legs and a head, appliances are boxes
  with a handle, tableware has a light elliptical rim, plants are green foliage on a trunk or
  stem, pole-mounted things stand on a grey pole, watercraft share a hull. Classes of a family
  differ by colour, texture, proportions and one class-specific part, so a class held out of
  training can be related to its family from its name (zero-shot, notebook 08).
- **Realism knobs.** Objects are placed at random positions and scales (lower in the image =
  closer = larger, drawn later, so nearer objects *occlude* farther ones, at most about half of
  the smaller object), over a theme-tinted background with random strokes and blobs
  (*clutter*) and pixel noise. ``bird``, ``cup``, ``bottle``, ``bowl``, ``canoe`` and
  ``traffic light`` are *small* and ``bowl``/``canoe``/``sheep`` are *low-contrast*, so context
  helps to recognise them.
- **Boxes.** Every drawn object's box ``(class_idx, x0, y0, x1, y1)`` is recorded in pixel
  coordinates of the saved image (``0 <= x0 < x1 <= image_size``, end exclusive), for scoring
  attention maps (pointing game).

Layout on disk (``root/<cache_name>/``)::

    images/train/00000.png ...     images/val/...     images/test/...
    annotations.json               (written last and atomically: its presence = complete)

The package, one job a module:

- ``grammar``     the classes, families and themes, and the sampling of an image's labels
- ``config``      :class:`SceneConfig` (sizes, seed, knobs) and the cache folder it names
- ``painter``, ``objects``  drawing an object: the painter and family parts, one function per class
- ``boxes``       where an object goes (position, scale, bounded occlusion)
- ``rendering``   one image: backdrop, clutter, objects, noise (:func:`render_scene`)
- ``building``    the dataset on disk and its splits (:func:`generate_scenes`, :func:`load_scenes`)
- ``statistics``  :func:`label_statistics` of a split
- ``themes``      the ground-truth groups (theme, hub, bridge) and a display order for figures

The command line is ``python -m msrn_core.running.make_scenes``.
"""
from .building import SceneDataset, generate_scenes, load_scene_splits, load_scenes
from .config import GENERATOR_VERSION, SPLITS, SceneConfig, dataset_dir
from .grammar import (BRIDGE_CLASSES, CLASS_INDEX, CLASS_NAMES, CLASSES, FAMILIES, FAMILY_NAMES, HUB_CLASSES,
                      THEME_NAMES, THEMES, SceneClass, Theme)
from .rendering import render_scene
from .statistics import label_statistics
from .themes import theme_display_order, theme_group, theme_group_names, theme_groups

__all__ = [
    "BRIDGE_CLASSES", "CLASS_INDEX", "CLASS_NAMES", "CLASSES", "FAMILIES", "FAMILY_NAMES", "GENERATOR_VERSION",
    "HUB_CLASSES", "SPLITS", "THEME_NAMES", "THEMES", "SceneClass", "SceneConfig", "SceneDataset", "Theme",
    "dataset_dir", "generate_scenes", "label_statistics", "load_scene_splits", "load_scenes", "render_scene",
    "theme_display_order", "theme_group", "theme_group_names", "theme_groups",
]
