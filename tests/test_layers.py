"""GAT, Diffpool, compactness loss and semantic guided attention against hand computations
and reference implementations."""
import math

import pytest
import torch

from msrn_core.layers import GATLayer, compactness_loss, diffpool, group_link_loss, semantic_guided_attention
from msrn_core.variants.lean_sga import (SGA_CHUNK_ELEMENTS, _exp_floor, semantic_guided_attention_lean,
                                         sga_chunk_elements)


def four_label_gat():
    """The 4-label example of the tutorial: U = identity, P = [1, 0 | 0, 1].

    With these weights e_ij = LeakyReLU(h_i[0] + h_j[1]).
    Edges (both directions): 0-1, 0-2, 1-2, 1-3; every label also attends to itself.
    """
    layer = GATLayer(2, 2)
    with torch.no_grad():
        layer.U.weight.copy_(torch.eye(2))
        layer.P.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]))
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-2.0, 0.0]])
    mask = torch.tensor([
        [1, 1, 1, 0],
        [1, 1, 1, 1],
        [1, 1, 1, 0],
        [0, 1, 0, 1],
    ], dtype=torch.bool)
    return layer, h, mask


def test_gat_matches_hand_computed_four_label_example():
    layer, h, mask = four_label_gat()
    out, alpha = layer(h, mask)

    def softmax(*e):
        z = sum(math.exp(x) for x in e)
        return [math.exp(x) / z for x in e]

    # row 0: e_00 = lrelu(1 + 0) = 1, e_01 = lrelu(1 + 1) = 2, e_02 = lrelu(1 + 1) = 2
    a0 = softmax(1, 2, 2)
    # row 1: h_1[0] = 0 -> e_10 = 0, e_11 = 1, e_12 = 1, e_13 = lrelu(0 + 0) = 0
    a1 = softmax(0, 1, 1, 0)
    # row 2 equals row 0 (h_2[0] = 1)
    # row 3: e_31 = lrelu(-2 + 1) = -0.2, e_33 = lrelu(-2 + 0) = -0.4
    a3 = softmax(-0.2, -0.4)
    expected_alpha = torch.tensor([
        [a0[0], a0[1], a0[2], 0.0],
        [a1[0], a1[1], a1[2], a1[3]],
        [a0[0], a0[1], a0[2], 0.0],
        [0.0, a3[0], 0.0, a3[1]],
    ])
    torch.testing.assert_close(alpha, expected_alpha)

    # eq. 3: ELU(sum_j alpha_ij U h_j + U h_i); U = I so U h = h
    def elu(x):
        return x if x > 0 else math.exp(x) - 1

    rows = []
    for i, weights in enumerate(expected_alpha.tolist()):
        mixed = [sum(w * h[j, k].item() for j, w in enumerate(weights)) + h[i, k].item() for k in range(2)]
        rows.append([elu(v) for v in mixed])
    # row 3 written out: 0.55*[0,1] + 0.45*[-2,0] + [-2,0] -> ELU
    w31, w33 = a3
    assert rows[3] == pytest.approx([elu(-2 * w33 - 2), elu(w31)])
    torch.testing.assert_close(out, torch.tensor(rows))


def test_gat_attention_rows_sum_to_one_and_zero_off_mask():
    torch.manual_seed(0)
    n = 12
    layer = GATLayer(16, 8)
    mask = (torch.rand(n, n) > 0.6) | torch.eye(n, dtype=torch.bool)
    out, alpha = layer(torch.randn(n, 16), mask)
    assert out.shape == (n, 8)
    torch.testing.assert_close(alpha.sum(1), torch.ones(n))
    assert torch.all(alpha[~mask] == 0)
    assert torch.all(alpha[mask] > 0)


def test_gat_gradients_reach_both_weights():
    layer, h, mask = four_label_gat()
    out, _ = layer(h, mask)
    out.sum().backward()
    assert layer.U.weight.grad.abs().sum() > 0
    assert layer.P.grad.abs().sum() > 0


def test_diffpool_matches_torch_geometric():
    dense_diff_pool = pytest.importorskip("torch_geometric.nn").dense_diff_pool
    torch.manual_seed(0)
    n, d, m = 10, 6, 3
    z, logits = torch.randn(n, d), torch.randn(n, m)
    adjacency = torch.rand(n, n)
    pooled, pooled_adj, s = diffpool(z, adjacency, logits)
    torch.testing.assert_close(s.sum(1), torch.ones(n))
    reference, reference_adj, _, _ = dense_diff_pool(z[None], adjacency[None], logits[None])
    torch.testing.assert_close(pooled, reference[0])
    torch.testing.assert_close(pooled_adj, reference_adj[0])


