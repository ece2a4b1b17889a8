"""Notebooks 05 and 06 on real photos: VOC 2007, COCO 2014 or a folder of your own.

The notebooks' ``DATASET`` parameter picks the data (``"scenes"``, the built-in default, keeps
their real-data sections switched off). :class:`RealDataRun` says up front what it will download
and roughly how long training takes on the GPU it finds, then loads (downloading through
:mod:`msrn_core.data.download` where needed), trains with ``load_or_train`` (a finished run is loaded)
and evaluates. Everything goes through the same loaders and training loop as the command line.

Schedules (:data:`SCHEDULES`):

- ``short``: ResNet-101 with ImageNet weights at 448 px (the paper's model and resolution), batch
  8, 6 epochs, lr 0.01 (backbone x0.1), x0.1 after epoch 4. With ImageNet weights a few epochs
  already give a meaningful VOC mAP (ImageNet features transfer to VOC's 20 everyday classes);
  how close it comes to the paper's 94.9 was not measured here.
- ``paper``: the paper's full 90 epochs (x0.1 every 30), section 4.1.
- ``cpu``: ResNet-18 with ImageNet weights at 224 px, 3 epochs: what a CPU finishes in hours, not days.
- small mode (``MSRN_SMALL=1``): the smoke-test recipe, on whatever data ``data_root`` holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import recipes

DATASET_CHOICES = ("scenes", "voc2007", "coco2014", "folder")

SCHEDULES = {
    "short": replace(recipes.PAPER, name="short", epochs=6, lr_step=4),
    "paper": recipes.PAPER,
    "cpu": replace(recipes.CPU, name="cpu-imagenet", image_size=224, pretrained=True, lr=0.01,
                   backbone_lr_mult=0.1, epochs=3, lr_step=2),
}

# what each dataset downloads (archive, approximate bytes), through msrn_core.data.download
DOWNLOADS = {
    "voc2007": [("VOCtrainval_06-Nov-2007.tar", 460_032_000), ("VOCtest_06-Nov-2007.tar", 451_020_800)],
    "coco2014": [("annotations_trainval2014.zip", 252_907_541), ("val2014.zip", 6_645_013_297),
                 ("train2014.zip", 13_510_573_713)],
    "folder": [],
}
GLOVE_BYTES = 862_182_613  # glove.6B.zip, for LABEL_FEATURES = "glove"

# images of each split (train and val: the training images minus a held-out 10 %; COCO without
# its unannotated images, about)
SPLIT_IMAGES = {"voc2007": (4510, 501, 4952), "coco2014": (73_900, 8_200, 40_137)}

# MSRN training throughput at 448 px, batch 8, ResNet-101 (images per second, data loading
# included). Measured: the H100 (benchmarks/throughput.py with 8 loading processes, bf16).
# The others are scaled from it by the GPUs' relative ResNet training speed and are estimates.
TRAIN_IMAGES_PER_SECOND = {"H200": (120, "estimate"), "H100": (110, "measured"), "A100": (70, "estimate"),
                           "L4": (25, "estimate"), "V100": (40, "estimate"), "T4": (12, "estimate")}


def imagenet_weights_bytes(backbone: str) -> int:
    """The size of torchvision's default ImageNet weights of ``backbone`` (from their metadata)."""
    import torchvision

    try:
        megabytes = torchvision.models.get_model_weights(backbone).DEFAULT.meta.get("_file_size", 0)
    except (ValueError, AttributeError):
        return 0
    return int(megabytes * 1_048_576)


def human_bytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


# The CPU schedule (ResNet-18, 224 px) on 2 cores: the README's 37.4 images/s of the CPU recipe
# (128 px) scaled by the pixel count (128/224)^2, an estimate.
CPU_IMAGES_PER_SECOND = 12


def gpu_rate(device: torch.device, image_size: int = 448) -> tuple[str, float | None, str]:
    """``(device name, images/s of MSRN training, "measured"/"estimate")``; None if unknown.

    GPUs: at 448 px (the short and paper schedules); the CPU: at 224 px (the cpu schedule).
    """
    if device.type != "cuda":
        if device.type == "cpu" and image_size == 224:
            return "CPU", float(CPU_IMAGES_PER_SECOND), "estimate for 2 cores"
        return device.type.upper(), None, ""
    if image_size != 448:
        return torch.cuda.get_device_name(device), None, ""
    name = torch.cuda.get_device_name(device)
    for key, (rate, kind) in TRAIN_IMAGES_PER_SECOND.items():
        if key in name:
            return name, float(rate), kind
    return name, None, ""


def auto_schedule(device: torch.device) -> str:
    return "short" if device.type == "cuda" else "cpu"


