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


def test_figure_png_and_float_tensor():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from msrn_core.notebook import figure_png, float_tensor

    fig, ax = plt.subplots(figsize=(1, 1))
    png = figure_png(fig, dpi=20)
    assert png.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)  # PNG bytes, figure closed
    tensor = float_tensor(np.array([[1, 2]], dtype=np.int64))
    assert tensor.dtype == torch.float32 and tensor.tolist() == [[1.0, 2.0]]
