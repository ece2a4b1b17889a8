"""DSDL: the closed-form coefficients, gradients through the solve, the two loss forms, training
and checkpoints."""
import math

import numpy as np
import pytest
import torch

from msrn_core.running import recipes
from msrn_core.running.checkpoints import CheckpointMismatchError, load_model_state, model_from_checkpoint
from msrn_core.extras.dsdl import (DSDL, DSDLConfig, DSDLOutput, apus_step, dsdl_loss, ridge_coefficients,
                            ridge_objective)
from msrn_core.running.experiment import make_model, setup_from_splits
from msrn_core.model import build_model, model_config
from msrn_core.running.training import TrainConfig, evaluate, loss_terms, train_model
from msrn_core.utils import seed_everything

TINY = dict(backbone="resnet18", encoder_hidden=32)


@pytest.fixture(scope="module")
def setup(small_scenes):
    _, _, train, val, test = small_scenes
    return setup_from_splits(train, val, test, label_features="onehot")


def batch(setup, count, start=0):
    images, targets = zip(*[setup.train[i][:2] for i in range(start, start + count)])
    return torch.stack(images)[..., ::2, ::2].contiguous(), torch.stack(targets)  # 32 px


def random_problem(batch_size=5, n=4, width=7, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch_size, width, generator=generator, dtype=dtype)
    dictionary = torch.randn(n, width, generator=generator, dtype=dtype)
    return features, dictionary


@pytest.mark.parametrize("ridge_lambda", [1e-3, 0.5, 10.0])
def test_closed_form_equals_least_squares_of_the_ridge_augmented_system(ridge_lambda):
    features, dictionary = random_problem()
    n = dictionary.shape[0]
    coefficients = ridge_coefficients(features, dictionary, ridge_lambda)
    # min ||f - a D||^2 + lambda ||a||^2  <=>  least squares of [D^T; sqrt(lambda) I] a = [f; 0]
    augmented = torch.cat([dictionary.t(), math.sqrt(ridge_lambda) * torch.eye(n, dtype=torch.float64)])
    rhs = torch.cat([features.t(), torch.zeros(n, features.shape[0], dtype=torch.float64)])
    reference = torch.linalg.lstsq(augmented, rhs).solution.t()
    assert torch.allclose(coefficients, reference, atol=1e-10)
    # the paper's formula, literally, in NumPy
    f, d = features.numpy(), dictionary.numpy()
    numpy_reference = f @ d.T @ np.linalg.inv(d @ d.T + ridge_lambda * np.eye(n))
    np.testing.assert_allclose(coefficients.numpy(), numpy_reference, atol=1e-10)


def test_the_coefficients_minimise_the_ridge_objective():
    features, dictionary = random_problem(seed=1)
    coefficients = ridge_coefficients(features, dictionary, 0.3)
    best = ridge_objective(features, coefficients, dictionary, 0.3)
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        nudged = coefficients + 1e-2 * torch.randn(coefficients.shape, generator=generator, dtype=torch.float64)
        assert ridge_objective(features, nudged, dictionary, 0.3) > best


def test_the_solve_runs_in_float32_under_autocast():
    features, dictionary = random_problem(width=64, n=6, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        projected = torch.nn.functional.linear(features, torch.eye(64))  # bf16 under autocast
        assert projected.dtype == torch.bfloat16
        coefficients = ridge_coefficients(projected, dictionary.bfloat16(), 0.1)
    assert coefficients.dtype == torch.float32
    reference = ridge_coefficients(projected.double(), dictionary.bfloat16().double(), 0.1)
    assert torch.allclose(coefficients.double(), reference, atol=1e-4)


def test_the_model_under_autocast_returns_float32_coefficients(setup):
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(images)
    assert output.features.dtype == torch.bfloat16 and output.logits.dtype == torch.float32
    expected = ridge_coefficients(output.features.double(), output.dictionary.double(), model.config.ridge_lambda)
    assert torch.allclose(output.logits.double(), expected, atol=1e-3)
    total, _ = model.training_loss(output, targets)
    assert total.dtype == torch.float32 and torch.isfinite(total)


def test_gradients_through_the_solve_match_finite_differences():
    features, dictionary = random_problem(batch_size=3, n=3, width=4)
    features.requires_grad_(True)
    dictionary.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, d: ridge_coefficients(f, d, 0.7), (features, dictionary))


