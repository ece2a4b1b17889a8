"""Training recipes shared by the main job, the notebooks and the command line.

``CPU`` is what a reader runs offline: a ResNet-18 at 128 px and a narrowed MSRN head (d = 256,
fc1 -> 512; the paper's widths make fc1 alone 94 M weights for 26 labels, which dominates a CPU
step). As the paper fine-tunes ImageNet weights (section 4.1), the CPU recipe first trains one
plain ResNet-18 on the built-in data (``pretrain_epochs``) and shares that backbone with every
model it compares, each fine-tuned for the same ``epochs`` with the backbone at 0.1 x the
learning rate; both phases use a cosine schedule after a short warm-up, bf16 autocast where the
CPU computes bf16 natively, and channels_last. The compared models run at output stride 16 (layer4
keeps layer3's 8 x 8 map at 128 px, :func:`msrn_core.model.keep_layer4_resolution`): a 4 x 4 last
map is too coarse to point at the scenes' small objects. The backbone is pre-trained at the
published stride 32: pre-training at 16 as well gave about the same models at 1.5 x the cost.
The study behind these choices is ``benchmarks/lessons_study.py`` (table in ``benchmarks/README.md``). ``SMALL`` is the smoke-test
size used in CI. ``PAPER`` is the paper's recipe (section 4.1) for a GPU and real benchmarks.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .. import defaults
from ..mode import settled_device, small_mode_requested
from ..model import ModelConfig, config_class, model_config
from ..data.scenes import SceneConfig
from .training import TrainConfig
from ..utils import worker_processes


# The shared backbone's pre-training validates its last epochs only (Recipe.pretrain_config): with
# the cosine schedule the validation mAP rises to the end (best epoch 7 or 8 of 8 in the runs so far),
# so the selected backbone is the same, and each skipped pass saves one pass over the validation split.
PRETRAIN_VALIDATED_EPOCHS = 3


@dataclass(frozen=True)
class Recipe:
    name: str
    image_size: int
    backbone: str
    pretrained: bool
    embed_dim: int
    fc_hidden: int
    epochs: int
    batch_size: int
    lr: float
    backbone_lr_mult: float
    lr_step: int
    max_steps_per_epoch: int | None = None
    num_workers: int = 2  # data-loading processes
    schedule: str = "step"  # TrainConfig.schedule: step | cosine
    warmup_epochs: float = 0.0  # cosine: linear warm-up
    amp: str = "auto"  # TrainConfig.amp; "bf16" also autocasts on CPUs with native bf16
    channels_last: bool = False
    compactness_form: str = "paper"  # ModelConfig.compactness_form: paper | authors | paper_mean
    group_link_weight: float = 0.0  # TrainConfig.group_link_weight: Diffpool's link prediction (0: the paper)
    # A backbone trained once on the dataset (a plain ResNet) and shared by every model before
    # its own ``epochs`` of fine-tuning: the offline stand-in for ImageNet weights. 0: none.
    pretrain_epochs: int = 0
    pretrain_lr: float = 0.1  # the pre-training's learning rate (whole network)
    output_stride: int = 32  # ModelConfig.output_stride of the compared models (16: layer4 as large as layer3)
    pretrain_output_stride: int = 32  # the shared backbone's, while it is pre-trained

    def model_config(self, **overrides):
        """The recipe's architecture for ``overrides["kind"]`` (MSRN by default).

        Recipe widths a kind has no field for (DSDL has no ``fc_hidden``) are left out.
        """
        kind = overrides.pop("kind", "msrn")
        fields_of_kind = {f.name for f in fields(config_class(kind))}
        values = {name: value for name, value in dict(
            backbone=self.backbone, pretrained=self.pretrained, embed_dim=self.embed_dim,
            fc_hidden=self.fc_hidden, output_stride=self.output_stride).items() if name in fields_of_kind}
        if kind == "msrn":  # the baselines have no groups: their checkpoints don't depend on the form
            values["compactness_form"] = self.compactness_form
        values.update(overrides)
        return model_config(kind, **values)

    def train_config(self, **overrides) -> TrainConfig:
        values = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                      backbone_lr_mult=self.backbone_lr_mult, lr_step=self.lr_step,
                      max_steps_per_epoch=self.max_steps_per_epoch, num_workers=self.num_workers,
                      schedule=self.schedule, warmup_epochs=self.warmup_epochs, amp=self.amp,
                      channels_last=self.channels_last, group_link_weight=self.group_link_weight)
        values.update(overrides)
        return TrainConfig(**values)

    def pretrain_config(self, **overrides) -> TrainConfig:
        """The shared backbone's training: a plain ResNet, ``pretrain_epochs`` at ``pretrain_lr``
        for every layer (there is nothing pre-trained to protect yet), scored on the validation split
        in its last :data:`PRETRAIN_VALIDATED_EPOCHS` epochs only (the cosine schedule's best epoch is
        one of them; the earlier passes would only be printed)."""
        if self.pretrain_epochs < 1:
            raise ValueError(f"recipe {self.name!r} has no backbone pre-training (pretrain_epochs = 0)")
        validate_from = max(1, self.pretrain_epochs - PRETRAIN_VALIDATED_EPOCHS + 1)
        return self.train_config(**{"epochs": self.pretrain_epochs, "lr": self.pretrain_lr,
                                    "backbone_lr_mult": 1.0, "validate_from_epoch": validate_from, **overrides})

    def scene_config(self) -> SceneConfig:
        """The built-in dataset this recipe trains on (the tiny split sizes for the smoke test)."""
        return replace(SceneConfig.small() if self.name == "small" else SceneConfig(), image_size=self.image_size)


CPU = Recipe("cpu", image_size=defaults.IMAGE_SIZE, backbone="resnet18", pretrained=False,
             embed_dim=defaults.CPU_EMBED_DIM, fc_hidden=defaults.CPU_FC_HIDDEN,
             epochs=2, batch_size=32, lr=0.1, backbone_lr_mult=0.1, lr_step=2, schedule="cosine",
             warmup_epochs=0.3, amp="bf16", channels_last=True, compactness_form="paper_mean", group_link_weight=1.0,
             pretrain_epochs=8, pretrain_lr=0.1, output_stride=16)
# The former CPU recipe, ResNet-18 from scratch for 3 epochs with a step decay: the defaults of
# the training command line (``python -m msrn_core.running.train``), which has no pre-training phase.
CPU_SCRATCH = Recipe("cpu-scratch", image_size=defaults.IMAGE_SIZE, backbone="resnet18", pretrained=False,
                     embed_dim=defaults.CPU_EMBED_DIM, fc_hidden=defaults.CPU_FC_HIDDEN,
                     epochs=3, batch_size=16, lr=0.03, backbone_lr_mult=1.0, lr_step=2)
SMALL = replace(CPU, name="small", image_size=64, epochs=1, max_steps_per_epoch=4, batch_size=16, pretrain_epochs=1)
# A GPU eats 448 px images faster than 2 processes decode and augment them: one per core, up to 8.
GPU_WORKERS = worker_processes()
# A GPU kernel (Colab, a workstation): the paper's architecture and resolution on the built-in
# dataset, with ImageNet weights and a short schedule.
# The GPU recipes train in mixed precision (amp "auto": bf16 where the GPU computes it natively,
# compute capability 8.0 or more, else fp16 with a gradient scaler) on channels_last tensors, and
# every CUDA run lets cuDNN time its convolution algorithms (TrainConfig.cudnn_benchmark). On an H100
# at batch 8 neither bf16 nor channels_last changed the speed beyond the run-to-run spread
# (benchmarks/README.md): they are this recipe's choice, the usual one for fixed 448 px inputs, not
# a measured gain; python -m benchmarks.gpu_check measures them on the GPU at hand.
GPU = Recipe("gpu", image_size=defaults.PAPER_IMAGE_SIZE, backbone="resnet101", pretrained=True,
             embed_dim=defaults.EMBED_DIM, fc_hidden=defaults.FC_HIDDEN,
             epochs=10, batch_size=8, lr=0.01, backbone_lr_mult=0.1, lr_step=7, num_workers=GPU_WORKERS,
             channels_last=True)
PAPER = Recipe("paper", image_size=defaults.PAPER_IMAGE_SIZE, backbone="resnet101", pretrained=True,
               embed_dim=defaults.EMBED_DIM, fc_hidden=defaults.FC_HIDDEN,
               epochs=90, batch_size=8, lr=0.01, backbone_lr_mult=0.1, lr_step=30, num_workers=GPU_WORKERS,
               channels_last=True)


# The fields in which the authors' MSGDN differs from this repository's MSRN (ModelConfig.authors()).
AUTHORS_MODEL_FIELDS = {name: value for name, value in vars(ModelConfig.authors()).items()
                        if value != getattr(ModelConfig(), name)}


@dataclass(frozen=True)
class AuthorsRecipe(Recipe):
    """A recipe that trains MSRN as the authors' code does: their model
    (:meth:`~msrn_core.model.ModelConfig.authors`) and their augmentation (``"authors"``,
    :func:`msrn_core.data.dataset.build_transform`)."""

    augmentation: str = "authors"

    def model_config(self, **overrides):
        if overrides.get("kind", "msrn") == "msrn":
            overrides = {**AUTHORS_MODEL_FIELDS, **overrides}
        return super().model_config(**overrides)


# MSRN as the authors train it (their demo_voc2007_gcn.py, engine.py and models.py, MSGDN.get_config_optim):
# SGD lr 0.1 with the backbone at 0.1 x, momentum 0.9, weight decay 1e-4, batch 16, fp16 autocast
# with a GradScaler, lr x0.1 at epoch 30 (--epoch_step 30). Their engine (Engine.learning) replaces
# --epochs 20 with 200 and keeps the best epoch on the test split; 60 epochs (the one decay at 30)
# is this recipe's choice. 448 px as their README's commands (the demo's default is 224).
AUTHORS_VOC = AuthorsRecipe("authors-voc", image_size=defaults.PAPER_IMAGE_SIZE, backbone="resnet101",
                            pretrained=True, embed_dim=defaults.EMBED_DIM, fc_hidden=defaults.FC_HIDDEN,
                            epochs=60, batch_size=16, lr=0.1, backbone_lr_mult=0.1, lr_step=30,
                            num_workers=GPU_WORKERS, amp="fp16", compactness_form="authors", channels_last=True)


# --------------------------------------------------------------------------- the attention comparison
# The MSRN variant the notebooks train beside the paper's eq. 8 (notebooks 05-06): what eq. 8's
# softmax runs over (``ModelConfig.attention_axis``) and how its scores are scaled
# (``attention_scale``, ``attention_temperature``). The one place this choice is made.
ATTENTION_VARIANT = dict(attention_axis="channel", attention_scale="fixed", attention_temperature=0.1)
"""Chosen on the validation split by ``benchmarks/lessons_study.py`` (the best branch's pointing game,
then mAP) among the MSRN variants of :data:`STUDY_ATTENTION_VARIANTS`: study row
``ft8_msrn_os16_T0.1`` (eq. 8's scores divided by 0.1), the best of the variants scored when this
was set (table in ``benchmarks/README.md``)."""


def attention_variant_name(variant: dict | None = None) -> str:
    """``"msrn_label_sqrt_d"``: the name of an MSRN variant (:data:`ATTENTION_VARIANT` by default),
    its key in ``lessons.json``; its run folder is the same name with dashes."""
    variant = ATTENTION_VARIANT if variant is None else variant
    values = [str(variant[key]) for key in ("attention_axis", "attention_scale", "attention_temperature")
              if key in variant]
    return "_".join(["msrn", *values]).replace(".", "p").replace("-", "_").lower()


# The recipe study's MSRN variants (``benchmarks/lessons_study.py``: candidate -> its eq. 8 switches);
# each is one entry of ``attention_variants`` in lessons.json, named by :func:`attention_variant_name`.
STUDY_ATTENTION_VARIANTS = {
    "ft8_msrn_os16_T0.1": dict(attention_axis="channel", attention_scale="fixed", attention_temperature=0.1),
    "ft8_msrn_os16_sqrtd": dict(attention_axis="channel", attention_scale="sqrt_d"),
    "ft8_msrn_os16_learnedT": dict(attention_axis="channel", attention_scale="learned"),
    "ft8_msrn_os16_label_sqrtd": dict(attention_axis="label", attention_scale="sqrt_d"),
    "ft8_msrn_os16_label": dict(attention_axis="label", attention_scale="none"),
}
# lessons.json key -> the study's candidate whose rows ``<candidate>_s<k>`` hold the seeds of that model
# (seed 0 of the models the notebooks train: the main job's run, trained alike)
ATTENTION_STUDY_ROWS = {"msrn": "ft8_msrn_os16", "plain_cam": "ft8_plain_os16", "csra": "ft8_csra_os16",
                        **{attention_variant_name(v): name for name, v in STUDY_ATTENTION_VARIANTS.items()}}


def default_recipe(small: bool | None = None) -> Recipe:
    """``SMALL`` in small mode (argument, else the settled mode, else ``MSRN_SMALL``); otherwise the
    recipe of the device a notebook's kernel settled (:func:`msrn_core.mode.use_small_mode`), else ``CPU``.

    So a notebook on a CUDA kernel trains and loads the ``GPU`` recipe's runs, and one on a CPU
    kernel the ``CPU`` recipe's, whichever notebook trained them first.
    """
    return recipe_for_device(small, settled_device() or "cpu")


def recipe_for_device(small: bool | None, device) -> Recipe:
    """The recipe of the kernel a notebook runs on: ``SMALL`` in small mode, ``GPU`` on a CUDA
    device, ``CPU`` otherwise (MPS included: the GPU recipe's 448 px ResNet-101 is a CUDA budget)."""
    if small_mode_requested(small):
        return SMALL
    return GPU if str(getattr(device, "type", device)) == "cuda" else CPU
