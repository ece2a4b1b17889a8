"""Label co-occurrence statistics and the ML-GCN adjacency (paper section 3.2; notebook 01).

MSRN builds its label graph exactly as ML-GCN (Chen et al., CVPR 2019, "Multi-Label Image
Recognition with Graph Convolutional Networks", section 3.3 and the official code's
``gen_A`` / ``gen_adj``). Every statistic comes from the TRAINING annotations only: counting
the test labels would leak them into the model.

The steps, each a function below so the tutorial can show them one by one:

1. ``counts[i, j]``: images holding both labels i and j (zero diagonal); ``nums[i]``: images
   holding label i.                                            -> :func:`cooccurrence_counts`
2. ``P[i, j] = counts[i, j] / nums[i] = P(label j | label i)``.  -> :func:`conditional_probabilities`
3. Binarise: ``A = 1[P >= t]`` (removes rare, noisy co-occurrences; ML-GCN eq. 7).
                                                                -> :func:`binarize`
4. Re-weight: ``A' = p * A / (column sums of A + 1e-6)``, then ``A' += I``: the official code's
   ``gen_A`` (ML-GCN's ``util.py``, copied unchanged into MSRN's), against over-smoothing. It is
   not ML-GCN's eq. 8, which divides by *row* sums and puts ``1 - p`` on the diagonal.
                                                                -> :func:`reweight`
5. Normalise: ``A_hat = D^-1/2 A'^T D^-1/2`` with ``D = diag(row sums of A')``
   (ML-GCN ``gen_adj``). The transpose makes row i of ``A_hat`` read the labels j with
   ``P(i | j) >= t``: label i gathers from the labels whose presence implies it, their weights
   summing to about ``p`` before the D scaling.                  -> :func:`normalize_adjacency`

:class:`LabelGraph` keeps all intermediate results; :func:`gat_mask` turns the graph into the
attention mask of the GAT layers; :func:`edge_density`, :func:`neighbour_counts`, :func:`to_networkx`
and :func:`graph_summary` describe the graph for the tutorial's figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np
import torch

from . import defaults
__all__ = [
    "LabelGraph",
    "binarize",
    "conditional_probabilities",
    "cooccurrence_counts",
    "edge_density",
    "gat_mask",
    "graph_summary",
    "mlgcn_adjacency",
    "neighbour_counts",
    "normalize_adjacency",
    "reweight",
    "to_networkx",
]

# ML-GCN's defaults (paper section 4.1 / official code): threshold tau and re-weight p.
DEFAULT_T = defaults.T  # 0.4
DEFAULT_P = defaults.P  # 0.25
_EPS = 1e-6  # the constant ML-GCN adds to the column sums


# --------------------------------------------------------------------------- statistics
def _as_label_matrix(labels) -> np.ndarray:
    """Check ``labels`` is an N x n matrix of 0/1 values and return it as int64."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be an N x n matrix, got shape {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(
            "labels must hold only 0 and 1 (map VOC's -1/'difficult' entries to 0 first)"
        )
    return labels.astype(np.int64)


def cooccurrence_counts(labels) -> tuple[np.ndarray, np.ndarray]:
    """Co-occurrence counts of the TRAINING label matrix.

    Args:
        labels: N images x n classes, 0/1.

    Returns:
        ``(counts, nums)``: ``counts[i, j]`` = number of images holding both labels i and j,
        with a zero diagonal (ML-GCN's ``adj``); ``nums[i]`` = number of images holding
        label i (ML-GCN's ``nums``). Both int64.
    """
    y = _as_label_matrix(labels)
    counts = y.T @ y  # (n x n): images holding i and j; diagonal = nums
    nums = counts.diagonal().copy()
    np.fill_diagonal(counts, 0)
    return counts, nums


def conditional_probabilities(counts: np.ndarray, nums: np.ndarray) -> np.ndarray:
    """``P[i, j] = counts[i, j] / nums[i]``: the probability of label j given label i.

    A label that never occurs (``nums[i] == 0``) gets a zero row instead of NaN (ML-GCN would
    divide by zero here). Returns float64, not symmetric in general.
    """
    counts = np.asarray(counts, dtype=np.float64)
    nums = np.asarray(nums, dtype=np.float64)
    P = np.zeros_like(counts)
    present = nums > 0
    P[present] = counts[present] / nums[present, None]
    return P


# --------------------------------------------------------------------------- ML-GCN adjacency
def binarize(P: np.ndarray, t: float = DEFAULT_T) -> np.ndarray:
    """Step 3 (ML-GCN eq. 7): ``A[i, j] = 1 if P[i, j] >= t else 0`` (float64)."""
    if not 0.0 < t <= 1.0:
        raise ValueError(f"threshold t must lie in (0, 1], got {t}")
    return (np.asarray(P, dtype=np.float64) >= t).astype(np.float64)


