"""Label groups in seconds: Diffpool trained alone on fixed label features, and its scoring.

MSRN learns its label groups end to end: the Diffpool assignment S is trained by the
classification loss plus a small compactness term (paper eq. 5-6), inside a CNN that takes
minutes to train. To look at groups without training a CNN, this module fits the same
Diffpool block on its own, on FIXED label features (the sentence features V, or the label
embeddings E_l of a trained MSRN) and the label graph:

- :func:`fit_label_groups`  MSRN's :class:`~msrn_core.layers.DiffpoolBlock` (embedding and
  assignment GNN, :func:`~msrn_core.layers.diffpool`) and
  :func:`~msrn_core.layers.compactness_loss`, trained with Diffpool's own unsupervised
  auxiliary objectives (link prediction and assignment entropy, Ying et al. 2018).
- :func:`score_groups`      how well groups match the dataset's ground-truth themes:
  adjusted Rand index (ARI) and a theme x group contingency table.

This is an unsupervised STAND-IN for the groups MSRN learns end to end, not the same thing:
the paper's MSRN never sees the link-prediction or entropy terms, and nothing in its loss asks
groups to follow themes. The link-prediction term asks labels that share an edge to share a
group, so the groups follow the graph's clusters. The tutorial's CPU recipe adds that link term
(not the entropy term) to MSRN's own loss (``TrainConfig.group_link_weight``), and its trained
MSRN's groups follow the themes with confident memberships (``groups_ari`` in ``lessons.json``);
trained without it, they did not (``benchmarks/lessons_study.py``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .graph import gat_mask
from .layers import DiffpoolBlock, compactness_loss, group_link_loss

__all__ = ["DiffpoolBlock", "fit_label_groups", "link_target", "score_groups"]


def _tensor(x) -> torch.Tensor:
    """A detached float32 CPU tensor from a tensor or an array."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu()
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def link_target(adjacency) -> torch.Tensor:
    """What ``S S^T`` should look like: 1 where two labels share an edge (either direction) or
    are the same label, else 0. (``S S^T[i, j]`` is the probability that i and j fall in the
    same group; for a hard assignment it is 1 on the diagonal.) :func:`~msrn_core.layers.group_link_loss`
    compares ``S S^T`` with it."""
    mask = gat_mask(_tensor(adjacency))
    return (mask | mask.T).float()


