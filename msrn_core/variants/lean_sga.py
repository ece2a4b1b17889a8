"""The semantic guided attention (paper eq. 7-9) without its B x HW x C x d tensors.

:func:`msrn_core.layers.semantic_guided_attention` is the plain form: it builds the score of
every (position, label, channel) at once, and autograd keeps those tensors for backward. At the
paper's size (448 px, batch 8, COCO's 80 labels + 4 groups, d = 512) that is gigabytes per
branch. :func:`semantic_guided_attention_lean` computes the same outputs and gradients (to float
tolerance) in chunks, with a hand-derived backward that keeps B x C x d values; MSRN uses it by
default (``ModelConfig.sga = "lean"``). ``benchmarks/README.md`` has its memory and speed figures.
"""
from __future__ import annotations

import math

import torch

from ..layers import check_sga_axis, label_spatial_attention

# Values of the score tensor (positions x rows x labels) that the lean SGA holds at once, in
# each of its work buffers, by device type. Smaller chunks fit a cache better but multiply the
# number of operations, each with a fixed cost (thread wake-ups on a CPU, kernel launches on a
# GPU). On the CPU, 2^19 floats (2 MiB in float32) keep a chunk's score, exp and sums in the
# cores' caches: the three branches of MSRN at 448 px, batch 2, n + m = 24 take 27 ms against
# 54 ms with 2^22 (2 cores, `python benchmarks/suite.py chunks`). A GPU has no such cache to
# fit and prefers fewer, larger launches: on an H100 at batch 8, forward + backward take 5.0 ms
# with 2^24 (64 MiB buffers) against 7.6 ms with 2^22 and 39 ms with 2^19
# (`python benchmarks/suite.py chunks --device cuda --batch-size 8`).
SGA_CHUNK_ELEMENTS = {"cpu": 1 << 19}
SGA_CHUNK_ELEMENTS_OTHER_DEVICES = 1 << 24


def sga_chunk_elements(device: torch.device) -> int:
    """The lean SGA's default chunk size on ``device`` (:data:`SGA_CHUNK_ELEMENTS`)."""
    return SGA_CHUNK_ELEMENTS.get(torch.device(device).type, SGA_CHUNK_ELEMENTS_OTHER_DEVICES)


def _exp_floor(dtype: torch.dtype) -> float:
    """A score floor just above where ``exp`` leaves the normal floats (about -86 in float32).

    Shifted scores far below the maximum are common (the attention is sharp, or features are
    large as in an untrained network). On a CPU, ``exp`` of them (underflow to zero, or to a
    subnormal) runs 10-30 times slower than in range, so the lean SGA clamps the shifted scores
    here first: each such position then weighs e^floor (about 5e-38) instead of less, against a
    sum of at least 1 (the maximum's own term), which no float32 result can tell apart.
    """
    return math.log(torch.finfo(dtype).tiny) + 1.0


def _floored_exp_(scores: torch.Tensor) -> torch.Tensor:
    """``exp`` in place of shifted scores, floored first at :func:`_exp_floor` (its fast path)."""
    return scores.clamp_(min=_exp_floor(scores.dtype)).exp_()


