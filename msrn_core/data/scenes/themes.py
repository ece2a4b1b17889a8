"""The ground-truth label groups of the scenes, for figures and for scoring learned groups: each
class's theme, or ``hub`` (a class of every theme, ``person``) or ``bridge`` (a class of two
themes, ``dog`` and ``bird``), and a display order that puts each theme's classes side by side."""
from __future__ import annotations

from typing import Sequence

import numpy as np

HUB_GROUP_NAME = "hub (all themes)"
BRIDGE_GROUP_NAME = "bridge (two themes)"
# Display rank of each theme: the hub first, then street - farm - seaside - kitchen, so that a
# bridge class (the mean rank of its two themes) sits between them: street - dog - farm - bird - seaside.
_DISPLAY_RANK = {"street": 1, "farm": 3, "seaside": 5, "kitchen": 6}
_UNRANKED = 7


def theme_group_names(theme_names: Sequence[str]) -> list[str]:
    """The names of the groups :func:`theme_group` numbers: the themes, then hub, then bridge."""
    return list(theme_names) + [HUB_GROUP_NAME, BRIDGE_GROUP_NAME]


def theme_group(themes: Sequence[str], theme_names: Sequence[str]) -> int:
    """Ground-truth group of a class with ``themes``: its theme's index in ``theme_names``, or
    ``len(theme_names)`` (hub) when it is in every theme, ``len(theme_names) + 1`` (bridge) when in several."""
    theme_names = list(theme_names)
    if len(themes) == len(theme_names):
        return len(theme_names)
    if len(themes) > 1:
        return len(theme_names) + 1
    return theme_names.index(themes[0])


def theme_groups(class_themes: Sequence[Sequence[str]], theme_names: Sequence[str]) -> np.ndarray:
    """:func:`theme_group` of every class (``dataset.class_themes``), as an int array."""
    return np.array([theme_group(themes, theme_names) for themes in class_themes])


def theme_display_order(class_themes: Sequence[Sequence[str]], theme_names: Sequence[str]) -> np.ndarray:
    """Class indices in display order: the hub first, then the themes, each bridge class between its
    two themes, so that theme blocks sit on the diagonal of an n x n label figure."""
    groups = theme_groups(class_themes, theme_names)
    rank = [0 if group == len(theme_names) else np.mean([_DISPLAY_RANK.get(t, _UNRANKED) for t in themes])
            for group, themes in zip(groups, class_themes)]
    return np.argsort(rank, kind="stable")
