"""Exercises of notebook 04: eq. 8 with a temperature on a 3x3 map, eq. 9, the entropy, the memory of eq. 7."""
from __future__ import annotations

import numpy as np
import torch

from ..layers import semantic_guided_attention
from .core import Exercise, Mistake


def _given_map():
    f_map = np.zeros((3, 3, 2))
    f_map[:, :, 0] = [[0.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 0.0]]  # channel 0: a blob in the centre
    f_map[:, :, 1] = [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # channel 1: two corners
    return {
        "f": f_map.reshape(9, 2),  # positions p = 0..8 in row-major order, d = 2 channels
        "e": np.array([[1.0, 0.5], [0.5, 1.0]]),  # embeddings of labels 0 and 1 (rows)
        "temperature": 0.5,
        "label": 1,
    }


def _attention(g, temperature=None):
    """The package's channel-averaged attention of every label (C x HW), scores divided by the temperature."""
    temperature = g.temperature if temperature is None else temperature
    f = torch.as_tensor(g.f, dtype=torch.float64)[None]
    e = torch.as_tensor(g.e, dtype=torch.float64)
    return semantic_guided_attention(f, e, return_attention=True, temperature=temperature)[1][0].numpy()


def _per_channel(g, temperature, axis=0, normalise=True):
    """softmax of f * e[label] / T over positions (axis 0) or channels (axis 1): HW x d."""
    scores = g.f * g.e[g.label] / temperature
    weights = np.exp(scores)
    return weights / weights.sum(axis=axis, keepdims=True) if normalise else weights


def _map(g):
    return _attention(g)[g.label].reshape(3, 3)


def _pooled(g):
    f = torch.as_tensor(g.f, dtype=torch.float64)[None]
    return semantic_guided_attention(f, torch.as_tensor(g.e, dtype=torch.float64))[0, g.label].numpy()


def _entropy_trend(g):
    entropies = []
    for temperature in g.temperatures:
        a = np.clip(_attention(g, temperature)[g.label], 1e-300, 1.0)
        entropies.append(float(-(a * np.log(a)).sum()))
    steps = np.diff(entropies)
    return "rises" if (steps > 0).all() else "falls" if (steps < 0).all() else "stays"


def _sga_megabytes(g):
    """MiB of the scores of eq. 7 (B x HW x C x d, float32), built on the meta device: no memory used."""
    features = torch.empty(g.batch, g.positions, g.embed_dim, device="meta")
    embeddings = torch.empty(g.rows, g.embed_dim, device="meta")
    scores = features.unsqueeze(2) * embeddings  # the first line of semantic_guided_attention, eq. 7
    return scores.numel() * scores.element_size() / 2 ** 20


EXERCISES = [
    Exercise(
        "4.1", "by hand", "eq. 8 with a temperature on a 3x3 map",
        given=_given_map,
        reference=_map,
        mistakes=[
            Mistake("no temperature", lambda g: _attention(g, 1.0)[g.label].reshape(3, 3),
                    "the temperature is missing: divide the scores f * e by T before the softmax"),
            Mistake("multiplied", lambda g: _attention(g, 1 / g.temperature)[g.label].reshape(3, 3),
                    "you multiplied the scores by T; a temperature DIVIDES them (T < 1 sharpens, T > 1 flattens)"),
            Mistake("softmax over channels", lambda g: _per_channel(g, g.temperature, axis=1).mean(axis=1).reshape(3, 3),
                    "wrong axis: eq. 8 normalises over the 9 POSITIONS for every channel, not over the channels"),
            Mistake("summed channels", lambda g: _per_channel(g, g.temperature).sum(axis=1).reshape(3, 3),
                    "average the per-channel maps over the channels (the map sums to 1), do not add them"),
            Mistake("one channel", lambda g: _per_channel(g, g.temperature)[:, 0].reshape(3, 3),
                    "that is channel 0's map alone; the map to give is the mean over both channels"),
            Mistake("not normalised", lambda g: _per_channel(g, g.temperature, normalise=False).mean(axis=1).reshape(3, 3),
                    "missing normalisation: divide each channel's exp(scores) by their sum over the positions"),
        ],
        why="The temperature scales every score: T < 1 sharpens the map, T > 1 flattens it towards 1/9.",
    ),
    Exercise(
        "4.2", "by hand", "the pooled vector o (eq. 9) of one label, at temperature 1",
        given=lambda: {**_given_map(), "label": 0, "temperature": 1.0},
        reference=_pooled,
        mistakes=[
            Mistake("average pooling", lambda g: g.f.mean(axis=0),
                    "that is plain average pooling: eq. 9 weights each position by the attention of eq. 8"),
            Mistake("max pooling", lambda g: g.f.max(axis=0),
                    "that is max pooling (the limit of a large embedding); at e = (1, 0.5) the softmax is far softer"),
            Mistake("weighted scores", lambda g: (_per_channel(g, 1.0) * g.f * g.e[g.label]).sum(axis=0),
                    "eq. 9 pools the FEATURES f, not the scores f * e, with the attention weights"),
        ],
        why="o = sum_p a_p * f_p, channel by channel: between average pooling and max pooling.",
    ),
    Exercise(
        "4.3", "predict, then run", "the entropy of eq. 8's map as the temperature rises",
        given=lambda: {**_given_map(), "temperatures": [0.25, 0.5, 1.0, 2.0, 4.0, 16.0]},
        choices=("rises", "falls", "stays"),
        reference=_entropy_trend,
        mistakes=[
            Mistake("falls", lambda g: "falls",
                    "a higher temperature divides the scores by more, so they differ less: the softmax gets flatter "
                    "and its entropy grows towards log(9)"),
            Mistake("stays", lambda g: "stays",
                    "the softmax is not scale-invariant: softmax(s / T) flattens as T grows"),
        ],
        why="As T grows the map tends to uniform (entropy log 9); as T falls it tends to the arg-max (entropy 0).",
    ),
    Exercise(
        "4.4", "predict, then run", "memory of eq. 7's scores on COCO (MiB)",
        given=lambda: {"batch": 8, "positions": 28 * 28, "rows": 84, "embed_dim": 512},
        reference=_sga_megabytes,
        mistakes=[
            Mistake("no batch", lambda g: g.positions * g.rows * g.embed_dim * 4 / 2 ** 20,
                    "that is one image; the tensor holds the whole batch (B x HW x C x d)"),
            Mistake("decimal MB", lambda g: g.batch * g.positions * g.rows * g.embed_dim * 4 / 1e6,
                    "you divided by 10^6; the answer asks for MiB (2^20 bytes)"),
            Mistake("one byte", lambda g: g.batch * g.positions * g.rows * g.embed_dim / 2 ** 20,
                    "a float32 takes 4 bytes"),
        ],
        atol=0.5,
        why="One such tensor is a gigabyte per batch on COCO, and training keeps several: hence the lean SGA.",
    ),
    Exercise("4.5", "experiment", "what sharper embeddings (a lower temperature) do to the trained maps"),
]
