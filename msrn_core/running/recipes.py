"""Training recipes shared by the main job, the notebooks and the command line.

``CPU`` is what a reader runs offline: ResNet-18 from scratch at 128 px, a few epochs, and a
narrowed MSRN head (d = 256, fc1 -> 512; the paper's widths make fc1 alone 94 M weights for 26
labels, which dominates a CPU step). ``SMALL`` is the smoke-test size used in CI. ``PAPER`` is
the paper's recipe (section 4.1) for a GPU and real benchmarks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from .. import defaults
from ..model import config_class, model_config
from ..data.scenes import SceneConfig
from .training import TrainConfig
from ..utils import worker_processes


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

    def model_config(self, **overrides):
        """The recipe's architecture for ``overrides["kind"]`` (MSRN by default).

        Recipe widths a kind has no field for (DSDL has no ``fc_hidden``) are left out.
        """
        kind = overrides.pop("kind", "msrn")
        fields_of_kind = {f.name for f in fields(config_class(kind))}
        values = {name: value for name, value in dict(
            backbone=self.backbone, pretrained=self.pretrained, embed_dim=self.embed_dim,
            fc_hidden=self.fc_hidden).items() if name in fields_of_kind}
        values.update(overrides)
        return model_config(kind, **values)

    def train_config(self, **overrides) -> TrainConfig:
        values = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                      backbone_lr_mult=self.backbone_lr_mult, lr_step=self.lr_step,
                      max_steps_per_epoch=self.max_steps_per_epoch, num_workers=self.num_workers)
        values.update(overrides)
        return TrainConfig(**values)

    def scene_config(self) -> SceneConfig:
        """The built-in dataset this recipe trains on (the tiny split sizes for the smoke test)."""
        return replace(SceneConfig.small() if self.name == "small" else SceneConfig(), image_size=self.image_size)


CPU = Recipe("cpu", image_size=defaults.IMAGE_SIZE, backbone="resnet18", pretrained=False,
             embed_dim=defaults.CPU_EMBED_DIM, fc_hidden=defaults.CPU_FC_HIDDEN,
             epochs=3, batch_size=16, lr=0.03, backbone_lr_mult=1.0, lr_step=2)
SMALL = replace(CPU, name="small", image_size=64, epochs=1, max_steps_per_epoch=4)
# A GPU eats 448 px images faster than 2 processes decode and augment them: one per core, up to 8.
GPU_WORKERS = worker_processes()
# A GPU kernel (Colab, a workstation): the paper's architecture and resolution on the built-in
# dataset, with ImageNet weights and a short schedule.
GPU = Recipe("gpu", image_size=defaults.PAPER_IMAGE_SIZE, backbone="resnet101", pretrained=True,
             embed_dim=defaults.EMBED_DIM, fc_hidden=defaults.FC_HIDDEN,
             epochs=10, batch_size=8, lr=0.01, backbone_lr_mult=0.1, lr_step=7, num_workers=GPU_WORKERS)
PAPER = Recipe("paper", image_size=defaults.PAPER_IMAGE_SIZE, backbone="resnet101", pretrained=True,
               embed_dim=defaults.EMBED_DIM, fc_hidden=defaults.FC_HIDDEN,
               epochs=90, batch_size=8, lr=0.01, backbone_lr_mult=0.1, lr_step=30, num_workers=GPU_WORKERS)


def small_mode_requested() -> bool:
    """True when the environment variable ``MSRN_SMALL`` asks for the smoke-test size."""
    return os.environ.get("MSRN_SMALL", "").lower() not in ("", "0", "false", "no")


def default_recipe(small: bool | None = None) -> Recipe:
    """``SMALL`` in small mode (argument, else ``MSRN_SMALL``), otherwise ``CPU``."""
    small = small_mode_requested() if small is None else small
    return SMALL if small else CPU