def fit_label_groups(features, adjacency, m: int, steps: int = 300, lr: float = 0.01, seed: int = 0,
                     entropy_weight: float = 1e-3, compactness_weight: float = 1e-6,
                     normalize: bool = True) -> dict:
    """Fit a Diffpool block on fixed label features and return its groups.

    Args:
        features: label features or label embeddings, n x k (tensor or array); they are not
            changed, only the two GAT layers of the block are trained.
        adjacency: the normalised label graph ``A_hat`` (n x n). Its non-zero pattern is the
            GAT mask (as in MSRN) and, made symmetric, the link-prediction target.
        m: the number of groups.
        steps, lr, seed: Adam steps, learning rate, and the seed of the initial weights.
        entropy_weight, compactness_weight: weights of the entropy and compactness terms.
            The link term is small (about 0.02 for 26 labels) and the compactness term, a sum
            of squared distances over n labels, starts in the hundreds: the default weights
            keep the two auxiliary terms below the link term, as lambda = 1e-3 keeps the
            compactness loss below the classification loss in MSRN.
        normalize: L2-normalise the feature rows first, so the weights mean the same for
            sentence features (unit rows already) and for a trained model's embeddings.

    The loss per step, with ``S`` the n x m assignment and ``A`` the binary target
    (:func:`link_target`)::

        L = ||A - S S^T||_F / n^2                       link prediction (Diffpool)
          + entropy_weight * mean_i H(S_i)              confident rows (Diffpool)
          + compactness_weight * L2(E_g, E, S)          paper eq. 6

    Returns ``dict(assignment=S (n x m, detached), groups=argmax of S (n,), losses=[total per
    step], terms={"link": [...], "entropy": [...], "compactness": [...]}, model=the block)``.
    This is an unsupervised stand-in for the groups MSRN learns end to end (see module doc).
    """
    features, adjacency = _tensor(features), _tensor(adjacency)
    if normalize:
        features = torch.nn.functional.normalize(features, dim=1)
    n = features.shape[0]
    if adjacency.shape != (n, n):
        raise ValueError(f"adjacency is {tuple(adjacency.shape)} for {n} label feature rows")
    if not 1 <= m <= n:
        raise ValueError(f"m must be between 1 and the number of labels ({n}), got {m}")
    mask = gat_mask(adjacency)

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    block = DiffpoolBlock(features.shape[1], m)
    torch.random.set_rng_state(generator_state)  # leave the caller's random stream untouched
    optimizer = torch.optim.Adam(block.parameters(), lr=lr)

    losses, terms = [], {"link": [], "entropy": [], "compactness": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # n x n and n x k matrices: one thread is fastest (no contention)
    try:
        for _ in range(steps):
            group_embeddings, s = block(features, adjacency, mask)
            link = group_link_loss(s, mask, per="entries")  # / n^2
            entropy = -(s * torch.log(s + 1e-15)).sum(dim=1).mean()
            compact = compactness_loss(group_embeddings, features, s)
            loss = link + entropy_weight * entropy + compactness_weight * compact
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            for name, value in (("link", link), ("entropy", entropy), ("compactness", compact)):
                terms[name].append(value.item())
    finally:
        torch.set_num_threads(threads)

    block.eval()
    with torch.no_grad():
        _, assignment = block(features, adjacency, mask)
    return {"assignment": assignment, "groups": assignment.argmax(dim=1).numpy(), "losses": losses,
            "terms": terms, "model": block}


def score_groups(predicted_groups, class_themes: Sequence[Sequence[str]], theme_names: Sequence[str],
                 class_names: Sequence[str] | None = None) -> dict:
    """How well predicted label groups match the ground-truth themes.

    Args:
        predicted_groups: one group id per class (n ints, e.g. the argmax of S).
        class_themes: the themes of each class (``dataset.class_themes``); the FIRST one is
            taken as the class's ground-truth theme.
        theme_names: all theme names, in the order of the contingency table's rows.
        class_names: optional, to name the classes left out of ``ari_single_theme``.

    Hub and bridge classes (``person`` is in every theme, ``dog`` and ``bird`` in two) have no
    single right answer, so the ARI is reported twice: over all classes and over the classes
    of exactly one theme.

    Returns ``dict(ari=..., ari_single_theme=..., multi_theme=[names or indices],
    contingency=DataFrame (themes x groups, counts of classes by first theme),
    group_names=[one per group id: "group 2: farm (6 of 7)", its most frequent first theme])``;
    ``group_names`` is what :func:`msrn_core.plots.plot_label_graph` takes for its legend.
    """
    import pandas as pd  # installed with seaborn
    from sklearn.metrics import adjusted_rand_score

    groups = np.asarray(predicted_groups.detach().cpu() if isinstance(predicted_groups, torch.Tensor)
                        else predicted_groups).astype(int).ravel()
    if len(groups) != len(class_themes):
        raise ValueError(f"{len(groups)} group ids for {len(class_themes)} classes")
    theme_names = list(theme_names)
    first = np.array([theme_names.index(themes[0]) for themes in class_themes])
    single = np.array([len(themes) == 1 for themes in class_themes])
    ari = adjusted_rand_score(first, groups)
    ari_single = adjusted_rand_score(first[single], groups[single]) if single.sum() > 1 else float("nan")

    columns = sorted(set(groups.tolist()))
    table = np.zeros((len(theme_names), len(columns)), dtype=int)
    for t, g in zip(first, groups):
        table[t, columns.index(g)] += 1
    # one header line: the rows' name sits in the columns' name (an index name would print a row of its own)
    contingency = pd.DataFrame(table, index=pd.Index(theme_names),
                               columns=pd.Index([f"group {g}" for g in columns], name="first theme \\ group"))
    group_names = [f"group {g}" for g in range(max(columns) + 1)]
    for column, g in enumerate(columns):
        counts = table[:, column]
        group_names[g] = f"group {g}: {theme_names[counts.argmax()]} ({counts.max()} of {counts.sum()})"
    names = list(class_names) if class_names is not None else list(range(len(groups)))
    return {"ari": float(ari), "ari_single_theme": float(ari_single),
            "multi_theme": [names[i] for i in np.flatnonzero(~single)], "contingency": contingency,
            "group_names": group_names}
