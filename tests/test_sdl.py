"""SDL and the zero-shot protocol: the loss by hand, the score, the split, the metrics, training."""
import itertools
import math

import numpy as np
import pytest
import torch

from msrn_core.extras import zero_shot as zs
from msrn_core.running.checkpoints import model_from_checkpoint
from msrn_core.running.experiment import make_model, setup_from_splits
from msrn_core.metrics import average_precision
from msrn_core.model import build_model, model_config
from msrn_core.extras.sdl import SDL, SDLConfig, relevance_scores, sdl_loss
from msrn_core.running.training import TrainConfig, loss_terms, predict, train_model
from msrn_core.utils import seed_everything


# ------------------------------------------------------------------------------------ the loss
def test_loss_equals_a_hand_computed_example():
    tags = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # 3 tags in a 2-d label space
    principal = torch.tensor([
        [[1.0, 0.0], [0.0, 2.0]],  # image 1: scores max(1, 0) = 1, max(0, 2) = 2, max(1, 2) = 2
        [[0.0, 0.0], [1.0, -1.0]],  # image 2: scores max(0, 1) = 1, max(0, -1) = 0, max(0, 0) = 0
    ])
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    lam = 0.1
    # image 1: positives {0, 1}, negative {2}: pairs (2 - 1) and (2 - 2), divided by |P| = 2
    rank1 = (math.log(1 + math.e) + math.log(2)) / 2
    weight1 = 1 + (0.5 + 0.5)  # per-coordinate variance of (1, 0) and (0, 1): 0.5 each
    reg1 = 0.5 + 2.0  # variance across the 2 principal vectors: coordinate 0 (1, 0), coordinate 1 (0, 2)
    # image 2: positive {2}, negatives {0, 1}: pairs (1 - 0) and (0 - 0); one positive: diversity 0
    rank2 = math.log(1 + math.e) + math.log(2)
    weight2 = 1.0
    reg2 = 0.5 + 0.5
    expected_main = (weight1 * rank1 + weight2 * rank2) / 2
    expected_total = expected_main + lam * (reg1 + reg2) / 2
    total, main = sdl_loss(principal, tags, targets, regularization_weight=lam)
    assert main.item() == pytest.approx(expected_main, rel=1e-6)
    assert total.item() == pytest.approx(expected_total, rel=1e-6)


def test_unknown_labels_are_negatives_and_stay_out_of_the_diversity():
    """The hand example again with -1 (unknown) and a soft 0.5 where it had 0: the same loss, as in the
    authors' code (positives: y == 1; negatives: every other tag)."""
    tags = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    principal = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [1.0, -1.0]]])
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unknown = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 0.5, 1.0]])
    expected = sdl_loss(principal, tags, targets, regularization_weight=0.1)
    total, main = sdl_loss(principal, tags, unknown, regularization_weight=0.1)
    assert total.item() == pytest.approx(expected[0].item(), rel=1e-6)
    assert main.item() == pytest.approx(expected[1].item(), rel=1e-6)


def authors_sdl_loss(principal, tags, targets, w):
    """The authors' SDL_loss.py written out in NumPy from its formula, image by image (float64):
    ``2 ((1 - w) (1 + diversity) sum log(1 + exp(s_n - s_p)) / |P| + w ||Var_rows(A)||_1)``, positives
    ``y == 1``, negatives ``(1 - y) != 0``, no negative: ``v = -s_p``; variances unbiased."""
    losses = []
    for a, y, in zip(np.asarray(principal, dtype=np.float64), np.asarray(targets, dtype=np.float64)):
        v_tags = np.asarray(tags, dtype=np.float64)
        scores = (a @ v_tags.T).max(axis=0)
        pos, neg = scores[y == 1], scores[(1 - y) != 0]
        v = neg[None, :] - pos[:, None] if len(neg) else -pos[:, None]
        positive_vectors = v_tags[y == 1]
        diversity = positive_vectors.var(axis=0, ddof=1).sum() if len(positive_vectors) > 1 else 0.0
        ranking = (1 + diversity) * np.log(1 + np.exp(v)).sum() / len(pos)
        regulariser = np.abs(a.var(axis=0, ddof=1)).sum()
        losses.append(2 * ((1 - w) * ranking + w * regulariser))
    return float(np.mean(losses))


