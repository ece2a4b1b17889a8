"""msrn_core: the small package behind the MSRN multi-label classification tutorial.

The teaching core sits at the top: each module is one idea of the paper, short, with its
equation numbers, and the notebooks check it by hand. The machinery that feeds, trains and
runs the model lives in the subpackages below it.

The model (read in this order)
------------------------------
- ``graph``           label co-occurrence statistics, the ML-GCN adjacency (t, p), the GAT mask
- ``label_features``  label vectors V: one-hot, sentence embeddings, GloVe
- ``layers``          GAT layer (eq. 2-4), Diffpool and its block (eq. 5), Diffpool's link loss,
                      compactness loss (eq. 6), semantic guided attention (eq. 7-9), plain form
- ``model``           MSRN, its backbone branches and classifier, the two baselines, the one
                      registry of model kinds (``build_model``, ``model_config``)
- ``objective``       the loss, one function per term: BCE (eq. 1), compactness (eq. 6), link
- ``training_step``   the one training step: autocast, objective, backward, clipping, SGD step
- ``csra``            class-specific residual attention, a baseline with one map per label
- ``metrics``         AP, mAP, CP/CR/CF1, OP/OR/OF1 and their top-3 variants
- ``groups``          Diffpool label groups fitted in seconds and scored against the themes
- ``attention``       the pointing game: do attention maps (or a baseline's class activation
                      maps) peak inside a label's boxes? And why they do or do not
- ``mode``            small mode (the smoke-test size) and the figures folder it picks
- ``utils``           seeding, device choice, atomic file writes
- ``defaults``        every default value (image size, t, p, label features, widths) in one place

Around the model
----------------
- ``plots/``          every figure of the tutorial, saved through one helper, one module a topic
                      (graph, groups, attention, training curves, metrics, notebooks 07-08)
- ``notebook``        what every notebook opens with, and the trained models they share
- ``lessons``         the one writer of ``figures/lessons.json``: each measured lesson with its run
- ``predict``         a trained model on your own photos (``python -m msrn_core.predict``)

The machinery
-------------
- ``data/``           the dataset interface and transforms (``dataset``), the built-in scene
                      dataset (``scenes/``, one module a job), the real benchmarks and your own
                      photo folder (``real/``), downloads (``download``)
- ``running/``        the training loop (``training``), checkpoints, the recipes, the wiring from
                      settings to data and model (``experiment``), the runs the notebooks and the
                      ablation study share (``shared_runs``), multi-GPU runs (``distributed``),
                      training guards (``guards``), progress bars (``progress``), and the command
                      lines: training (``train``), the scene dataset (``make_scenes``), the paper's
                      tables (``reproduce``), the trained ablations (``ablation_study``), the
                      headless notebook runner (``run_notebooks``, ``notebook_outputs``,
                      ``compare_runs``), the static book (``book``), real datasets in the
                      notebooks (``real_data``); ``cli`` gives them their one-line errors
- ``variants/``       optional forms of the model's parts, chosen through ``ModelConfig``: the
                      memory-lean SGA MSRN trains with (``lean_sga``, same results as
                      ``layers``' plain eq. 7-9) and the per-label head (``per_label_head``)
- ``extras/``         the two related methods of notebooks 07-08: DSDL (``dsdl``), SDL and the
                      zero-shot protocol (``sdl``, ``zero_shot``)
- ``exercises/``      the exercises at the end of notebooks 01-08 and the checkers that answer
                      back (a notebook helper: it imports the package, nothing imports it)
"""

__version__ = "0.1.0"
