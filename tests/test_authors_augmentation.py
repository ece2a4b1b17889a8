"""The authors' augmentation (MultiScaleCrop then flip; a plain resize at test) on non-square images."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core.data.dataset import AUTHORS_CROP_SCALES, MultiScaleCrop, build_transform

SIZE = 64


def images(count: int = 20, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` non-square (width, height) pairs, landscape and portrait, 70-400 px."""
    rng = np.random.default_rng(seed)
    sizes = []
    while len(sizes) < count:
        width, height = (int(v) for v in rng.integers(70, 400, size=2))
        if width != height:
            sizes.append((width, height))
    return sizes


@pytest.mark.parametrize("width, height", images())
def test_crops_take_their_sides_from_the_short_side_and_sit_at_fixed_offsets(width, height):
    crop = MultiScaleCrop(SIZE)
    sides = {int(min(width, height) * s) for s in AUTHORS_CROP_SCALES}
    sides = {SIZE if abs(side - SIZE) < 3 else side for side in sides}
    torch.manual_seed(width * 1000 + height)
    seen_sizes, seen_offsets = set(), set()
    for _ in range(300):
        left, top, crop_width, crop_height = crop.sample_box(width, height)
        assert crop_width in sides and crop_height in sides
        # at most two scale steps apart: 0.8 / 0.6 is the widest ratio, 1.0 / 0.6 never occurs
        assert max(crop_width / crop_height, crop_height / crop_width) <= 0.8 / 0.6 + 0.03
        assert 0 <= left and left + crop_width <= width and 0 <= top and top + crop_height <= height
        step_x, step_y = (width - crop_width) // 4, (height - crop_height) // 4
        grid = {(i * step_x, j * step_y) for i, j in itertools.product(range(5), range(5))
                if (i, j) in {(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0),
                              (1, 1), (3, 1), (1, 3), (3, 3)}}
        assert (left, top) in grid
        seen_sizes.add((crop_width, crop_height))
        seen_offsets.add((left, top))
    assert len(seen_sizes) == 19  # 5 x 5 pairs less the 6 more than two steps apart
    assert len(seen_offsets) >= 9  # the 13 places (some coincide when the free space is small)


def test_pairs_more_than_two_steps_apart_are_never_allowed():
    sizes = MultiScaleCrop(SIZE).crop_sizes(300, 200)  # short side 200: sides 200, 180, 160, 139, 120 (int rounds 139.99.. down)
    assert (200, 120) not in sizes and (120, 200) not in sizes and (200, 160) in sizes and (200, 139) not in sizes
    assert (200, 200) in sizes and (120, 120) in sizes


def test_a_side_within_two_pixels_of_the_output_snaps_to_it():
    assert (SIZE, SIZE) in MultiScaleCrop(SIZE).crop_sizes(65, 100)  # int(65 * 1.0) = 65 -> 64


def test_authors_transforms_give_square_tensors_and_warp_at_test():
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 150, 3), dtype=np.uint8))
    train = build_transform(SIZE, train=True, augmentation="authors")
    test = build_transform(SIZE, train=False, augmentation="authors")
    assert train(picture).shape == (3, SIZE, SIZE) and test(picture).shape == (3, SIZE, SIZE)
    torch.manual_seed(3)
    first = train(picture)
    torch.manual_seed(3)
    assert torch.equal(first, train(picture))  # drawn from torch's generator: seedable per image
    # the test transform is a plain bilinear resize of the whole picture (their Warp), no crop
    resized = picture.resize((SIZE, SIZE), Image.BILINEAR)
    assert torch.allclose(test(picture), build_transform(SIZE, train=False)(resized), atol=0.05)
    with pytest.raises(ValueError, match="augmentation"):
        build_transform(SIZE, train=True, augmentation="random")
