"""DSDL: the closed-form coefficients, gradients through the solve, the two loss forms, training
and checkpoints."""
import math

import numpy as np
import pytest
import torch

from msrn_core.running import recipes
from msrn_core.running.checkpoints import CheckpointMismatchError, load_model_state, model_from_checkpoint
from msrn_core.extras.dsdl import (AUTHORS_SETTINGS, DSDL, DSDLConfig, DSDLOutput, SemanticDictionary, apus_step,
                                   authors_config, dsdl_loss, ridge_coefficients, ridge_objective)
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


def hand_classification():
    def bce(z, y):
        return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))
    return (bce(2, 1) + bce(-1, 0) + bce(0, 0) + bce(1, 1)) / 4


# A D = A (D = I): residuals F - A = [[-1, 3], [3, -1]]; A = [[2, -1], [0, 1]]
HAND_RESIDUAL_SQUARES = (1 + 9, 9 + 1)  # per image
HAND_COEFFICIENT_SQUARES = (4 + 1, 0 + 1)  # per image
HAND_MEAN_COSINE = (1 / math.sqrt(2) + 1) / 2  # cos([1, 0], [1, 1]) = 1 / sqrt(2); cos([0, 1], [0, 2]) = 1


def test_additive_loss_matches_a_hand_computation():
    classification = hand_classification()
    # squared norms per image, lambda = 0.5, averaged over 2 images, divided by the width C = 2
    ridge = sum(r + 0.5 * a for r, a in zip(HAND_RESIDUAL_SQUARES, HAND_COEFFICIENT_SQUARES)) / 2 / 2
    assert ridge == pytest.approx(5.75)
    # S - S_hat = [[0, -1], [0, -1]]: squared error 1 per class, averaged over n = 2 classes
    total, main = dsdl_loss(*hand_example("additive"))
    assert main.item() == pytest.approx(classification, rel=1e-6)
    assert total.item() == pytest.approx(classification + 0.1 * ridge + 2.0 * 1.0, rel=1e-6)


def test_authors_loss_matches_a_hand_computation_of_their_formula():
    """(BCE + beta (||F - A D||_F + lambda ||A||_F)) / mean cos(S, S_hat): plain norms over the batch."""
    classification = hand_classification()
    ridge = math.sqrt(sum(HAND_RESIDUAL_SQUARES)) + 0.5 * math.sqrt(sum(HAND_COEFFICIENT_SQUARES))
    assert ridge == pytest.approx(math.sqrt(20) + 0.5 * math.sqrt(6))
    total, main = dsdl_loss(*hand_example("authors"))
    assert main.item() == pytest.approx(classification, rel=1e-6)
    assert total.item() == pytest.approx((classification + 0.1 * ridge) / HAND_MEAN_COSINE, rel=1e-6)


def authors_loss_reference(logits, targets, features, dictionary, semantics, reconstructed, ridge_lambda, beta):
    """The authors' loss.py written out in NumPy from its formula (float64), independently of msrn_core."""
    a, y, f, d, s, s_hat = (np.asarray(t, dtype=np.float64) for t in
                            (logits, targets, features, dictionary, semantics, reconstructed))
    log_sigmoid = -np.logaddexp(0.0, -a)
    log_one_minus_sigmoid = -np.logaddexp(0.0, a)
    soft_margin = np.mean(-(y * log_sigmoid + (1 - y) * log_one_minus_sigmoid))  # mean over images and classes
    restructure = np.sqrt(np.sum((a @ d - f) ** 2))  # torch.norm of a matrix: Frobenius, not squared
    sparse = np.sqrt(np.sum(a ** 2))
    cosine = np.mean(np.sum(s * s_hat, axis=1) / (np.linalg.norm(s, axis=1) * np.linalg.norm(s_hat, axis=1)))
    return (soft_margin + beta * (restructure + ridge_lambda * sparse)) / cosine


