"""The objective term by term, by hand, and the one training step against the loop it replaced."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from msrn_core.layers import COMPACTNESS_FORMS
from msrn_core.model import ModelConfig
from msrn_core.objective import LossWeights, loss_weights, model_objective, objective
from msrn_core.running.experiment import make_model
from msrn_core.running.optimization import make_optimizer, make_scheduler
from msrn_core.running.training import TrainConfig, loss_gradient_norms, train_model
from msrn_core.training_step import NonFiniteLossError, training_step
from msrn_core.utils import seed_everything

SMALL_MODEL = dict(backbone="resnet18", fc_hidden=64, embed_dim=64, gat_hidden=32)


def batch(setup, start: int, size: int = 8):
    images, targets = zip(*[setup.train[i][:2] for i in range(start, start + size)])
    return torch.stack(images), torch.stack(targets)


def loss_by_hand(model, output, targets, weights: LossWeights) -> torch.Tensor:
    """Eq. 1 + lambda eq. 6 + mu ||A - S S^T||_F / n in plain torch (as notebook 05 computes it)."""
    p = torch.sigmoid(output.logits.float())
    bce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
    lge = model.label_group_embeddings()
    label_embeddings, group_embeddings, s = lge["label_embeddings"], lge["group_embeddings"], lge["assignment"]
    distances = (group_embeddings[s.argmax(dim=1)] - label_embeddings).norm(dim=1)
    compactness = {"paper": distances.pow(2).sum(), "paper_mean": distances.pow(2).mean(),
                   "authors": distances.sum()}[model.config.compactness_form]
    a = (model.gat_mask | model.gat_mask.T).float()
    link = torch.linalg.matrix_norm(a - s @ s.T) / len(label_embeddings)
    return bce + weights.compactness * compactness + weights.group_link * link


@pytest.mark.parametrize("form", sorted(COMPACTNESS_FORMS))
def test_the_objective_equals_the_loss_by_hand(setup, form):
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL, compactness_form=form)).eval()
    images, targets = batch(setup, 0, 4)
    weights = loss_weights(model, None, group_link_weight=0.5)
    assert weights == LossWeights(COMPACTNESS_FORMS[form], 0.5)
    with torch.no_grad():
        output = model(images)
        total, terms = objective(output, targets, weights)
        by_hand = loss_by_hand(model, output, targets, weights)
    assert list(terms) == ["bce", "compactness", "group_link"]
    torch.testing.assert_close(total, by_hand, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, sum(terms.values()), rtol=0, atol=1e-6)
    without_link, terms = objective(output, targets, LossWeights(weights.compactness))
    assert "group_link" not in terms and torch.equal(without_link, terms["bce"] + terms["compactness"])


def former_step(model, images, targets, optimizer, scaler, scheduler, config: TrainConfig):
    """The body of train_model's step loop before the step became one function (the reference)."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    images = images.contiguous(memory_format=memory_format)
    with torch.autocast("cpu", dtype=torch.float32, enabled=False):
        output = model(images)
    bce = F.binary_cross_entropy_with_logits(output.logits.float(), targets)
    total = bce + COMPACTNESS_FORMS[model.config.compactness_form] * output.compactness.float()
    if config.group_link_weight and output.group_link is not None:
        total = total + config.group_link_weight * output.group_link.float()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    if config.schedule == "cosine":
        scheduler.step()
    return total.item(), bce.item()


@pytest.mark.parametrize("scaled", [False, True], ids=["no scaler", "scaled gradients"])
def test_the_training_step_repeats_the_former_loop_exactly(setup, scaled):
    config = TrainConfig(epochs=1, lr=0.05, schedule="cosine", warmup_epochs=0.5, channels_last=True,
                         group_link_weight=0.5, clip_grad_norm=1.0)
    runs = {}
    for path in ("former", "step"):
        seed_everything(0)
        model = make_model(setup, ModelConfig(**SMALL_MODEL, compactness_form="paper_mean")).train()
        model.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(model, config)
        scheduler = make_scheduler(optimizer, config, 3)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8, enabled=scaled)
        loss = model_objective(model, loss_weights(model, config.compactness_weight, config.group_link_weight))
        losses = []
        for start in (0, 8, 16):
            images, targets = batch(setup, start)
            if path == "former":
                losses.append(former_step(model, images, targets, optimizer, scaler, scheduler, config))
            else:
                done = training_step(model, images.contiguous(memory_format=torch.channels_last), targets, loss,
                                     optimizer, scaler, config.clip_grad_norm)
                scheduler.step()
                losses.append((done.loss.item(), done.terms["bce"].item()))
        runs[path] = losses, model.state_dict()
    (former_losses, former_state), (losses, state) = runs["former"], runs["step"]
    assert losses == former_losses
    assert all(torch.equal(state[key], value) for key, value in former_state.items())
    assert former_losses[-1][0] != former_losses[0][0]  # the three steps did train


def test_a_non_finite_loss_stops_the_step_before_any_weight_changes(setup):
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    before = {key: value.clone() for key, value in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images, targets = batch(setup, 0, 2)
    nan_loss = lambda output, targets: (output.logits.sum() * float("nan"), {"bce": output.logits.sum()})  # noqa: E731
    with pytest.raises(NonFiniteLossError, match="the loss became nan"):
        training_step(model, images, targets, nan_loss, optimizer)
    assert all(torch.equal(before[key], value) for key, value in model.named_parameters())


def test_the_gradient_diagnostic_takes_the_steps_of_train_model(setup, tmp_path):
    config = TrainConfig(epochs=1, batch_size=8, lr=0.01, backbone_lr_mult=1.0, num_workers=0, max_steps_per_epoch=3,
                         progress=False, seed=0, device="cpu", channels_last=True, group_link_weight=0.5)
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    norms = loss_gradient_norms(model, setup.train, config, steps=3)
    result = train_model(model, setup.train, setup.val, config, tmp_path)
    assert result.history[0]["train_bce"] == float(np.mean(norms["bce_value"]))
    totals = np.add(np.add(norms["bce_value"], norms["compactness_value"]), norms["group_link_value"])
    assert result.history[0]["train_loss"] == pytest.approx(float(np.mean(totals)), rel=1e-6)
    assert min(norms["group_link"]) > 0