def reweight(binary: np.ndarray, p: float = DEFAULT_P) -> np.ndarray:
    """Step 4, the official code's ``gen_A`` (ML-GCN's and MSRN's ``util.py``):
    ``A' = p * A / (A.sum(0) + 1e-6) + I``.

    Every *column's* neighbour weights sum to (almost) ``p``; the self loop keeps weight 1.
    ML-GCN's eq. 8 as printed differs on both counts: ``A'[i, j] = p * A[i, j] / sum_{j != i} A[i, j]``
    (each *row* sums to p) and ``A'[i, i] = 1 - p``. This repository follows the code.
    """
    if p < 0.0:
        raise ValueError(f"re-weight p must be >= 0, got {p}")
    A = np.asarray(binary, dtype=np.float64)
    reweighted = p * A / (A.sum(axis=0, keepdims=True) + _EPS)
    return reweighted + np.eye(A.shape[0])


def normalize_adjacency(reweighted: np.ndarray) -> np.ndarray:
    """Step 5, ML-GCN's ``gen_adj``: ``A_hat = D^-1/2 A'^T D^-1/2``, ``D = diag(rowsum A')``.

    Written as in the official code: ``d = rowsum(A')^-1/2; A_hat = (A' @ diag(d)).T @ diag(d)``,
    so ``A_hat[i, j] = d[i] * A'[j, i] * d[j]``. The row sums are >= 1 thanks to the self loop.
    """
    A = np.asarray(reweighted, dtype=np.float64)
    d = np.diag(np.power(A.sum(axis=1), -0.5))
    return (A @ d).T @ d


def mlgcn_adjacency(P: np.ndarray, t: float = DEFAULT_T, p: float = DEFAULT_P) -> np.ndarray:
    """The normalised ML-GCN adjacency ``A_hat`` (n x n, float64) from the probabilities P."""
    return normalize_adjacency(reweight(binarize(P, t), p))


