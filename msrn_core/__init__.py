"""msrn_core: the small package behind the MSRN multi-label classification tutorial.

Modules
-------
- ``utils``           seeding, device selection, atomic file writes
- ``data``            the dataset interface shared by every dataset, image loading, transforms
- ``scenes``          the built-in synthetic multi-label scene dataset (offline default)
- ``datasets``        the real benchmarks: VOC 2007, COCO 2014, NUS-WIDE, Apparel (``load_dataset``)
- ``download``        the one download helper (cache, checksum, resume) and the VOC 2007 archives
- ``graph``           label co-occurrence statistics and the ML-GCN / GAT adjacency
- ``label_features``  label-feature providers (one-hot, sentence embeddings, GloVe)
- ``layers``          GAT layer, Diffpool, compactness loss, semantic guided attention
- ``model``           MSRN, its backbone branches, and the two baselines
- ``dsdl``            DSDL: label vectors as a dictionary, closed-form coefficients as scores
- ``metrics``         mAP, per-class AP, CP/CR/CF1/OP/OR/OF1 and top-3 variants
- ``training``        the training loop, checkpoints, evaluation
- ``train``           the command-line entry point (``python -m msrn_core.train``)
- ``plots``           every figure of the tutorial, saved through one helper
"""

__version__ = "0.1.0"
