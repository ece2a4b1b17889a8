"""The helpers that every notebook's opening cells call (msrn_core.notebook)."""
from dataclasses import replace

import numpy as np

from msrn_core.running import recipes
from msrn_core.notebook import tutorial_data


def test_tutorial_data_of_another_recipe_has_its_image_size_and_the_chosen_label_features(tmp_path, monkeypatch):
    # notebook 05 on a GPU asks for the GPU recipe's images; offline runs choose one-hot vectors
    # through MSRN_LABEL_FEATURES, and that choice must hold for those images too
    monkeypatch.setenv("MSRN_LABEL_FEATURES", "onehot")
    recipe = replace(recipes.SMALL, image_size=40)
    setup = tutorial_data(recipe=recipe, root=tmp_path)
    image, target, _ = setup.test[0]
    assert image.shape[-2:] == (40, 40)
    assert setup.label_features.shape == (len(target), len(target))
    np.testing.assert_array_equal(setup.label_features, np.eye(len(target), dtype=np.float32))
