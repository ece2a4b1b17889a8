"""Shared fixtures: a small built-in scene dataset, generated once per test session."""
import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def small_scenes(tmp_path_factory):
    """(root, config, train, val, test) of the small built-in dataset (64 px, evaluation transforms)."""
    from msrn_core.data.dataset import build_transform
    from msrn_core.data.scenes import SceneConfig, load_scene_splits

    root = tmp_path_factory.mktemp("scenes")
    config = SceneConfig.small()
    transform = build_transform(config.image_size, train=False)
    train, val, test = load_scene_splits(root, config, train_transform=transform, eval_transform=transform)
    return root, config, train, val, test


@pytest.fixture(scope="module")
def setup(small_scenes):
    """The small dataset's splits with their label graph and one-hot label features."""
    from msrn_core.running.experiment import setup_from_splits

    _, _, train, val, test = small_scenes
    return setup_from_splits(train, val, test, label_features="onehot")


@pytest.fixture
def one_torch_thread():
    """Run the test's torch work on one thread (the tests share a small machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