@pytest.mark.parametrize("dataset", ["voc2007", "coco2014", "demo"])
def test_authors_loss_equals_their_formula_on_random_tensors(dataset):
    settings = AUTHORS_SETTINGS.get(dataset, {"ridge_lambda": 0.01, "beta": 0.01})
    generator = torch.Generator().manual_seed(3)
    features = 3 * torch.rand(6, 40, generator=generator, dtype=torch.float64)
    dictionary = 0.2 * torch.randn(5, 40, generator=generator, dtype=torch.float64)
    semantics = torch.randn(5, 9, generator=generator, dtype=torch.float64)
    reconstructed = semantics + 0.7 * torch.randn(5, 9, generator=generator, dtype=torch.float64)
    targets = (torch.rand(6, 5, generator=generator) < 0.3).double()
    logits = ridge_coefficients(features, dictionary, settings["ridge_lambda"])
    output = DSDLOutput(logits, torch.zeros(()), features=features, dictionary=dictionary,
                        reconstructed_semantics=reconstructed)
    total, _ = dsdl_loss(output, targets, semantics, DSDLConfig(loss_form="authors", **settings))
    expected = authors_loss_reference(logits, targets, features, dictionary, semantics, reconstructed,
                                      settings["ridge_lambda"], settings["beta"])
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_authors_loss_clamps_a_non_positive_cosine():
    output, targets, semantics, config = hand_example("authors")
    output.reconstructed_semantics = -semantics
    total, _ = dsdl_loss(output, targets, semantics, config)
    ridge = math.sqrt(20) + 0.5 * math.sqrt(6)
    assert total.item() == pytest.approx((hand_classification() + 0.1 * ridge) / config.min_cosine, rel=1e-6)


def test_the_authors_settings_are_those_of_their_run_scripts():
    assert AUTHORS_SETTINGS["voc2007"] == AUTHORS_SETTINGS["voc2012"] == {"ridge_lambda": 10.0, "beta": 1e-4}
    assert AUTHORS_SETTINGS["coco2014"] == {"ridge_lambda": 0.1, "beta": 1e-6}
    config = authors_config("coco2014", backbone="resnet18")
    assert (config.loss_form, config.ridge_lambda, config.beta, config.backbone, config.pretrained) == (
        "authors", 0.1, 1e-6, "resnet18", True)
    with pytest.raises(ValueError, match="set ridge_lambda and beta yourself"):
        authors_config("scenes")


def test_a_checkpoint_naming_the_additive_form_by_its_former_name_still_loads(tmp_path):
    from msrn_core.running.checkpoints import save_checkpoint

    n = 3
    model = build_model(DSDLConfig(backbone="resnet18"), torch.randn(n, 6), torch.eye(n))
    save_checkpoint(tmp_path / "old.pt", model, ["a", "b", "c"])
    checkpoint = torch.load(tmp_path / "old.pt", weights_only=False)
    checkpoint["signature"]["config"]["loss_form"] = "paper"  # as written before the rename
    torch.save(checkpoint, tmp_path / "old.pt")
    load_model_state(tmp_path / "old.pt", model, ["a", "b", "c"])
    rebuilt, _, _ = model_from_checkpoint(tmp_path / "old.pt")
    assert rebuilt.config.loss_form == "additive"
    with pytest.raises(ValueError, match="unknown DSDL loss form 'paper'"):
        DSDLConfig(loss_form="paper")  # the former name is read from checkpoints only


def dsdl_reference_forward(features, semantics, w1, w2, ridge_lambda, slope=0.2):
    """D1-D3 in NumPy from the weight matrices (``w1``: hidden x k, ``w2``: C x hidden, nn.Linear layout)."""
    def leaky(x):
        return np.where(x > 0, x, slope * x)
    f, s, w1, w2 = (np.asarray(t, dtype=np.float64) for t in (features, semantics, w1, w2))
    d = leaky(s @ w1.T) @ w2.T
    a = f @ d.T @ np.linalg.inv(d @ d.T + ridge_lambda * np.eye(len(d)))
    s_hat = leaky(d @ w2) @ w1
    return a, d, s_hat


