"""Running: training, checkpoints and the commands that drive them.

- ``recipes``        the training recipes (CPU, SMALL, GPU, PAPER): one home for their settings
- ``experiment``     settings to dataset, label graph, label features and model
- ``training``       the training loop, evaluation, prediction, exact resume
- ``checkpoints``    signature-checked checkpoints
- ``train``          the command line (``python -m msrn_core.running.train``)
- ``distributed``    multi-GPU training under ``torchrun``
- ``reproduce``      one command per paper table (``python -m msrn_core.running.reproduce``)
- ``run_notebooks``  the headless notebook runner behind ``make tutorial``
"""