@pytest.mark.parametrize("w", [0.3, 0.01])  # their class default, their train.py's --var_weight
def test_loss_is_the_authors_up_to_their_constant_factor(w):
    """Theirs = 2 (1 - w) x ours with lambda = w / (1 - w), with unknown (-1) and soft targets present."""
    generator = torch.Generator().manual_seed(0)
    principal = torch.randn(6, 4, 5, generator=generator, dtype=torch.float64)
    tags = torch.randn(9, 5, generator=generator, dtype=torch.float64)
    targets = (torch.rand(6, 9, generator=generator) < 0.4).double()
    targets[:, 0] = 1  # every image has a positive
    targets[1] = 0
    targets[1, 3] = 1  # one image with a single positive
    targets[2, 1:] = 1  # one image with no negative
    targets[3, 5:7] = -1  # unknown labels
    targets[4, 8] = 0.5  # a soft label
    total, _ = sdl_loss(principal, tags, targets, regularization_weight=w / (1 - w))
    assert 2 * (1 - w) * total.item() == pytest.approx(authors_sdl_loss(principal, tags, targets, w), rel=1e-6)


def test_degenerate_images_are_defined():
    principal = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    tags = torch.eye(2)
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # no negative; no positive
    total, main = sdl_loss(principal, tags, targets, regularization_weight=0.0)
    # image 1, no negative: both positives (score 1) ranked against 0, / |P| = 2, weight 1 + 1;
    # image 2, no positive: nothing to rank, 0
    image1 = (1 + 1.0) * (2 * math.log(1 + math.exp(-1))) / 2
    assert main.item() == pytest.approx((image1 + 0.0) / 2, rel=1e-6)
    assert torch.isfinite(total)


# ------------------------------------------------------------------------------------ the model
def tiny_sdl(num_tags=5, width=6, k=3):
    seed_everything(0)
    tags = torch.randn(num_tags, width)
    return SDL(SDLConfig(backbone="resnet18", num_principal=k), tags), tags


def test_score_is_the_maximum_over_principal_vectors():
    model, tags = tiny_sdl()
    images = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        principal = model.principal_vectors(images)
        logits = model(images).logits
    assert principal.shape == (2, 3, 6) and logits.shape == (2, 5)
    for b, j in itertools.product(range(2), range(5)):
        dots = [float(principal[b, r] @ tags[j]) for r in range(3)]
        assert logits[b, j].item() == pytest.approx(max(dots), rel=1e-5, abs=1e-6)
    assert torch.allclose(relevance_scores(principal, tags), logits)


def test_swapped_tags_rank_any_tag_and_the_trained_tags_come_back():
    model, tags = tiny_sdl()
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    other = torch.randn(4, 6)
    with torch.no_grad():
        everything = torch.cat([tags, other])
        with model.use_tags(everything):
            all_scores = model(images).logits
        with model.use_tags(other):
            other_scores = model(images).logits
        seen_scores = model(images).logits
    assert all_scores.shape == (2, 9)
    assert torch.allclose(other_scores, all_scores[:, 5:]) and torch.allclose(seen_scores, all_scores[:, :5])
    assert torch.equal(model.label_features, tags)
    with pytest.raises(ValueError, match="same label-feature provider"):
        with model.use_tags(torch.randn(3, 7)):
            pass


def test_the_head_has_no_bias_as_the_authors():
    """Their embedding layer is Linear(num_features, k * w, bias=False): A is linear in the pooled features."""
    model, _ = tiny_sdl()
    assert model.head.bias is None
    pooled = torch.randn(2, model.trunk.channels[4])
    with torch.no_grad():
        assert torch.equal(model.head(torch.zeros_like(pooled)), torch.zeros(2, 3 * 6))
        assert torch.allclose(model.head(2 * pooled), 2 * model.head(pooled))