def test_the_link_loss_per_label_and_per_entry_of_the_graph():
    # per="entries" is PyTorch Geometric's link loss (||A - S S^T||_F / n^2, what fit_label_groups
    # minimises), per="labels" (MSRN's term) the same norm divided by n
    dense_diff_pool = pytest.importorskip("torch_geometric.nn").dense_diff_pool
    torch.manual_seed(0)
    n, m = 7, 3
    mask = torch.rand(n, n) > 0.6
    mask |= torch.eye(n, dtype=torch.bool)
    logits = torch.randn(n, m)
    s = torch.softmax(logits, dim=-1)
    target = (mask | mask.T).float()
    _, _, reference, _ = dense_diff_pool(torch.randn(1, n, 4), target[None], logits[None])
    torch.testing.assert_close(group_link_loss(s, mask, per="entries"), reference)
    torch.testing.assert_close(group_link_loss(s, mask), n * reference)
    with pytest.raises(ValueError, match="link-loss scale"):
        group_link_loss(s, mask, per="edges")


def test_compactness_loss_hand_example():
    # labels 0, 1 -> group 0; label 2 -> group 1
    assignment = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    groups = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 3.0]])
    # ||g0 - l0||^2 = 1, ||g0 - l1||^2 = 4, ||g1 - l2||^2 = 0 + 4 = 4
    assert compactness_loss(groups, labels, assignment).item() == pytest.approx(9.0)


def naive_sga_loops(f, e):
    """eq. 7-9 written with explicit loops over labels and channels (batch of one)."""
    hw, d = f.shape
    out = torch.zeros(e.shape[0], d, dtype=f.dtype)
    for c in range(e.shape[0]):
        for k in range(d):
            weights = torch.softmax(f[:, k] * e[c, k], dim=0)
            out[c, k] = (weights * f[:, k]).sum()
    return out


def test_sga_equals_explicit_loops_and_attention_sums_to_one():
    torch.manual_seed(0)
    f, e = torch.randn(2, 9, 5), torch.randn(4, 5)
    out, attention = semantic_guided_attention(f, e, return_attention=True)
    assert out.shape == (2, 4, 5) and attention.shape == (2, 4, 9)
    for b in range(2):
        torch.testing.assert_close(out[b], naive_sga_loops(f[b], e))
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4))
    assert torch.all(attention >= 0)


def test_sga_gradients_are_correct():
    torch.manual_seed(0)
    f = torch.randn(1, 6, 3, dtype=torch.double, requires_grad=True)
    e = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: semantic_guided_attention(a, b), (f, e))


def test_sga_is_stable_for_large_scores():
    f = torch.full((1, 4, 2), 50.0)
    f[0, 0] = 60.0
    e = torch.full((1, 2), 100.0)
    out = semantic_guided_attention(f, e)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.full((1, 1, 2), 60.0))


def test_gat_mask_without_self_loop_is_still_defined():
    # a row with no allowed neighbour would be NaN; the model always adds self loops,
    # and the layer's attention is finite whenever the diagonal is allowed
    layer = GATLayer(3, 2)
    mask = torch.eye(3, dtype=torch.bool)
    _, alpha = layer(torch.randn(3, 3), mask)
    torch.testing.assert_close(alpha, torch.eye(3))