def test_gradients_reach_the_encoder_and_the_backbone(setup):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 4)
    loss, _ = model.training_loss(model(images), targets)
    loss.backward()
    for name, parameter in [("encoder W1", model.autoencoder.w1.weight), ("encoder W2", model.autoencoder.w2.weight),
                            ("backbone conv1", model.trunk.stem[0].weight),
                            ("backbone layer4", model.trunk.stages[3][-1].conv2.weight)]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_dictionary_gets_gradient_through_the_coefficients():
    """Without the solve in the graph, the classification term would not reach the dictionary."""
    features, dictionary = random_problem(batch_size=4, n=3, width=5, dtype=torch.float32)
    dictionary.requires_grad_(True)
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    coefficients = ridge_coefficients(features, dictionary, 0.5)
    torch.nn.functional.binary_cross_entropy_with_logits(coefficients, targets).backward()
    assert dictionary.grad.abs().sum() > 0


def hand_example(loss_form):
    """Two images, two classes, features of width 2, label vectors of width 2."""
    output = DSDLOutput(
        logits=torch.tensor([[2.0, -1.0], [0.0, 1.0]]),
        features=torch.tensor([[1.0, 2.0], [3.0, 0.0]]),
        dictionary=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        reconstructed_semantics=torch.tensor([[1.0, 1.0], [0.0, 2.0]]),
        compactness=torch.zeros(()))
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    semantics = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    config = DSDLConfig(ridge_lambda=0.5, beta=0.1, semantic_weight=2.0, loss_form=loss_form)
    return output, targets, semantics, config


def hand_data_term():
    def bce(z, y):
        return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))
    classification = (bce(2, 1) + bce(-1, 0) + bce(0, 0) + bce(1, 1)) / 4
    # A D = A (D = I): residuals F - A = [[-1, 3], [3, -1]], ||.||^2 = 10 and 10
    # lambda ||a||^2 = 0.5 * 5 and 0.5 * 1; averaged over 2 images, divided by the width C = 2
    ridge = ((10 + 2.5) + (10 + 0.5)) / 2 / 2
    return classification, classification + 0.1 * ridge


def test_paper_loss_matches_a_hand_computation():
    classification, data_term = hand_data_term()
    # S - S_hat = [[0, -1], [0, -1]]: squared error 1 per class, averaged over n = 2 classes
    total, main = dsdl_loss(*hand_example("paper"))
    assert main.item() == pytest.approx(classification, rel=1e-6)
    assert total.item() == pytest.approx(data_term + 2.0 * 1.0, rel=1e-6)


def test_authors_loss_divides_by_the_mean_cosine():
    classification, data_term = hand_data_term()
    # cos([1, 0], [1, 1]) = 1 / sqrt(2); cos([0, 1], [0, 2]) = 1
    mean_cosine = (1 / math.sqrt(2) + 1) / 2
    total, main = dsdl_loss(*hand_example("authors"))
    assert main.item() == pytest.approx(classification, rel=1e-6)
    assert total.item() == pytest.approx(data_term / mean_cosine, rel=1e-6)


def test_authors_loss_clamps_a_non_positive_cosine():
    output, targets, semantics, config = hand_example("authors")
    output.reconstructed_semantics = -semantics
    total, _ = dsdl_loss(output, targets, semantics, config)
    assert total.item() == pytest.approx(hand_data_term()[1] / config.min_cosine, rel=1e-6)


def test_forward_returns_coefficients_of_the_models_own_dictionary(setup):
    model = make_model(setup, DSDLConfig(**TINY)).eval()
    images, _ = batch(setup, 3)
    with torch.no_grad():
        output = model(images)
    n, width = len(setup.class_names), model.trunk.channels[4]
    assert output.logits.shape == (3, n)
    assert output.dictionary.shape == (n, width) and output.features.shape == (3, width)
    assert output.reconstructed_semantics.shape == setup.label_features.shape
    expected = ridge_coefficients(output.features.double(), output.dictionary.double(), model.config.ridge_lambda)
    assert torch.allclose(output.logits.double(), expected, atol=1e-4)


@pytest.mark.parametrize("loss_form", ["paper", "authors"])
def test_a_few_steps_reduce_the_loss_on_the_builtin_dataset(setup, loss_form):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY, loss_form=loss_form))
    images, targets = batch(setup, 8)
    optimizer = torch.optim.SGD(model.parameter_groups(0.01, 1.0), lr=0.01, momentum=0.9)
    losses = [apus_step(model, images, targets, optimizer)["loss"] for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_the_training_loop_uses_the_dsdl_loss(setup):
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 4)
    output = model(images)
    total, main = loss_terms(output, targets, 1e-3, model)
    expected_total, expected_main = dsdl_loss(output, targets, model.label_features, model.config)
    assert torch.equal(total, expected_total) and torch.equal(main, expected_main)
    assert total > main  # the ridge and semantic terms are added