def test_config_is_registered_and_validated():
    config = model_config("sdl", backbone="resnet18", num_principal=2)
    assert isinstance(config, SDLConfig)
    assert isinstance(build_model(config, torch.randn(4, 8), torch.eye(4)), SDL)
    with pytest.raises(ValueError, match="num_principal"):
        SDLConfig(num_principal=0)


# ------------------------------------------------------------------------------------ the protocol
def test_split_holds_out_one_class_per_family_with_a_fixed_seed(small_scenes):
    train = small_scenes[2]
    split = zs.scene_split(train, seed=0)
    families = dict(zip(train.class_names, train.class_families))
    unseen_families = [families[name] for name in split.unseen]
    assert sorted(unseen_families) == sorted(set(train.class_families))  # exactly one per family
    for family in set(train.class_families):
        assert any(families[name] == family for name in split.seen)
    assert zs.scene_split(train, seed=0) == split
    assert len({zs.scene_split(train, seed=s).unseen for s in range(5)}) > 1
    with pytest.raises(ValueError, match="no seen relative"):
        zs.split_by_family(["a", "b", "c"], ["x", "x", "y"])


def test_training_data_keeps_seen_tags_and_drops_images_without_one(small_scenes):
    train = small_scenes[2]
    seen = ["car", "bus"]
    restricted = zs.restrict_to_tags(train, seen)
    columns = [train.class_names.index(t) for t in seen]
    has_seen = train.labels[:, columns].any(axis=1)
    assert restricted.class_names == seen
    assert len(restricted) == int(has_seen.sum()) < len(train)
    np.testing.assert_array_equal(restricted.labels, train.labels[has_seen][:, columns])
    image, target, _ = restricted[0]
    assert target.tolist() == restricted.labels[0].tolist()
    kept = zs.restrict_to_tags(train, seen, drop_images_without_positive=False)
    assert len(kept) == len(train)


def test_top_k_metrics_against_a_hand_example():
    scores = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.3, 0.9], [0.5, 0.4, 0.3, 0.2]])
    targets = np.array([[1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]])  # image 3: no positive, excluded
    metrics = zs.ranking_metrics(scores, targets, ks=(1, 3))
    assert metrics["num_images"] == 2
    # top-1: tag 0 (hit), tag 3 (hit): P = 2/2, R = 2/4
    assert metrics["P@1"] == pytest.approx(1.0) and metrics["R@1"] == pytest.approx(0.5)
    assert metrics["F1@1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # top-3: {0, 1, 3} has 1 hit, {3, 2, 1} has 2 hits: P = 3/6, R = 3/4
    assert metrics["P@3"] == pytest.approx(0.5) and metrics["R@3"] == pytest.approx(0.75)
    # mAP over the tags with a positive (0, 2, 3) on the two kept images
    aps = [average_precision(scores[:2, j], targets[:2, j]) for j in (0, 2, 3)]
    assert metrics["mAP"] == pytest.approx(np.mean(aps))
    assert aps == pytest.approx([1.0, 1.0, 1.0])


def authors_map(scores, targets):
    """The SDL authors' mAP (helper_functions.py) written out: per tag, the precision at each positive of
    the images ranked by score, summed and divided by (number of positives + 1e-8), averaged over
    *all* tags, those without a positive counting 0; images without a positive are dropped first."""
    keep = (targets == 1).any(axis=1)
    scores, targets = scores[keep], targets[keep]
    aps = []
    for j in range(scores.shape[1]):
        ranked = targets[np.argsort(-scores[:, j]), j] == 1
        hits = np.cumsum(ranked)
        aps.append(np.sum(hits / np.arange(1, len(ranked) + 1) * ranked) / (ranked.sum() + 1e-8))
    return float(np.mean(aps))


def test_map_convention_for_tags_without_a_positive():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4], [0.3, 0.6, 0.7]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])  # tag 2 has no positive
    # tag 0: images ranked 0 (+), 2 (+), 1: AP 1; tag 1: ranked 1 (+), 2 (+), 0: AP 1
    assert zs.ranking_metrics(scores, targets, ks=(1,))["mAP"] == pytest.approx(1.0)  # tag 2 left out
    assert zs.ranking_metrics(scores, targets, ks=(1,), tags_without_positive="zero")["mAP"] == pytest.approx(2 / 3)
    assert zs.expected_random_metrics(targets, ks=(1,), tags_without_positive="zero")["mAP"] == pytest.approx(
        2 / 3 * zs.expected_random_metrics(targets, ks=(1,))["mAP"])
    with pytest.raises(ValueError, match="tags_without_positive"):
        zs.ranking_metrics(scores, targets, tags_without_positive="nan")