def test_gradient_through_the_solve_matches_finite_differences_of_the_reference_loss():
    """APUS, backward: the encoder's gradient is that of the loss with A = A(D), not with A held fixed."""
    generator = torch.Generator().manual_seed(5)
    semantics = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    features = torch.rand(2, 6, generator=generator, dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    autoencoder = SemanticDictionary(4, 5, 6).double()
    config = DSDLConfig(ridge_lambda=0.3, beta=0.5, loss_form="authors")
    dictionary = autoencoder.encode(semantics)
    output = DSDLOutput(ridge_coefficients(features, dictionary, 0.3), torch.zeros(()), features=features,
                        dictionary=dictionary, reconstructed_semantics=autoencoder.decode(dictionary))
    dsdl_loss(output, targets, semantics, config)[0].backward()
    w1, w2 = autoencoder.w1.weight.detach().numpy(), autoencoder.w2.weight.detach().numpy()

    def reference(w2_value):
        a, d, s_hat = dsdl_reference_forward(features, semantics, w1, w2_value, 0.3)
        return authors_loss_reference(a, targets, features, d, semantics, s_hat, 0.3, 0.5)

    numeric = np.zeros_like(w2)
    for index in np.ndindex(*w2.shape):
        step = np.zeros_like(w2)
        step[index] = 1e-6
        numeric[index] = (reference(w2 + step) - reference(w2 - step)) / 2e-6
    np.testing.assert_allclose(autoencoder.w2.weight.grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


def test_forward_equals_the_pipeline_written_out_in_numpy(setup):
    """D1-D3 recomputed from the weights: max-pooled last stage, the encoder, the ridge solve with the
    configured lambda (the authors' VOC value here), the tied decoder."""
    model = make_model(setup, DSDLConfig(**TINY, ridge_lambda=10.0)).eval()
    images = torch.stack([setup.train[i][0] for i in range(3)])  # 64 px: a 2 x 2 last feature map
    with torch.no_grad():
        output = model(images)
        feature_map = model.trunk(images, (4,))[4].double().numpy()
    assert feature_map.shape[2:] == (2, 2)  # max and mean pooling differ
    n, width = len(setup.class_names), model.trunk.channels[4]
    assert output.logits.shape == (3, n) and output.dictionary.shape == (n, width)
    features = feature_map.max(axis=(2, 3))
    a, d, s_hat = dsdl_reference_forward(features, setup.label_features, model.autoencoder.w1.weight.detach(),
                                         model.autoencoder.w2.weight.detach(), 10.0)
    np.testing.assert_allclose(output.features.numpy(), features, rtol=1e-6)
    np.testing.assert_allclose(output.dictionary.numpy(), d, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(output.reconstructed_semantics.numpy(), s_hat, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(output.logits.numpy(), a, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("settings, drop", [
    (dict(loss_form="additive"), 0.7),  # this repository's lambda and beta
    # the authors' VOC lambda and beta: their loss is mostly the BCE (~0.69 at the start) over a
    # cosine below 1, which 8 steps on 8 images lower more slowly
    (dict(loss_form="authors", **AUTHORS_SETTINGS["voc2007"]), 0.9)], ids=["additive", "authors"])
def test_a_few_steps_reduce_the_loss_on_the_builtin_dataset(setup, settings, drop):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY, **settings))
    images, targets = batch(setup, 8)
    optimizer = torch.optim.SGD(model.parameter_groups(0.01, 1.0), lr=0.01, momentum=0.9)
    losses = [apus_step(model, images, targets, optimizer)["loss"] for _ in range(8)]
    assert losses[-1] < drop * losses[0], losses
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses


def test_the_training_loop_uses_the_dsdl_loss(setup):
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 4)
    output = model(images)
    total, main = loss_terms(output, targets, 1e-3, model)
    expected_total, expected_main = dsdl_loss(output, targets, model.label_features, model.config)
    assert torch.equal(total, expected_total) and torch.equal(main, expected_main)
    assert total > main  # the ridge and semantic terms are added


def test_apus_step_solves_for_the_old_dictionary_and_moves_it_by_the_gradient(setup):
    seed_everything(0)
    model = make_model(setup, DSDLConfig(**TINY))
    images, targets = batch(setup, 8)
    lr = 0.01
    optimizer = torch.optim.SGD(model.parameter_groups(lr, 1.0), lr=lr)  # plain SGD: W <- W - lr grad
    w1_before, w2_before = (w.detach().clone() for w in (model.autoencoder.w1.weight, model.autoencoder.w2.weight))
    step = apus_step(model, images, targets, optimizer)
    w1_grad, w2_grad = model.autoencoder.w1.weight.grad, model.autoencoder.w2.weight.grad
    # the dictionary the forward pass solved with is the encoder's output at the weights before the step
    no_features = np.zeros((1, w2_before.shape[0]))
    _, d_before, _ = dsdl_reference_forward(no_features, setup.label_features, w1_before, w2_before, 1.0)
    np.testing.assert_allclose(step["dictionary_before"].numpy(), d_before, rtol=1e-4, atol=1e-6)
    # backward: the dictionary after is the encoder's output at W - lr grad, and it moved
    _, d_after, _ = dsdl_reference_forward(no_features, setup.label_features, w1_before - lr * w1_grad,
                                           w2_before - lr * w2_grad, 1.0)
    np.testing.assert_allclose(step["dictionary_after"].numpy(), d_after, rtol=1e-4, atol=1e-6)
    assert np.abs(d_after - d_before).max() > 1e-4


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
    assert np.isfinite(result.history[0]["train_loss"])
    # one epoch: the model holds the selected weights, and their validation mAP is the one recorded
    assert evaluate(model, setup.val, batch_size=16, device="cpu")["mAP"] == pytest.approx(result.best_val_map)

    restored, class_names, _ = model_from_checkpoint(result.last_path)
    assert isinstance(restored, DSDL) and restored.config == model.config
    assert class_names == setup.class_names
    images, _ = batch(setup, 2)
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.allclose(model(images).logits, restored(images).logits, atol=1e-5)
    assert evaluate(restored, setup.test, batch_size=16, device="cpu")["mAP"] == pytest.approx(
        evaluate(model, setup.test, batch_size=16, device="cpu")["mAP"])

    other = build_model(DSDLConfig(**{**TINY, "ridge_lambda": 2.0}), setup.label_features,
                        setup.graph.adjacency_tensor())
    with pytest.raises(CheckpointMismatchError, match="ridge_lambda"):
        load_model_state(result.last_path, other, setup.class_names)


def test_dictionary_coefficient_and_apus_figures_are_saved(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from msrn_core import plots
    from msrn_core.plots.dictionary import _group_order

    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path))
    names = ["car", "bus", "cup", "bowl", "tree"]
    groups = {"car": "vehicle", "cup": "tableware", "bus": "vehicle", "bowl": "tableware", "tree": "plant"}
    dictionary, semantics = torch.randn(5, 12), torch.randn(5, 6)
    plots.plot_dictionary_atoms(dictionary, semantics, names, groups=groups, channels=8, save_as="07_atoms")
    assert _group_order(names, groups) == ([0, 1, 2, 3, 4], [2, 4])
    assert _group_order(["cup", "car", "bowl", "bus"], groups) == ([0, 2, 1, 3], [2])
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


def test_dsdl_takes_the_recipes_output_stride_like_the_models_it_is_compared_with(setup):
    config = recipes.CPU.model_config(kind="dsdl")
    assert config.output_stride == recipes.CPU.output_stride == recipes.CPU.model_config(kind="msrn").output_stride
    with pytest.raises(ValueError, match="output_stride"):
        DSDLConfig(output_stride=8)
    coarse, dense = (make_model(setup, DSDLConfig(**TINY, output_stride=stride)) for stride in (32, 16))
    images = torch.randn(2, 3, 64, 64)
    assert dense.trunk(images, (4,))[4].shape[-2:] == (4, 4) and coarse.trunk(images, (4,))[4].shape[-2:] == (2, 2)
    assert dense(images).logits.shape == (2, len(setup.class_names))