def test_apus_step_updates_the_dictionary_and_the_next_forward_solves_for_it(setup):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 8)
    optimizer = torch.optim.SGD(model.parameter_groups(0.01, 1.0), lr=0.01)
    step = apus_step(model, images, targets, optimizer)
    assert not torch.allclose(step["dictionary_before"], step["dictionary_after"])
    model.eval()
    with torch.no_grad():
        after = model(images)
    assert torch.allclose(after.dictionary, step["dictionary_after"])
    assert torch.allclose(after.logits, ridge_coefficients(after.features, step["dictionary_after"],
                                                           model.config.ridge_lambda), atol=1e-5)


def test_recipes_build_a_dsdl_config_without_msrn_widths():
    config = recipes.SMALL.model_config(kind="dsdl", ridge_lambda=0.5)
    assert isinstance(config, DSDLConfig)
    assert (config.backbone, config.pretrained, config.ridge_lambda) == ("resnet18", False, 0.5)
    assert model_config("dsdl") == DSDLConfig()


def test_invalid_dsdl_settings_fail_clearly():
    with pytest.raises(ValueError, match="loss form"):
        DSDLConfig(loss_form="sum")
    with pytest.raises(ValueError, match="ridge_lambda"):
        DSDLConfig(ridge_lambda=0.0)
    with pytest.raises(ValueError, match="unknown model kind"):
        model_config("dictionary")


def test_train_model_evaluate_and_checkpoint_roundtrip(setup, tmp_path):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY))
    config = TrainConfig(epochs=1, batch_size=8, lr=0.01, backbone_lr_mult=1.0, num_workers=0,
                         max_steps_per_epoch=2, progress=False, device="cpu")
    result = train_model(model, setup.train, setup.val, config, tmp_path / "run")
    assert np.isfinite(result.history[0]["train_loss"]) and 0 <= result.best_val_map <= 1
    metrics = evaluate(model, setup.test, batch_size=16, device="cpu")
    assert 0 <= metrics["mAP"] <= 1

    restored, class_names, _ = model_from_checkpoint(result.last_path)
    assert isinstance(restored, DSDL) and restored.config == model.config
    assert class_names == setup.class_names
    images, _ = batch(setup, 2)
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.allclose(model(images).logits, restored(images).logits, atol=1e-5)

    other = build_model(DSDLConfig(**{**TINY, "ridge_lambda": 2.0}), setup.label_features,
                        setup.graph.adjacency_tensor())
    with pytest.raises(CheckpointMismatchError, match="ridge_lambda"):
        load_model_state(result.last_path, other, setup.class_names)


def test_dictionary_coefficient_and_apus_figures_are_saved(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from msrn_core import plots

    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path))
    names = ["car", "bus", "cup", "bowl", "tree"]
    groups = {"car": "vehicle", "cup": "tableware", "bus": "vehicle", "bowl": "tableware", "tree": "plant"}
    dictionary, semantics = torch.randn(5, 12), torch.randn(5, 6)
    plots.plot_dictionary_atoms(dictionary, semantics, names, groups=groups, channels=8, save_as="07_atoms")
    assert plots._group_order(names, groups) == ([0, 1, 2, 3, 4], [2, 4])
    assert plots._group_order(["cup", "car", "bowl", "bus"], groups) == ([0, 2, 1, 3], [2])
    images = [torch.rand(3, 16, 16) for _ in range(2)]
    targets = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0]])
    plots.plot_coefficients(images, torch.randn(2, 5), targets, names, save_as="07_coefficients")
    records = [{"loss": 2.0 - 0.1 * t, "classification": 0.7, "ridge_objective": 1.0, "dictionary_change": 0.01}
               for t in range(4)]
    plots.plot_apus_steps(records, save_as="07_apus")
    plt.close("all")
    assert sorted(p.name for p in tmp_path.glob("07_*.png")) == ["07_apus.png", "07_atoms.png",
                                                                 "07_coefficients.png"]
    with pytest.raises(ValueError, match="one row per class"):
        plots.plot_dictionary_atoms(dictionary[:4], semantics, names)
    with pytest.raises(ValueError, match="images x 5 classes"):
        plots.plot_coefficients(images, torch.randn(3, 5), targets, names)