def test_the_authors_map_convention_equals_their_formula():
    rng = np.random.default_rng(2)
    scores = rng.random((30, 8))
    targets = (rng.random((30, 8)) < 0.25).astype(np.int64)
    targets[:, 5] = 0  # two tags without any positive
    targets[:, 7] = 0
    ours = zs.ranking_metrics(scores, targets, tags_without_positive="zero")["mAP"]
    assert ours == pytest.approx(authors_map(scores, targets), abs=1e-7)
    assert zs.ranking_metrics(scores, targets)["mAP"] == pytest.approx(8 / 6 * authors_map(scores, targets), abs=1e-7)


def test_zero_shot_evaluation_excludes_seen_tags():
    split = zs.split_by_family(["a", "b", "c", "d", "e"], ["x", "x", "y", "y", "y"], seed=0)
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 5)) < 0.4).astype(np.uint8)
    scores = rng.random((40, 5))
    results = zs.zero_shot_metrics(scores, targets, split)
    unseen = split.unseen_indices
    assert results["ZSL"] == zs.ranking_metrics(scores[:, unseen], targets[:, unseen])
    assert results["ZSL"]["num_images"] == int(targets[:, unseen].any(axis=1).sum())
    # perfect or absurd scores for the seen tags change GZSL, never ZSL
    tampered = scores.copy()
    tampered[:, split.seen_indices] = 10 * targets[:, split.seen_indices] - 100
    changed = zs.zero_shot_metrics(tampered, targets, split)
    assert changed["ZSL"] == results["ZSL"]
    assert changed["GZSL"] != results["GZSL"]


def test_expected_random_ap_matches_every_permutation():
    for n, p in [(5, 1), (5, 2), (6, 3), (4, 4)]:
        labels = np.array([1] * p + [0] * (n - p))
        aps = []
        for order in itertools.permutations(range(n)):  # order[r] is the item ranked r-th
            scores = np.empty(n)
            scores[list(order)] = np.arange(n, 0, -1)
            aps.append(average_precision(scores, labels))
        assert zs.expected_random_ap(p, n) == pytest.approx(np.mean(aps)), (n, p)


def test_random_baseline_expectation_agrees_with_random_rankings():
    targets = (np.random.default_rng(1).random((120, 7)) < 0.3).astype(np.uint8)
    expected = zs.expected_random_metrics(targets)
    sampled = zs.random_ranking_metrics(targets, seeds=range(200))
    assert expected["num_images"] == sampled["num_images"] == int(targets.any(axis=1).sum())
    for key in ("mAP", "P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5"):
        assert sampled[key] == pytest.approx(expected[key], abs=0.01), key


# ------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def seen(small_scenes):
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    split = zs.scene_split(train)
    return setup, split, zs.seen_setup(setup, split)


