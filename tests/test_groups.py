"""msrn_core.groups: Diffpool fitted alone on fixed label features, and scoring groups."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from msrn_core.graph import normalize_adjacency, reweight
from msrn_core.groups import fit_label_groups, link_target, score_groups


def block_graph(sizes=(5, 5, 5)):
    """A_hat of a graph made of cliques (no edge between blocks), and the block of each node."""
    truth = np.repeat(np.arange(len(sizes)), sizes)
    binary = (truth[:, None] == truth[None, :]).astype(float)
    np.fill_diagonal(binary, 0)
    return normalize_adjacency(reweight(binary)), truth


@pytest.fixture(scope="module")
def fitted():
    adjacency, truth = block_graph()
    features = torch.randn(len(truth), 16, generator=torch.Generator().manual_seed(0))
    return fit_label_groups(features, adjacency, m=3, steps=300, seed=0), truth, features, adjacency


def test_shapes_and_rows_sum_to_one(fitted):
    result, truth, _, _ = fitted
    n = len(truth)
    assert result["assignment"].shape == (n, 3)
    assert result["groups"].shape == (n,)
    assert len(result["losses"]) == 300
    assert set(result["terms"]) == {"link", "entropy", "compactness"}
    torch.testing.assert_close(result["assignment"].sum(dim=1), torch.ones(n))
    assert (result["assignment"] >= 0).all()
    np.testing.assert_array_equal(result["groups"], result["assignment"].argmax(dim=1).numpy())


def test_losses_fall(fitted):
    losses = fitted[0]["losses"]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    link = fitted[0]["terms"]["link"]
    assert link[-1] < link[0]


def test_recovers_the_blocks_of_a_block_diagonal_graph(fitted):
    result, truth, _, _ = fitted
    assert adjusted_rand_score(truth, result["groups"]) >= 0.9


def test_seeded_and_leaves_global_rng_alone(fitted):
    _, _, features, adjacency = fitted
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = fit_label_groups(features, adjacency, m=3, steps=20, seed=5)
    torch.testing.assert_close(torch.rand(3), expected_next)  # caller's random stream untouched
    second = fit_label_groups(features.numpy(), adjacency, m=3, steps=20, seed=5)  # arrays work too
    torch.testing.assert_close(first["assignment"], second["assignment"])


def test_bad_arguments():
    adjacency, truth = block_graph()
    with pytest.raises(ValueError, match="adjacency"):
        fit_label_groups(torch.randn(len(truth) + 1, 4), adjacency, m=2, steps=1)
    with pytest.raises(ValueError, match="m must"):
        fit_label_groups(torch.randn(len(truth), 4), adjacency, m=0, steps=1)


def test_link_target_is_symmetric_binary_with_self_loops():
    A_hat = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(link_target(A_hat), expected)


THEMES = ["street", "kitchen", "farm"]
CLASS_THEMES = [["street"], ["street"], ["kitchen"], ["kitchen"], ["farm"], ["farm"], ["street", "farm"]]


def test_ari_matches_sklearn_on_a_hand_example():
    predicted = [0, 0, 1, 2, 2, 2, 0]
    first = [0, 0, 1, 1, 2, 2, 0]  # first theme of each class
    scores = score_groups(predicted, CLASS_THEMES, THEMES, class_names=list("abcdefg"))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(first, predicted))
    assert scores["ari_single_theme"] == pytest.approx(adjusted_rand_score(first[:6], predicted[:6]))
    assert scores["multi_theme"] == ["g"]
    table = scores["contingency"]
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == THEMES and list(table.columns) == ["group 0", "group 1", "group 2"]
    np.testing.assert_array_equal(table.to_numpy(), [[3, 0, 0], [0, 1, 1], [0, 0, 2]])
    assert table.to_numpy().sum() == len(CLASS_THEMES)


def test_contingency_prints_one_header_line_and_groups_are_named_by_their_theme():
    scores = score_groups([0, 0, 1, 2, 2, 2, 0], CLASS_THEMES, THEMES)
    text_lines = scores["contingency"].to_string().splitlines()
    assert text_lines[0].split() == ["first", "theme", "\\", "group", "group", "0", "group", "1", "group", "2"]
    assert [line.split()[0] for line in text_lines[1:]] == THEMES  # no row holding only the index's name
    assert scores["contingency"].to_html().count("<tr") == 1 + len(THEMES)
    # group 2 holds d (kitchen), e and f (farm); group 0 holds a, b and g (first theme street)
    assert scores["group_names"] == ["group 0: street (3 of 3)", "group 1: kitchen (1 of 1)",
                                     "group 2: farm (2 of 3)"]
    assert score_groups([3, 3, 3, 3, 3, 3, 3], CLASS_THEMES, THEMES)["group_names"] == [
        "group 0", "group 1", "group 2", "group 3: street (3 of 7)"]  # ids never used keep a plain name


def test_perfect_grouping_with_permuted_ids_scores_one():
    predicted = torch.tensor([7, 7, 3, 3, 5, 5, 7])  # any ids, any order; tensors accepted
    scores = score_groups(predicted, CLASS_THEMES, THEMES)
    assert scores["ari"] == pytest.approx(1.0)
    assert scores["ari_single_theme"] == pytest.approx(1.0)
    assert scores["multi_theme"] == [6]
    assert list(scores["contingency"].columns) == ["group 3", "group 5", "group 7"]


def test_score_groups_checks_lengths():
    with pytest.raises(ValueError, match="group ids"):
        score_groups([0, 1], CLASS_THEMES, THEMES)
