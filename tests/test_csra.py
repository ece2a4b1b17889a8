"""CSRA (class-specific residual attention) against a hand computation, the paper's formula,
the plain model it extends, and its training-free form."""
import math
from dataclasses import replace

import pytest
import torch

from msrn_core.csra import CSRABaseline, csra_logits, csra_on_plain
from msrn_core.model import ModelConfig, build_model, model_config


def two_by_two_example():
    """A 2 x 2 map with 2 channels and 2 classes; class 0 reads channel 0, class 1 channel 1 twice."""
    features = torch.zeros(1, 2, 2, 2)
    features[0, 0] = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # channel 0: one hot cell
    features[0, 1] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # channel 1: two cells
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    return features, weight


def test_csra_by_hand_on_a_two_by_two_map():
    features, weight = two_by_two_example()
    logits, scores = csra_logits(features, weight, temperature=1.0, lam=0.5, normalise=False)
    # class 0: scores (ln 3, 0, 0, 0); softmax weights (3, 1, 1, 1) / 6
    base0, attention0 = math.log(3.0) / 4, 3 / 6 * math.log(3.0)
    # class 1: scores (0, 2, 2, 0); softmax weights (1, e^2, e^2, 1) / (2 + 2 e^2)
    base1, attention1 = 1.0, 2 * 2 * math.exp(2) / (2 + 2 * math.exp(2))
    torch.testing.assert_close(logits, torch.tensor([[base0 + 0.5 * attention0, base1 + 0.5 * attention1]]))
    torch.testing.assert_close(scores[0, 1], torch.tensor([[0.0, 2.0], [2.0, 0.0]]))
    # T = inf is max pooling; normalising divides class 1's scores by ||m_1|| = 2
    logits, _ = csra_logits(features, weight, temperature=math.inf, lam=1.0, normalise=True)
    torch.testing.assert_close(logits, torch.tensor([[math.log(3.0) / 4 + math.log(3.0), 0.5 + 1.0]]))


@pytest.mark.parametrize("temperature", [0.5, 3.0])
@pytest.mark.parametrize("normalise", [False, True])
def test_csra_equals_the_papers_formula_on_features(temperature, normalise):
    """Paper: f_c = g + lambda sum_p softmax_p(T s_cp) x_p with g the average-pooled x; logit_c = m_c . f_c."""
    torch.manual_seed(0)
    features, weight, bias = torch.randn(3, 6, 4, 5), torch.randn(4, 6), torch.randn(4)
    logits, _ = csra_logits(features, weight, bias, temperature=temperature, lam=0.3, normalise=normalise)
    x = features.flatten(2)  # B x d x hw
    m = weight / weight.norm(dim=1, keepdim=True) if normalise else weight
    g = x.mean(-1)  # B x d
    scores = torch.einsum("bdp,cd->bcp", x, m)
    a = torch.einsum("bcp,bdp->bcd", torch.softmax(temperature * scores, dim=-1), x)  # class-specific features
    wanted = torch.einsum("bcd,cd->bc", g[:, None] + 0.3 * a, m) + bias
    torch.testing.assert_close(logits, wanted, rtol=1e-5, atol=1e-5)


def test_csra_with_lambda_zero_is_the_plain_logit():
    """lambda = 0: the average-pooled class score, exactly the plain logit without normalisation,
    and the plain logit less its bias divided by ||m_c|| with it (the same ranking per class)."""
    torch.manual_seed(0)
    plain = build_model(ModelConfig(kind="plain", backbone="resnet18"), torch.randn(3, 4), torch.eye(3)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        wanted = plain(images).logits
        features = plain.trunk(images, (4,))[4]
        weight, bias = plain.classifier.weight, plain.classifier.bias
        raw, _ = csra_logits(features, weight, bias, lam=0.0, normalise=False)
        scaled, _ = csra_logits(features, weight, bias, lam=0.0, normalise=True)
    torch.testing.assert_close(raw, wanted, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scaled, (wanted - bias) / weight.norm(dim=1) + bias, rtol=1e-5, atol=1e-6)


def test_csra_model_kind_and_its_maps():
    from msrn_core.running import recipes

    config = recipes.CPU.model_config(kind="csra", csra_temperature=2.0, csra_lambda=0.3)
    assert config.kind == "csra" and config.output_stride == recipes.CPU.output_stride
    model = build_model(replace(config, output_stride=32), torch.randn(5, 4), torch.eye(5)).eval()
    assert isinstance(model, CSRABaseline)
    with torch.no_grad():
        output = model(torch.randn(2, 3, 128, 128), details=True)
    details = output.details
    assert output.logits.shape == (2, 5) and details["branch_stages"] == [4]
    assert details["class_activation_map"].shape == (2, 5, 4, 4)
    features = model.trunk(torch.zeros(1, 3, 128, 128), (4,))[4]  # the maps are the normalised CAM
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, 128, 128), details=True).details["class_activation_map"]
    cam = torch.einsum("bkhw,ck->bchw", features, model.classifier.weight / model.classifier.weight.norm(dim=1, keepdim=True))
    torch.testing.assert_close(maps, cam, rtol=1e-5, atol=1e-6)
    assert model_config("csra").csra_lambda == 0.1  # the config of the kind, with its defaults


def test_training_free_csra_equals_the_trained_form_on_the_same_weights():
    torch.manual_seed(0)
    plain = build_model(ModelConfig(kind="plain", backbone="resnet18"), torch.randn(3, 4), torch.eye(3)).eval()
    images = torch.randn(2, 3, 64, 64)
    upgraded = csra_on_plain(plain, temperature=2.0, lam=0.5, normalise=True)
    trained_form = build_model(replace(plain.config, kind="csra", csra_temperature=2.0, csra_lambda=0.5),
                               plain.label_features, plain.adjacency).eval()
    trained_form.load_state_dict(plain.state_dict())  # a plain ResNet's weights are a CSRA model's
    with torch.no_grad():
        assert torch.equal(upgraded(images).logits, trained_form(images).logits)
        # lambda = 0 without normalisation: the plain model's own logits
        torch.testing.assert_close(csra_on_plain(plain, lam=0.0)(images).logits, plain(images).logits)
        upgraded.classifier.weight.zero_()  # a copy: the plain model is untouched
        assert plain.classifier.weight.abs().sum() > 0
    with pytest.raises(TypeError, match="plain ResNet"):
        csra_on_plain(trained_form)


def test_csra_rejects_bad_input():
    features, weight = two_by_two_example()
    with pytest.raises(ValueError, match="classifier n x d"):
        csra_logits(features, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="temperature"):
        csra_logits(features, weight, temperature=0.0)
