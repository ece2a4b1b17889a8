"""ModelConfig.authors() against a transcription of the authors' MSGDN forward pass.

The transcription below follows their models.py (MSGDN.forward), LabelEmbedding.py
(GraphAttentionLayer, BatchedDiffPool, LabelEmbed, GroupEmbed), ResNet.py (ResNet.forward) and
util.py (gen_A, gen_adj) step by step, with their variable layout, written out here with the
weights of our model; both run in float64 on a ResNet-18 at tiny widths.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from msrn_core.graph import cooccurrence_counts, mlgcn_adjacency, conditional_probabilities
from msrn_core.layers import COMPACTNESS_FORMS
from msrn_core.model import ModelConfig, build_model

N_LABELS, VECTOR_WIDTH = 6, 10


def label_matrix(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = (rng.random((40, N_LABELS)) < 0.4).astype(np.uint8)
    labels[0] = 1  # every label occurs
    return labels


def their_gen_a_gen_adj(labels: np.ndarray, t: float = 0.4, p: float = 0.25) -> torch.Tensor:
    """util.py gen_A then gen_adj: P = adj / nums (rows), binarise at t, columns re-weighted to p,
    + I, then D^-1/2 (A D)^T D^-1/2 with D the row sums."""
    counts, nums = cooccurrence_counts(labels)
    a = counts / nums[:, None]
    a = (a >= t).astype(np.float64)
    a = a * p / (a.sum(0, keepdims=True) + 1e-6) + np.identity(len(nums))
    a = torch.from_numpy(a)
    d = torch.diag(a.sum(1).pow(-0.5))
    return (a @ d).t() @ d


def their_gat(x, adj, gat):
    """GraphAttentionLayer.forward: h = x W; e = LeakyReLU_0.2(a^T [h_i || h_j]); masked where
    adj <= 0 with -1e12; softmax over j; ELU(attention h + h)."""
    w, a = gat.U.weight.t(), gat.P[:, None]
    h = x @ w
    n = h.shape[0]
    pairs = torch.cat([h.repeat(1, n).view(n * n, -1), h.repeat(n, 1)], dim=1).view(n, -1, 2 * h.shape[1])
    e = F.leaky_relu((pairs @ a).squeeze(2), 0.2)
    attention = torch.softmax(torch.where(adj > 0, e, -1e12 * torch.ones_like(e)), dim=1)
    return F.elu(attention @ h + h)


def their_forward(model, images, adj):
    """MSGDN.forward with ResNet.forward's three branches; returns (logits, group_loss)."""
    trunk, (b1, b2, b3) = model.trunk, model.branches
    x = trunk.stem(images)
    x = trunk.stages[1](trunk.stages[0](x))
    f1 = F.max_pool2d(b1[0](x), 2, 2)  # conv_buffer1, pool1
    x = trunk.stages[2](x)
    f2 = F.max_pool2d(b2[0](x), 2, 2)  # conv_buffer2, pool2
    f3 = F.max_pool2d(trunk.stages[3](x), 2, 2)  # pool3
    projections = [b1[-1], b2[-1], b3[-1]]  # ProjectM

    label = their_gat(their_gat(model.label_projection(model.label_features), adj, model.gat1), adj, model.gat2)
    pooled_input = F.relu(label)
    z = their_gat(pooled_input, adj, model.group_pool.gat_embed)
    s = torch.softmax(their_gat(pooled_input, adj, model.group_pool.gat_assign), dim=-1)
    group = s.transpose(-1, -2) @ z
    group_loss = sum(torch.dist(label[i], group[s.argmax(1)[i]]) for i in range(label.shape[0])) * 1e-4

    n, m, d = label.shape[0], group.shape[0], label.shape[1]
    label_dr, group_dr = [], []
    for feat, project in zip((f1, f2, f3), projections):
        feat = project(feat)
        batch, _, h, w = feat.shape
        p_feat = feat.transpose(1, 2).transpose(2, 3).unsqueeze(3)  # batch, h, w, 1, d
        sl = (p_feat * label.view(1, 1, 1, n, d)).contiguous().view(batch, h * w, n, d)
        sg = (p_feat * group.view(1, 1, 1, m, d)).contiguous().view(batch, h * w, m, d)
        p_flat = p_feat.contiguous().view(batch, h * w, 1, d)
        label_dr.append((torch.softmax(sl, dim=1) * p_flat).sum(1))
        group_dr.append((torch.softmax(sg, dim=1) * p_flat).sum(1))
    connected = torch.tanh(torch.cat((torch.cat(label_dr, -1), torch.cat(group_dr, -1)), 1))
    hidden = F.leaky_relu(model.fc1(connected.view(images.shape[0], -1)))  # slope 0.01
    return model.fc2(hidden), group_loss


