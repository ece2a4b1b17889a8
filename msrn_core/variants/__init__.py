"""Variants of MSRN's parts, chosen through ``ModelConfig``; the plain forms are in ``layers`` and ``model``.

- ``lean_sga``        eq. 7-9 in chunks with a hand-derived backward: the same results as
                      ``layers.semantic_guided_attention`` without its B x HW x C x d tensors
                      (``ModelConfig.sga = "lean"``, the default for training)
- ``per_label_head``  a classifier whose size grows linearly in the number of labels
                      (``ModelConfig.head = "per_label"``), for datasets with thousands of labels
"""
