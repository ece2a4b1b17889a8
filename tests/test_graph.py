"""Tests of msrn_core.graph: co-occurrence statistics and the ML-GCN adjacency (paper section 3.2)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from msrn_core.graph import (
    LabelGraph,
    binarize,
    conditional_probabilities,
    cooccurrence_counts,
    edge_density,
    gat_mask,
    graph_summary,
    mlgcn_adjacency,
    neighbour_counts,
    reweight,
    to_networkx,
)

# A tiny training set the reader can check by hand: 5 images, 3 labels.
NAMES = ["person", "dog", "sofa"]
LABELS = np.array(
    [
        [1, 1, 0],  # image 0: person, dog
        [1, 1, 1],  # image 1: person, dog, sofa
        [1, 0, 0],  # image 2: person
        [0, 1, 1],  # image 3: dog, sofa
        [1, 0, 0],  # image 4: person
    ],
    dtype=np.uint8,
)
# nums: person in images 0,1,2,4; dog in 0,1,3; sofa in 1,3.
EXPECTED_NUMS = np.array([4, 3, 2])
# counts: person&dog in 0,1; person&sofa in 1; dog&sofa in 1,3. Zero diagonal.
EXPECTED_COUNTS = np.array(
    [
        [0, 2, 1],
        [2, 0, 2],
        [1, 2, 0],
    ]
)
# P[i, j] = counts[i, j] / nums[i] = P(j | i).
EXPECTED_P = np.array(
    [
        [0.0, 2 / 4, 1 / 4],  # given person: dog 0.5, sofa 0.25
        [2 / 3, 0.0, 2 / 3],  # given dog: person 0.67, sofa 0.67
        [1 / 2, 2 / 2, 0.0],  # given sofa: person 0.5, dog 1.0
    ]
)
# t = 0.4 keeps every off-diagonal pair except person -> sofa (0.25).
EXPECTED_BINARY = np.array(
    [
        [0, 1, 0],
        [1, 0, 1],
        [1, 1, 0],
    ],
    dtype=float,
)


# ----------------------------------------------------------------- independent ML-GCN reference
def reference_gen_A(num_classes: int, t: float, adj: np.ndarray, nums: np.ndarray) -> np.ndarray:
    """ML-GCN's ``gen_A`` (util.py of the official code), rewritten from the formula."""
    _adj = adj / nums[:, np.newaxis]
    _adj[_adj < t] = 0
    _adj[_adj >= t] = 1
    _adj = _adj * 0.25 / (_adj.sum(0, keepdims=True) + 1e-6)
    _adj = _adj + np.identity(num_classes, int)
    return _adj


def reference_gen_adj(A: torch.Tensor) -> torch.Tensor:
    """ML-GCN's ``gen_adj`` (in double precision instead of ``.float()`` to compare tightly)."""
    D = torch.pow(A.sum(1).double(), -0.5)
    D = torch.diag(D)
    return torch.matmul(torch.matmul(A, D).t(), D)