@pytest.fixture(scope="module")
def authors_model():
    torch.manual_seed(0)
    labels = label_matrix()
    counts, nums = cooccurrence_counts(labels)
    adjacency = torch.from_numpy(mlgcn_adjacency(conditional_probabilities(counts, nums), 0.4, 0.25))
    vectors = torch.randn(N_LABELS, VECTOR_WIDTH)
    config = ModelConfig.authors(backbone="resnet18", embed_dim=16, gat_hidden=12, label_projection=8,
                                 fc_hidden=20, num_groups=2)
    model = build_model(config, vectors, adjacency).double().eval()
    return model, labels


def test_authors_preset_matches_a_transcription_of_their_forward(authors_model):
    model, labels = authors_model
    adj = their_gen_a_gen_adj(labels)
    assert torch.allclose(adj, model.adjacency, atol=1e-12)  # gen_A + gen_adj = our graph
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours = model(images)
        theirs, group_loss = their_forward(model, images, adj)
    assert torch.allclose(ours.logits, theirs, rtol=1e-9, atol=1e-12)
    assert torch.allclose(COMPACTNESS_FORMS["authors"] * ours.compactness, group_loss, rtol=1e-9)


def test_authors_preset_fields_and_overrides():
    config = ModelConfig.authors()
    assert (config.label_projection, config.head_negative_slope, config.compactness_form, config.branch_init) == (
        256, 0.01, "authors", "he_normal")
    assert (config.embed_dim, config.gat_hidden, config.fc_hidden, config.num_groups) == (512, 300, 2048, 4)
    assert ModelConfig.authors(backbone="resnet18").backbone == "resnet18"
    default = ModelConfig()  # the tutorial's model is unchanged
    assert (default.label_projection, default.branch_init) == (0, "default")
    with pytest.raises(ValueError, match="branch_init"):
        ModelConfig(branch_init="xavier")


@pytest.mark.parametrize("init, expected_std", [("he_normal", (2 / 128) ** 0.5), ("default", (1 / (3 * 128)) ** 0.5)])
def test_branch_buffers_start_he_normal_in_the_authors_preset(init, expected_std):
    """Their ResNet.__init__ draws every convolution from N(0, 2 / (k k out_channels)): 0.125 for the
    128-channel 1x1 buffer on ResNet-18's layer2; PyTorch's default is uniform with std 1/sqrt(3 fan_in)."""
    torch.manual_seed(0)
    features, adjacency = torch.randn(4, 8), torch.eye(4)
    model = build_model(ModelConfig(backbone="resnet18", embed_dim=16, fc_hidden=8, gat_hidden=8, num_groups=2,
                                    branch_init=init), features, adjacency)
    buffer, projection = model.branches[0][0], model.branches[0][-1]
    assert buffer.weight.shape == (128, 128, 1, 1)
    assert float(buffer.weight.detach().std()) == pytest.approx(expected_std, rel=0.03)
    assert float(projection.weight.detach().std()) == pytest.approx((1 / (3 * 128)) ** 0.5, rel=0.1)  # ProjectM: default