@dataclass
class LabelGraph:
    """All steps of the ML-GCN label graph, kept for the tutorial.

    Fields: ``counts`` and ``nums`` (step 1), ``probabilities`` (P, step 2), ``binary``
    (A, step 3), ``reweighted`` (A', step 4), ``normalized`` (A_hat, step 5, what the GCN /
    GAT layers use), the parameters ``t`` and ``p``, and ``class_names``.
    """

    counts: np.ndarray
    nums: np.ndarray
    probabilities: np.ndarray
    binary: np.ndarray
    reweighted: np.ndarray
    normalized: np.ndarray
    t: float
    p: float
    class_names: list[str]

    @classmethod
    def from_labels(
        cls,
        labels,
        class_names: Sequence[str],
        t: float = DEFAULT_T,
        p: float = DEFAULT_P,
    ) -> "LabelGraph":
        """Build the graph from the TRAINING label matrix (N x n, 0/1)."""
        counts, nums = cooccurrence_counts(labels)
        return cls.from_counts(counts, nums, class_names, t=t, p=p)

    @classmethod
    def from_counts(
        cls,
        counts: np.ndarray,
        nums: np.ndarray,
        class_names: Sequence[str],
        t: float = DEFAULT_T,
        p: float = DEFAULT_P,
    ) -> "LabelGraph":
        """Build the graph from stored training statistics (steps 2-5 from step 1's output)."""
        counts, nums = np.asarray(counts), np.asarray(nums)
        if len(class_names) != counts.shape[0]:
            raise ValueError(
                f"{len(class_names)} class names for a label matrix with {counts.shape[0]} columns"
            )
        P = conditional_probabilities(counts, nums)
        binary = binarize(P, t)
        reweighted = reweight(binary, p)
        return cls(
            counts=counts,
            nums=nums,
            probabilities=P,
            binary=binary,
            reweighted=reweighted,
            normalized=normalize_adjacency(reweighted),
            t=float(t),
            p=float(p),
            class_names=list(class_names),
        )

    @property
    def num_classes(self) -> int:
        """Number of labels n."""
        return len(self.class_names)

    def adjacency_tensor(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``A_hat`` as a float32 tensor, ready for the model."""
        return torch.as_tensor(self.normalized, dtype=torch.float32, device=device)

    def mask(self) -> torch.Tensor:
        """The GAT attention mask of this graph, see :func:`gat_mask`."""
        return gat_mask(self.normalized)


# --------------------------------------------------------------------------- GAT mask
def gat_mask(A_hat) -> torch.Tensor:
    """Boolean n x n mask for graph attention: True where ``A_hat[i, j] > 0``.

    The diagonal is always True, so every node attends at least to itself (and a softmax over
    a row never sees only ``-inf``).
    """
    A = A_hat if isinstance(A_hat, torch.Tensor) else torch.as_tensor(np.asarray(A_hat))
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A_hat must be a square matrix, got shape {tuple(A.shape)}")
    return (A.detach() > 0) | torch.eye(A.shape[0], dtype=torch.bool, device=A.device)


# --------------------------------------------------------------------------- descriptions
def _off_diagonal_edges(P: np.ndarray, t: float) -> np.ndarray:
    """Boolean matrix of the directed edges i -> j, i != j, with ``P[i, j] >= t``."""
    edges = np.asarray(P, dtype=np.float64) >= t
    np.fill_diagonal(edges, False)
    return edges


def edge_density(P: np.ndarray, thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Number of directed edges and density of the thresholded graph, for each threshold.

    Returns ``(num_edges, density)``: ``num_edges[k]`` counts pairs i != j with
    ``P[i, j] >= thresholds[k]`` (int64); ``density[k] = num_edges[k] / (n (n - 1))``
    (float64, 0 when n < 2).
    """
    P = np.asarray(P, dtype=np.float64)
    n = P.shape[0]
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    num_edges = np.array([_off_diagonal_edges(P, t).sum() for t in thresholds], dtype=np.int64)
    possible = n * (n - 1)
    density = num_edges / possible if possible > 0 else np.zeros(len(thresholds))
    return num_edges, density.astype(np.float64)


def neighbour_counts(P: np.ndarray, t: float = DEFAULT_T) -> np.ndarray:
    """For each label i, the number of other labels j whose presence implies it, ``P(i | j) >= t``.

    These are the labels that label i gathers from in the GCN / GAT layers (the off-diagonal
    non-zeros of row i of ``A_hat``, step 5): its co-occurrence degree in the graph the model uses.
    ``P[j, i]`` is ``P(i | j)``, so this counts the edges j -> i, a column of ``A`` (int64).
    """
    return _off_diagonal_edges(P, t).sum(axis=0).astype(np.int64)


def to_networkx(
    graph_or_P: "LabelGraph | np.ndarray",
    class_names: Sequence[str] | None = None,
    t: float | None = None,
    nums: Sequence[int] | None = None,
) -> nx.DiGraph:
    """The thresholded label graph as a ``networkx.DiGraph`` (for drawing).

    Nodes are the class names, with attribute ``count`` (images holding the label; from the
    :class:`LabelGraph`, or ``nums`` when a bare P is given, else None). Edge i -> j carries
    ``weight = P[i, j]`` and exists where ``P[i, j] >= t`` and i != j.

    With a :class:`LabelGraph`, ``class_names`` and ``t`` default to the graph's own; with a
    bare P, ``class_names`` is required and ``t`` defaults to 0.4.
    """
    if isinstance(graph_or_P, LabelGraph):
        P = graph_or_P.probabilities
        class_names = graph_or_P.class_names if class_names is None else class_names
        t = graph_or_P.t if t is None else t
        nums = graph_or_P.nums if nums is None else nums
    else:
        P = np.asarray(graph_or_P, dtype=np.float64)
        if class_names is None:
            raise ValueError("class_names is required when a probability matrix is given")
        t = DEFAULT_T if t is None else t
    if len(class_names) != P.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {P.shape[0]} x {P.shape[1]} P")

    G = nx.DiGraph(t=float(t))
    for i, name in enumerate(class_names):
        G.add_node(name, count=None if nums is None else int(nums[i]))
    for i, j in zip(*np.nonzero(_off_diagonal_edges(P, t))):
        G.add_edge(class_names[i], class_names[j], weight=float(P[i, j]))
    return G


def graph_summary(graph: "LabelGraph | nx.DiGraph") -> str:
    """A few lines describing the thresholded graph: n, edges, density, isolated labels.

    Accepts a :class:`LabelGraph` (thresholded at its own t) or a graph from
    :func:`to_networkx`. A label is isolated when it has no edge in either direction.
    """
    G = to_networkx(graph) if isinstance(graph, LabelGraph) else graph
    n = G.number_of_nodes()
    m = G.number_of_edges()
    density = m / (n * (n - 1)) if n > 1 else 0.0
    isolated = [node for node in G.nodes if G.degree(node) == 0]
    t = G.graph.get("t")
    lines = [
        f"label graph: n = {n} labels" + (f", threshold t = {t:g}" if t is not None else ""),
        f"  directed edges (i != j): {m}",
        f"  density: {density:.3f} of n(n-1) = {n * (n - 1)} possible",
        f"  isolated labels ({len(isolated)}): " + (", ".join(map(str, isolated)) or "none"),
    ]
    return "\n".join(lines)