@dataclass
class RealDataRun:
    """One notebook's real-data section: which data, which schedule, where the run lives."""

    dataset: str = "scenes"
    data_root: str | os.PathLike = "data"
    schedule: str = "auto"
    small: bool = False
    device: torch.device = torch.device("cpu")
    label_features: str = "sentence"
    classes: list[str] | None = None

    def __post_init__(self):
        self.dataset = self.dataset.strip().lower()
        if self.dataset not in DATASET_CHOICES:
            raise ValueError(f"DATASET must be one of {', '.join(map(repr, DATASET_CHOICES))}, got {self.dataset!r}")
        if self.schedule == "auto":
            self.schedule = auto_schedule(self.device)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"SCHEDULE must be 'auto' or one of {', '.join(map(repr, SCHEDULES))}, got {self.schedule!r}")
        if not str(self.data_root):
            from ..utils import project_root

            self.data_root = project_root() / "data"
        self.data_root = Path(self.data_root)

    @property
    def active(self) -> bool:
        """False for the built-in dataset: the real-data sections are skipped."""
        return self.dataset != "scenes"

    @property
    def recipe(self) -> recipes.Recipe:
        return recipes.SMALL if self.small else SCHEDULES[self.schedule]

    @property
    def run_dir(self) -> Path:
        from ..utils import project_root

        return project_root() / "runs" / "notebooks" / f"{self.dataset}-{self.recipe.name}" / "msrn"

    def describe(self) -> str:
        """What will be downloaded (sizes) and roughly how long one epoch and the schedule take."""
        if not self.active:
            return ("DATASET = 'scenes': the real-photo sections are skipped. Set DATASET = 'voc2007' "
                    "(or 'coco2014', or 'folder' with DATA_ROOT = your folder) in the parameters cell.")
        recipe = self.recipe
        lines = [f"dataset {self.dataset} in {self.data_root}; recipe '{recipe.name}': {recipe.backbone}"
                 f"{' with ImageNet weights' if recipe.pretrained else ' from scratch'}, {recipe.image_size} px, "
                 f"{recipe.epochs} epochs, batch {recipe.batch_size}"]
        downloads = [] if self.small else [(f"{self.dataset} archives: {name}", size)
                                           for name, size in DOWNLOADS[self.dataset]]
        if recipe.pretrained:
            downloads.append((f"ImageNet weights of {recipe.backbone} (torchvision, cached once)",
                              imagenet_weights_bytes(recipe.backbone)))
        if self.label_features == "glove":
            downloads.append(("GloVe 6B vectors (glove.6B.zip)", GLOVE_BYTES))
        if downloads:
            lines.append("downloads (once; skipped when already present):")
            lines += [f"  {what}: {human_bytes(size)}" for what, size in downloads]
            total = sum(size for _, size in downloads)
            lines.append(f"  total up to {human_bytes(total)}"
                         + (", plus as much again while the archives are extracted" if DOWNLOADS[self.dataset] else ""))
        else:
            lines.append("downloads: none")
        lines.append(self.time_estimate())
        return "\n".join(lines)

    def time_estimate(self) -> str:
        if self.small:
            return "training: a few smoke-test steps (small mode; the numbers mean nothing)"
        splits = SPLIT_IMAGES.get(self.dataset)
        name, rate, kind = gpu_rate(self.device, self.recipe.image_size)
        if rate is None or splits is None:
            return (f"training time on {name}: no figure for this device and recipe; the progress bar "
                    "shows the rate after a few steps (README: the H100 trains MSRN at about 110 images/s at 448 px)")
        train, val, test = splits
        epoch = train / rate + val / (3 * rate)  # inference runs about 3 x faster than training
        total = epoch * self.recipe.epochs + test / (3 * rate)
        return (f"training time on {name}: about {epoch / 60:.0f} min per epoch ({rate:.0f} images/s, {kind}), "
                f"about {total / 3600:.1f} h for the {self.recipe.epochs} epochs and the test split")

    def prepare(self):
        """The :class:`~msrn_core.running.experiment.DataSetup` (downloading VOC or COCO when missing)."""
        from .experiment import prepare_dataset

        options = {"classes": self.classes} if self.classes else {}
        if self.dataset in ("voc2007", "coco2014") and not self.small:
            options["download"] = True
        setup = prepare_dataset(self.dataset, self.data_root, image_size=self.recipe.image_size,
                                label_features=self.label_features, **options)
        print(setup.describe())
        return setup

    def train(self, setup, force: bool = False):
        """``load_or_train`` MSRN with the schedule; returns ``(model, TrainResult)``."""
        from .experiment import make_model
        from .training import load_or_train
        from ..utils import seed_everything

        seed_everything(0)
        model = make_model(setup, self.recipe.model_config())
        config = self.recipe.train_config(device=str(self.device),
                                          num_workers=0 if self.small else self.recipe.num_workers)
        result = load_or_train(model, setup.train, setup.val, config, self.run_dir, force=force)
        return model.eval(), result

    def load(self, setup):
        """The finished run's model (trained by notebook 05), or a clear error naming it."""
        from .experiment import make_model
        from .training import load_best

        if not (self.run_dir / "best.pt").exists():
            raise FileNotFoundError(f"no trained model in {self.run_dir}: run notebook 05 with DATASET = "
                                    f"{self.dataset!r} first (or the same parameters here)")
        model = make_model(setup, self.recipe.model_config())
        load_best(model, self.run_dir, setup.class_names)
        return model.to(self.device).eval()
