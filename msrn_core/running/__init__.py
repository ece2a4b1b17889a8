"""Running: training, checkpoints and the commands that drive them.

- ``recipes``        the training recipes (CPU, SMALL, GPU, PAPER): one home for their settings
- ``experiment``     settings to dataset, label graph, label features and model
- ``training``       the training loop, and the gradient-norm diagnostic of notebook 05
- ``optimization``   SGD with the backbone's lower learning rate, the step and cosine schedules
- ``precision``      the autocast dtype for a device (bf16, fp16) and the gradient scaler
- ``loaders``        the seeded training loader and the evaluation loaders
- ``evaluation``     prediction and every metric on a split, sharded over processes
- ``run_folder``     what a run folder holds: last.pt, best.pt, history; exact resume
- ``checkpoints``    signature-checked checkpoints, loaded without unpickling code
- ``guards``         what the loop checks: divergence, model selection, options changed on resume
- ``train``          the command line (``python -m msrn_core.running.train``)
- ``distributed``    multi-GPU training under ``torchrun``
- ``reproduce``      one command per paper table (``python -m msrn_core.running.reproduce``)
- ``run_notebooks``  the headless notebook runner behind ``make tutorial``
- ``cli``            how every command ends on an error: one ``error:`` line (``--debug``: traceback)
"""