def sga_inputs(batch=3, positions=10, labels=4, d=5, scale=1.0, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    f = scale * torch.randn(batch, positions, d, generator=generator, dtype=dtype)
    e = scale * torch.randn(labels, d, generator=generator, dtype=dtype)
    return f.requires_grad_(), e.requires_grad_()


def outputs_and_gradients(sga, f, e, **kwargs):
    """SGA output, channel-averaged attention and the gradients of a fixed random loss."""
    out, attention = sga(f, e, return_attention=True, **kwargs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grad_f, grad_e = torch.autograd.grad((out * weights).sum(), (f, e))
    return out.detach(), attention.detach(), grad_f, grad_e


@pytest.mark.parametrize("chunk_elements", [7, 100, 1 << 17])  # many chunks, uneven chunks, one chunk
@pytest.mark.parametrize("batch, positions, labels, d", [(3, 10, 4, 5), (2, 49, 7, 16), (1, 1, 3, 2)])
def test_lean_sga_equals_naive_outputs_attention_and_gradients(chunk_elements, batch, positions, labels, d):
    f, e = sga_inputs(batch, positions, labels, d)
    naive = outputs_and_gradients(semantic_guided_attention, f, e)
    lean = outputs_and_gradients(semantic_guided_attention_lean, f, e, chunk_elements=chunk_elements)
    for wanted, got in zip(naive, lean):
        torch.testing.assert_close(got, wanted, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lean[1].sum(-1), torch.ones(batch, labels))  # attention rows sum to 1


def test_lean_sga_is_stable_for_large_magnitudes():
    # scores f * e reach thousands: exp overflows without the per-(label, channel) maximum
    f, e = sga_inputs(2, 12, 3, 4, scale=40.0)
    f64, e64 = f.detach().double().requires_grad_(), e.detach().double().requires_grad_()
    reference = outputs_and_gradients(semantic_guided_attention, f64, e64)
    lean32 = outputs_and_gradients(semantic_guided_attention_lean, f, e, chunk_elements=16)
    for wanted, got in zip(reference[:2], lean32[:2]):  # outputs and attention in float32
        torch.testing.assert_close(got.double(), wanted, rtol=1e-5, atol=1e-4)
    assert all(torch.isfinite(got).all() for got in lean32[2:])
    # the gradients of such peaked softmaxes are ill-conditioned in float32 (for the reference
    # form too): compare them in float64
    lean64 = outputs_and_gradients(semantic_guided_attention_lean, f64, e64, chunk_elements=16)
    for wanted, got in zip(reference, lean64):
        torch.testing.assert_close(got, wanted)
    # every score maximal at one position: the attention is one-hot and o is the maximum of f
    f_large = torch.full((1, 4, 2), 50.0)
    f_large[0, 0] = 60.0
    torch.testing.assert_close(semantic_guided_attention_lean(f_large, torch.full((1, 2), 100.0)),
                               torch.full((1, 1, 2), 60.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_floor_stays_normal_and_negligible(dtype):
    floor = torch.tensor(_exp_floor(dtype), dtype=dtype)
    tiny = torch.finfo(dtype).tiny
    assert tiny < floor.exp() < 1e3 * tiny  # a normal float, within a factor of e of the smallest


def test_lean_sga_matches_naive_when_most_scores_underflow():
    # features of an untrained network reach 1e4-1e5: most shifted scores sit far below the
    # floor, where the reference softmax rounds exp to zero and the lean form to e^floor
    f, e = sga_inputs(2, 49, 5, 8)
    f = (3e4 * f.detach()).requires_grad_()
    f64, e64 = f.detach().double().requires_grad_(), e.detach().double().requires_grad_()
    shifted = (f64.unsqueeze(2) * e64 - (f64.unsqueeze(2) * e64).amax(dim=1, keepdim=True))
    assert (shifted < _exp_floor(torch.float32)).float().mean() > 0.5  # the case this test is about
    reference = outputs_and_gradients(semantic_guided_attention, f64, e64)
    lean = outputs_and_gradients(semantic_guided_attention_lean, f, e, chunk_elements=64)
    torch.testing.assert_close(lean[0].double(), reference[0], rtol=1e-5, atol=1e-2)  # |o| ~ 1e4
    torch.testing.assert_close(lean[1].double(), reference[1], rtol=1e-5, atol=1e-6)
    assert torch.isfinite(lean[2]).all() and torch.isfinite(lean[3]).all()


def test_lean_sga_chunk_size_defaults_by_device():
    assert sga_chunk_elements(torch.device("cpu")) == SGA_CHUNK_ELEMENTS["cpu"]
    assert sga_chunk_elements("cuda") > sga_chunk_elements("cpu")  # a GPU prefers fewer, larger chunks
    f, e = sga_inputs(2, 30, 4, 6)
    torch.testing.assert_close(semantic_guided_attention_lean(f, e),  # the default, one chunk here
                               semantic_guided_attention_lean(f, e, chunk_elements=50))


def test_lean_sga_gradcheck_float64():
    f, e = sga_inputs(2, 5, 3, 2, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda a, b: semantic_guided_attention_lean(a, b, chunk_elements=9), (f, e))


def test_lean_sga_keeps_no_score_tensor_for_backward():
    batch, positions, labels, d = 2, 64, 6, 8
    f, e = sga_inputs(batch, positions, labels, d)
    saved = {"naive": [], "lean": []}
    for form, sga in (("naive", semantic_guided_attention), ("lean", semantic_guided_attention_lean)):
        with torch.autograd.graph.saved_tensors_hooks(lambda t, form=form: saved[form].append(t.numel()) or t,
                                                      lambda t: t):
            sga(f, e, chunk_elements=64) if form == "lean" else sga(f, e)
    score_tensor = batch * positions * labels * d
    assert max(saved["naive"]) == score_tensor  # the reference keeps the full scores (sanity check)
    assert max(saved["lean"]) <= max(batch * positions * d, batch * labels * d)


def test_lean_sga_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="B x HW x d"):
        semantic_guided_attention_lean(torch.randn(2, 9, 5), torch.randn(4, 6))


# ----------------------------------------------------------------------------- eq. 8's temperature and axis
def sga_as_printed(f, e):
    """Eq. 7-9 exactly as the package computed them before the temperature and axis switches."""
    scores = f.unsqueeze(2) * e
    attention = torch.softmax(scores, dim=1)
    return (attention * f.unsqueeze(2)).sum(dim=1), attention.mean(dim=-1).transpose(1, 2)


def test_sga_defaults_are_eq_8_as_printed_bit_for_bit():
    f, e = sga_inputs(2, 9, 4, 5)
    wanted = sga_as_printed(f, e)
    for got in (semantic_guided_attention(f, e, return_attention=True),
                semantic_guided_attention(f, e, return_attention=True, temperature=1.0, axis="channel")):
        assert all(torch.equal(a, b) for a, b in zip(got, wanted))


def test_sga_temperature_by_hand():
    # one image, two positions, one channel: f = (0, 1), e = 2, so the scores are (0, 2 / T)
    f, e = torch.tensor([[[0.0], [1.0]]]), torch.tensor([[2.0]])
    for temperature in (0.5, 2.0, torch.tensor(0.5)):
        peak = math.exp(2.0 / float(temperature))
        out, attention = semantic_guided_attention(f, e, return_attention=True, temperature=temperature)
        torch.testing.assert_close(attention, torch.tensor([[[1.0, peak]]]) / (1 + peak))
        torch.testing.assert_close(out, torch.tensor([[[peak / (1 + peak)]]]))  # eq. 9: 0 a_0 + 1 a_1


def test_label_axis_by_hand():
    # positions f_0 = (1, 0), f_1 = (0, 1); label 0 scores (ln 2, 0), label 1 scores (0, ln 3)
    f = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    e = torch.tensor([[math.log(2.0), 0.0], [0.0, math.log(3.0)]])
    out, attention = semantic_guided_attention(f, e, return_attention=True, axis="label")
    torch.testing.assert_close(attention, torch.tensor([[[2 / 3, 1 / 3], [1 / 4, 3 / 4]]]))
    torch.testing.assert_close(out, torch.tensor([[[2 / 3, 1 / 3], [1 / 4, 3 / 4]]]))  # o_c = sum_p a_pc f_p
    # a temperature of 1/2 squares the odds: 2 : 1 becomes 4 : 1
    sharper = semantic_guided_attention(f, e, return_attention=True, axis="label", temperature=0.5)[1]
    torch.testing.assert_close(sharper[0, 0], torch.tensor([4 / 5, 1 / 5]))
    with pytest.raises(ValueError, match="attention axis"):
        semantic_guided_attention(f, e, axis="position")


@pytest.mark.parametrize("options", [dict(temperature=0.3), dict(temperature=7.0), dict(axis="label"),
                                     dict(axis="label", temperature=0.2)])
def test_lean_sga_equals_naive_with_temperature_and_axis(options):
    f, e = sga_inputs(2, 12, 3, 6)
    naive = outputs_and_gradients(semantic_guided_attention, f, e, **options)
    lean = outputs_and_gradients(semantic_guided_attention_lean, f, e, chunk_elements=20, **options)
    for wanted, got in zip(naive, lean):
        torch.testing.assert_close(got, wanted, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lean[1].sum(-1), torch.ones(2, 3))


def test_lean_sga_passes_the_gradient_to_a_learned_temperature():
    f, e = sga_inputs(2, 8, 3, 4)
    gradients = []
    for sga in (semantic_guided_attention, semantic_guided_attention_lean):
        temperature = torch.tensor(0.7, requires_grad=True)
        out = sga(f, e, temperature=temperature)
        (gradient,) = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out)).sum(), temperature)
        gradients.append(gradient)
    assert gradients[0].abs() > 0
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-4, atol=1e-5)