def _row_slices(total: int, positions: int, labels: int, chunk_elements: int):
    """Slices of ``total`` rows, each covering about ``chunk_elements`` scores (positions x labels a row)."""
    step = max(1, chunk_elements // max(1, labels * positions))
    for start in range(0, total, step):
        yield slice(start, min(start + step, total))


def _row_chunks(u: torch.Tensor, labels: int, chunk_elements: int):
    """Chunks of the rows of ``u`` (positions x rows): ``(rows, u[:, rows, None], work, scaled)``.

    ``work`` and ``scaled`` are two positions x rows x labels buffers, reused from chunk to chunk.
    """
    positions, total = u.shape
    work = scaled = None
    for rows in _row_slices(total, positions, labels, chunk_elements):
        u_rows = u[:, rows, None]
        if work is None or work.shape[1] != u_rows.shape[1]:
            work = u.new_empty(positions, u_rows.shape[1], labels)
            scaled = torch.empty_like(work)
        yield rows, u_rows, work, scaled


class _LeanSemanticGuidedAttention(torch.autograd.Function):
    """SGA (eq. 7-9) over chunks of (image, channel) rows, keeping B x C x d values for backward.

    Every (image b, channel k) row r is independent: ``o[r, c] = sum_p softmax_p(e[c] f[p]) f[p]``.
    The scores are taken on centred features ``u = f - centre`` (the row's mid-range; the
    softmax does not change when ``e[c] * centre`` is subtracted) and stabilised by their exact
    maximum over positions, ``|e[c]| * max_p |u[p]|``. Per chunk the sums over positions of
    ``exp(score)`` times 1, u and u^2 give Z, Z (o - centre) and Z E_a[u^2]; shifted scores are
    floored at :func:`_exp_floor` first, which keeps ``exp`` on its fast path. Backward uses

        d o[c] / d e[c] = Var_a(f) = E_a[u^2] - (o[c] - centre)^2
        d o[c] / d f[p] = a[p, c] (1 + e[c] (u[p] - (o[c] - centre)))

    and recomputes the attention ``a`` one chunk at a time. The forward chunks are row-major
    (rows x positions x labels), so that one batched matrix product per chunk takes all the sums
    over positions; the backward chunks are position-major (positions x rows x labels), so that
    its sums over positions run over contiguous memory.
    """

    @staticmethod
    def forward(ctx, features, embeddings, want_attention: bool, chunk_elements: int):
        batch, positions, d = features.shape
        labels = embeddings.shape[0]
        with torch.autocast(features.device.type, enabled=False):
            f = features.transpose(0, 1).reshape(positions, batch * d)  # (HW, R), row r = b * d + k
            e = embeddings.t().expand(batch, d, labels).reshape(batch * d, labels)  # (R, C)
            high, low = f.amax(dim=0), f.amin(dim=0)
            centre = (high + low) / 2
            u = f - centre
            neg_shift = -e.abs() * ((high - low) / 2)[:, None]  # minus the maximum score of each (r, c)
            need_variance = ctx.needs_input_grad[1]
            # Row-major (rows x positions x labels) chunks: one batched matrix product per chunk
            # takes the sums over positions of exp(score) times 1, u (and u^2) in a single read.
            u_by_row = u.t()  # (R, HW)
            powers = torch.stack([torch.ones_like(u_by_row), u_by_row] + ([u_by_row * u_by_row] if need_variance
                                                                         else []), dim=1)  # (R, 2|3, HW)
            moments = f.new_empty(powers.shape[1], batch * d, labels)
            if want_attention:
                attention = f.new_zeros(positions, batch, labels)
                image_of_row = torch.arange(batch, device=f.device).repeat_interleave(d)
            else:
                attention = None
            for rows in _row_slices(batch * d, positions, labels, chunk_elements):
                work = torch.addcmul(neg_shift[rows, None, :], u_by_row[rows, :, None], e[rows, None, :])  # eq. 7
                _floored_exp_(work)  # eq. 8's numerator, less the maximum
                moments[:, rows] = torch.bmm(powers[rows], work).transpose(0, 1)
                if want_attention:
                    work /= moments[0, rows, None, :]  # eq. 8: sums to 1 over positions
                    attention.index_add_(1, image_of_row[rows], work.transpose(0, 1))
            total = moments[0]
            mean_u = moments[1] / total  # o - centre
            out = (centre[:, None] + mean_u).view(batch, d, labels).transpose(1, 2)  # eq. 9: B x C x d
            variance = moments[2] / total - mean_u * mean_u if need_variance else None
            ctx.save_for_backward(u, e, total.log_().sub_(neg_shift), mean_u, variance)
            ctx.sizes = (batch, positions, d, labels, chunk_elements)
        if want_attention:
            attention = attention.permute(1, 2, 0) / d  # B x C x HW, averaged over channels
            ctx.mark_non_differentiable(attention)
        return out, attention

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_attention):
        u, e, log_total, mean_u, variance = ctx.saved_tensors
        batch, positions, d, labels, chunk_elements = ctx.sizes
        grad_features = grad_embeddings = None
        with torch.autocast(u.device.type, enabled=False):
            grad = grad_out.transpose(1, 2).reshape(batch * d, labels).to(u.dtype)  # (R, C)
            if ctx.needs_input_grad[1]:
                grad_embeddings = (grad * variance).view(batch, d, labels).sum(dim=0).t()
            if ctx.needs_input_grad[0]:
                # d f[p] = sum_c a[p, c] (grad[c] (1 - e[c] (o[c] - centre)) + u[p] grad[c] e[c])
                constant, slope = grad * (1 - e * mean_u), grad * e
                grad_rows = torch.empty_like(u)  # (HW, R)
                for rows, u_rows, work, scaled in _row_chunks(u, labels, chunk_elements):
                    torch.addcmul(log_total[rows].neg(), u_rows, e[rows], out=work)
                    _floored_exp_(work)  # the attention a, recomputed
                    torch.addcmul(constant[rows], u_rows, slope[rows], out=scaled)
                    scaled.mul_(work)
                    grad_rows[:, rows] = scaled.sum(dim=-1)
                grad_features = grad_rows.view(positions, batch, d).transpose(0, 1)
        return grad_features, grad_embeddings, None, None


def semantic_guided_attention_lean(features: torch.Tensor, embeddings: torch.Tensor,
                                   return_attention: bool = False,
                                   chunk_elements: int | None = None, temperature=1.0, axis: str = "channel"):
    """:func:`semantic_guided_attention` (eq. 7-9) without its B x HW x C x d tensors.

    Same arguments and results to float tolerance (float32 under half-precision autocast, like
    the reference form's softmax). The scores are computed in chunks of about ``chunk_elements``
    values (by default :func:`sga_chunk_elements` of the features' device); backward keeps
    B x C x d values instead of the score tensors and recomputes the attention chunk by chunk
    (:class:`_LeanSemanticGuidedAttention`). The channel-averaged attention returned with
    ``return_attention`` carries no gradient.

    A ``temperature`` other than 1 divides the embeddings instead of the scores (``f e / T =
    f (e / T)``, and eq. 9 reads f alone), so the gradient reaches a learned temperature. The
    label axis (``axis="label"``) holds no such tensors in the first place: it runs
    :func:`msrn_core.layers.label_spatial_attention` as it is.
    """
    if features.dim() != 3 or embeddings.dim() != 2 or features.shape[-1] != embeddings.shape[-1]:
        raise ValueError(f"semantic guided attention expects features B x HW x d and embeddings C x d "
                         f"with the same d, got {tuple(features.shape)} and {tuple(embeddings.shape)}")
    check_sga_axis(axis)
    if axis == "label":
        out, attention = label_spatial_attention(features, embeddings, temperature)
        return (out, attention) if return_attention else out
    dtype = torch.promote_types(torch.promote_types(features.dtype, embeddings.dtype), torch.float32)
    if chunk_elements is None:
        chunk_elements = sga_chunk_elements(features.device)
    embeddings = embeddings.to(dtype)
    if not (isinstance(temperature, (int, float)) and temperature == 1):
        embeddings = embeddings / temperature
    out, attention = _LeanSemanticGuidedAttention.apply(features.to(dtype), embeddings,
                                                        return_attention, chunk_elements)
    return (out, attention) if return_attention else out