def random_labels(num_images: int = 300, num_classes: int = 12, seed: int = 0) -> np.ndarray:
    """A random label matrix with uneven label frequencies and every label present."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.6, size=num_classes)
    labels = (rng.random((num_images, num_classes)) < freq).astype(np.uint8)
    labels[0] = 1  # every label occurs at least once
    return labels


# ----------------------------------------------------------------- statistics
def test_counts_nums_and_probabilities_by_hand():
    counts, nums = cooccurrence_counts(LABELS)
    np.testing.assert_array_equal(counts, EXPECTED_COUNTS)
    np.testing.assert_array_equal(nums, EXPECTED_NUMS)
    P = conditional_probabilities(counts, nums)
    np.testing.assert_allclose(P, EXPECTED_P)
    assert P.dtype == np.float64


def test_counts_symmetric_with_zero_diagonal():
    counts, nums = cooccurrence_counts(random_labels())
    np.testing.assert_array_equal(counts, counts.T)
    np.testing.assert_array_equal(np.diag(counts), 0)
    # an off-diagonal count never exceeds either label's own count
    assert (counts <= nums[:, None]).all() and (counts <= nums[None, :]).all()


def test_probabilities_are_conditionals():
    counts, nums = cooccurrence_counts(random_labels())
    P = conditional_probabilities(counts, nums)
    assert ((P >= 0) & (P <= 1)).all()
    np.testing.assert_array_equal(np.diag(P), 0)
    # Bayes: P(j|i) nums[i] = P(i|j) nums[j] = counts[i, j]
    np.testing.assert_allclose(P * nums[:, None], (P * nums[:, None]).T)


def test_non_binary_labels_rejected():
    with pytest.raises(ValueError, match="0 and 1"):
        cooccurrence_counts(np.array([[1, -1], [0, 1]]))


def test_label_without_positives_gives_zero_row():
    labels = np.concatenate([LABELS, np.zeros((5, 1), dtype=np.uint8)], axis=1)
    names = NAMES + ["unicorn"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero" / "invalid value" warning
        graph = LabelGraph.from_labels(labels, names)
    assert graph.nums[3] == 0
    np.testing.assert_array_equal(graph.probabilities[3], 0)
    np.testing.assert_array_equal(graph.probabilities[:, 3], 0)
    for matrix in (graph.probabilities, graph.binary, graph.reweighted, graph.normalized):
        assert np.isfinite(matrix).all()
    # the empty label keeps only its self loop, and is reported isolated
    assert graph.normalized[3, 3] == pytest.approx(1.0)
    np.testing.assert_array_equal(np.delete(graph.normalized[3], 3), 0)
    assert "unicorn" in graph_summary(graph)


# ----------------------------------------------------------------- ML-GCN adjacency
def test_binary_and_reweighted_by_hand():
    graph = LabelGraph.from_labels(LABELS, NAMES, t=0.4, p=0.25)
    np.testing.assert_array_equal(graph.binary, EXPECTED_BINARY)
    # column sums of A: 2, 2, 1  ->  A' = 0.25 * A / colsum + I
    expected = np.array(
        [
            [1.0, 0.125, 0.0],
            [0.125, 1.0, 0.25],
            [0.125, 0.125, 1.0],
        ]
    )
    np.testing.assert_allclose(graph.reweighted, expected, rtol=1e-5)
    # one entry of A_hat by hand: A_hat[0, 1] = A'[1, 0] / sqrt(rowsum0 * rowsum1)
    assert graph.normalized[0, 1] == pytest.approx(0.125 / np.sqrt(1.125 * 1.375), rel=1e-5)


@pytest.mark.parametrize("t", [0.2, 0.4, 0.6])
@pytest.mark.parametrize("seed", [0, 1])
def test_adjacency_matches_reference_mlgcn(t, seed):
    labels = random_labels(seed=seed)
    counts, nums = cooccurrence_counts(labels)
    P = conditional_probabilities(counts, nums)
    ours = mlgcn_adjacency(P, t=t, p=0.25)

    A_ref = reference_gen_A(labels.shape[1], t, counts.astype(float), nums.astype(float))
    expected = reference_gen_adj(torch.from_numpy(A_ref)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)

    graph = LabelGraph.from_labels(labels, [f"c{i}" for i in range(labels.shape[1])], t=t)
    np.testing.assert_allclose(graph.normalized, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(graph.reweighted, A_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("labels", [LABELS, random_labels(seed=2)])
def test_adjacency_support_is_transposed_edges_plus_diagonal(labels):
    n = labels.shape[1]
    graph = LabelGraph.from_labels(labels, [f"c{i}" for i in range(n)])
    A_hat = graph.normalized
    assert (np.diag(A_hat) > 0).all()
    expected_support = (graph.binary.T > 0) | np.eye(n, dtype=bool)
    np.testing.assert_array_equal(A_hat > 0, expected_support)
    assert (A_hat >= 0).all()


def test_reweight_columns_sum_to_p():
    binary = binarize(conditional_probabilities(*cooccurrence_counts(random_labels())), 0.3)
    reweighted = reweight(binary, p=0.25)
    neighbours = reweighted - np.eye(len(binary))
    col_sums = neighbours.sum(axis=0)
    has_edges = binary.sum(axis=0) > 0
    np.testing.assert_allclose(col_sums[has_edges], 0.25, rtol=1e-5)


def test_invalid_threshold_rejected():
    with pytest.raises(ValueError):
        mlgcn_adjacency(EXPECTED_P, t=0.0)


# ----------------------------------------------------------------- GAT mask
def test_gat_mask_includes_diagonal_and_matches_edges():
    graph = LabelGraph.from_labels(LABELS, NAMES)
    mask = gat_mask(graph.normalized)
    assert mask.dtype == torch.bool and mask.shape == (3, 3)
    assert mask.diagonal().all()
    expected = torch.from_numpy((graph.binary.T > 0) | np.eye(3, dtype=bool))
    assert torch.equal(mask, expected)
    assert torch.equal(graph.mask(), mask)
    # also accepts a tensor, and an all-zero matrix still has its self loops
    assert torch.equal(gat_mask(graph.adjacency_tensor()), mask)
    assert torch.equal(gat_mask(np.zeros((4, 4))), torch.eye(4, dtype=torch.bool))


# ----------------------------------------------------------------- descriptions
def test_edge_density_by_hand_and_monotone():
    thresholds = [0.0, 0.25, 0.4, 0.5, 0.6, 0.7, 1.0, 1.01]
    num_edges, density = edge_density(EXPECTED_P, thresholds)
    np.testing.assert_array_equal(num_edges, [6, 6, 5, 5, 3, 1, 1, 0])
    np.testing.assert_allclose(density, np.array([6, 6, 5, 5, 3, 1, 1, 0]) / 6)

    P = conditional_probabilities(*cooccurrence_counts(random_labels()))
    grid = np.linspace(0, 1, 41)
    num_edges, density = edge_density(P, grid)
    assert (np.diff(num_edges) <= 0).all()
    assert ((density >= 0) & (density <= 1)).all()


def test_neighbour_counts_by_hand_and_equal_to_the_rows_of_A_hat():
    # P(i | j) >= 0.4: person is implied by dog (0.67) and sofa (0.5); dog by person (0.5) and sofa
    # (1.0); sofa by dog (0.67) only (person -> sofa is 0.25)
    np.testing.assert_array_equal(neighbour_counts(EXPECTED_P, 0.4), [2, 2, 1])
    np.testing.assert_array_equal(neighbour_counts(EXPECTED_P, 0.6), [1, 1, 1])
    for seed in (0, 3):  # what label i gathers from in the GCN / GAT: the off-diagonal non-zeros of row i of A_hat
        labels = random_labels(seed=seed)
        graph = LabelGraph.from_labels(labels, [f"c{i}" for i in range(labels.shape[1])], t=0.4)
        rows = graph.normalized > 0
        np.fill_diagonal(rows, False)
        np.testing.assert_array_equal(neighbour_counts(graph.probabilities, graph.t), rows.sum(axis=1))


def test_to_networkx_edge_set():
    labels = random_labels(seed=3)
    names = [f"c{i}" for i in range(labels.shape[1])]
    graph = LabelGraph.from_labels(labels, names, t=0.4)
    P = graph.probabilities
    for t in (0.2, 0.4):
        G = to_networkx(P, names, t=t)
        expected = {
            (names[i], names[j])
            for i in range(len(names))
            for j in range(len(names))
            if i != j and P[i, j] >= t
        }
        assert set(G.edges) == expected
        for i, j in zip(*np.nonzero(P >= t)):
            if i != j:
                assert G.edges[names[i], names[j]]["weight"] == pytest.approx(P[i, j])

    G = to_networkx(graph)  # the graph's own names, t and counts
    assert list(G.nodes) == names
    assert [G.nodes[name]["count"] for name in names] == graph.nums.tolist()
    assert G.number_of_edges() == int(edge_density(P, [0.4])[0][0])


def test_to_networkx_by_hand():
    G = to_networkx(EXPECTED_P, NAMES, t=0.4)
    assert set(G.edges) == {
        ("person", "dog"),
        ("dog", "person"),
        ("dog", "sofa"),
        ("sofa", "person"),
        ("sofa", "dog"),
    }
    assert G.edges["sofa", "dog"]["weight"] == pytest.approx(1.0)


def test_graph_summary():
    graph = LabelGraph.from_labels(LABELS, NAMES)
    text = graph_summary(graph)
    assert "n = 3" in text
    assert "edges (i != j): 5" in text
    assert "isolated labels (0): none" in text
    text = graph_summary(LabelGraph.from_labels(LABELS, NAMES, t=1.0))
    assert "edges (i != j): 1" in text
    assert "isolated labels (1): person" in text