def test_a_few_steps_reduce_the_loss_on_tiny_builtin_images(seen):
    _, split, seen_setup = seen
    seed_everything(0)
    model = make_model(seen_setup, SDLConfig(backbone="resnet18"))
    assert model.num_classes == len(split.seen)
    images, targets = zip(*[seen_setup.train[i][:2] for i in range(8)])
    images, targets = torch.stack(images), torch.stack(targets)
    optimizer = torch.optim.SGD(model.parameter_groups(0.01, 1.0), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(6):
        loss, _ = loss_terms(model(images), targets, 1e-3, model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_trains_checkpoints_and_ranks_unseen_tags(seen, tmp_path):
    setup, split, seen_setup = seen
    seed_everything(0)
    model = make_model(seen_setup, SDLConfig(backbone="resnet18", num_principal=2))
    config = TrainConfig(epochs=1, batch_size=16, lr=0.01, backbone_lr_mult=1.0, num_workers=0,
                         max_steps_per_epoch=2, progress=False, device="cpu")
    train_model(model, seen_setup.train, seen_setup.val, config, tmp_path)
    rebuilt, class_names, _ = model_from_checkpoint(tmp_path / "last.pt")
    assert isinstance(rebuilt, SDL) and class_names == split.seen
    with rebuilt.use_tags(setup.label_features):  # every tag, as notebook 08 scores them
        scores, targets, _, _ = predict(rebuilt, setup.test, device="cpu")
    with model.use_tags(setup.label_features):
        expected, _, _, _ = predict(model, setup.test, device="cpu")
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert scores.shape == (len(setup.test), len(setup.class_names))
    results = zs.zero_shot_metrics(scores, targets, split)
    # ZSL mAP: per unseen tag, the AP of ranking the test images that hold an unseen tag
    unseen_targets = targets[:, split.unseen_indices]
    kept = unseen_targets.any(axis=1)
    aps = [average_precision(scores[kept][:, j], targets[kept][:, j]) for j in split.unseen_indices
           if targets[kept][:, j].any()]
    assert results["ZSL"]["mAP"] == pytest.approx(np.mean(aps))
    assert results["ZSL"]["num_images"] == int(kept.sum())


# ------------------------------------------------------------------------------------ figures
def test_principal_vector_figure_marks_the_winning_vector_and_ranks_the_unseen_tags(tmp_path):
    from msrn_core import plots

    generator = torch.Generator().manual_seed(0)
    tags = torch.randn(6, 5, generator=generator)
    principal = torch.randn(3, 5, generator=generator)
    names = ["a", "b", "c", "d", "e", "f"]
    fig = plots.plot_principal_vectors(torch.rand(3, 16, 16), principal, tags, names, unseen=["b", "d", "f"],
                                       positives=["a", "d"])
    image_ax, heat_ax, rank_ax = fig.axes[:3]
    products = (principal @ tags.T).numpy()
    dots = heat_ax.lines[0]
    np.testing.assert_array_equal(dots.get_ydata(), products.argmax(axis=0))
    scores = products.max(axis=0)
    ranked = [label.get_text() for label in rank_ax.get_yticklabels()]
    assert ranked == sorted(["b", "d", "f"], key=lambda n: scores[names.index(n)])
    np.testing.assert_allclose([bar.get_width() for bar in rank_ax.patches],
                               [scores[names.index(n)] for n in ranked], rtol=1e-6)
    with pytest.raises(ValueError, match="k x w"):
        plots.plot_principal_vectors(torch.rand(3, 16, 16), principal, tags[:, :4], names, [], [])
    path = plots.save_figure(fig, "sdl_test", directory=tmp_path)
    assert path.exists()


def test_similarity_figure_frames_the_most_similar_seen_tag():
    from msrn_core import plots

    similarity = np.array([[0.1, 0.9, 0.3], [0.7, 0.2, 0.1]])
    fig = plots.plot_unseen_similarity(similarity, ["u1", "u2"], ["s1", "s2", "s3"],
                                       families={"u1": "x", "s2": "x", "u2": "y", "s1": "y", "s3": "x"})
    frames = [p for p in fig.axes[0].patches if p.get_edgecolor()[:3] == (1.0, 1.0, 1.0)]
    assert sorted((p.get_x(), p.get_y()) for p in frames) == [(0, 1), (1, 0)]
    dots = [(line.get_xdata()[0], line.get_ydata()[0]) for line in fig.axes[0].lines]
    assert len(dots) == 3  # u1 with s2 and s3, u2 with s1
