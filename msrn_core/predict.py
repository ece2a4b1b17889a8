"""Run a trained model on your own photos: its labels with probabilities, and what it looked at.

    python -m msrn_core.predict photo.jpg [more.png ...] --checkpoint runs/notebooks/cpu/msrn/best.pt

prints each image's top labels with their probabilities and saves one figure per image
(``<out>/<image name>_predict.png``): the image with its top labels and, beside it,

- MSRN: the label attention of each branch (paper eq. 8), every map on one shared colour scale
  (attention relative to a uniform spread: 1 = spread evenly, 4 = four times the even share),
  with a colour bar;
- plain ResNet, ML-GCN and CSRA: the class activation map of each label (Zhou et al. 2016: the label's
  classifier applied at every position of the last stage, ``details["class_activation_map"]``);
- DSDL: the representation coefficients of the top classes (its scores);
- SDL: the ranked tags, with the tags the model never saw in training (unseen) marked.

The model is rebuilt from the checkpoint alone: its signature holds the architecture config and
the class names, its weights the label features and the label graph (buffers), and checkpoints
written by the training loop also hold the input size. Everything is plain tensors and values,
read with ``torch.load(weights_only=True)``. Any image PIL opens works: any size, grayscale,
palette, RGBA (composited on white), with its EXIF orientation applied.

:func:`predict_upload` does the same for the bytes of an ``ipywidgets.FileUpload`` (notebook 06).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .data.dataset import build_transform
from .utils import UnreadableTensorFileError, UnsafePickleError, load_tensors_only

DEFAULT_IMAGE_SIZE = 448  # the paper's input size, for checkpoints that do not store theirs
DISPLAY_SIDE = 512  # longest side of the image as drawn in the figure
UNSEEN_COLOR = "tab:orange"


class PredictError(ValueError):
    """A file that is not an image or not a checkpoint; the message is one line naming the fix."""


@dataclass
class Predictor:
    """A model rebuilt from a checkpoint, ready for single images."""

    model: torch.nn.Module
    class_names: list[str]
    image_size: int
    device: torch.device
    source: str = "checkpoint"
    # SDL only: the full tag vocabulary (seen and unseen) and its label vectors, when stored
    tag_names: list[str] | None = None
    tag_vectors: torch.Tensor | None = None

    @property
    def kind(self) -> str:
        return self.model.config.kind


@dataclass
class Prediction:
    """One image's scores and the model-specific picture of how it got them."""

    name: str
    image: Image.Image  # as opened (orientation applied, RGB)
    names: list[str]  # the labels (tags for SDL) the scores belong to
    probabilities: np.ndarray  # sigmoid of the logits; SDL: the relevance scores themselves
    kind: str
    maps: list[np.ndarray] | None = None  # per branch (MSRN) or one (CAM): n x h x w
    map_titles: list[str] = field(default_factory=list)
    unseen: np.ndarray | None = None  # SDL: True for tags not trained on
    threshold: float = 0.5

    def ranked(self, top_k: int) -> list[int]:
        return [int(i) for i in np.argsort(-self.probabilities, kind="stable")[:top_k]]

    def describe(self, top_k: int = 5) -> str:
        score = "score" if self.kind == "sdl" else "p"
        lines = [f"{self.name}:"]
        for i in self.ranked(top_k):
            flags = []
            if self.kind != "sdl" and self.probabilities[i] >= self.threshold:
                flags.append("predicted")
            if self.unseen is not None and self.unseen[i]:
                flags.append("unseen in training")
            lines.append(f"  {self.names[i]:20s} {score} = {self.probabilities[i]:.3f}"
                         + (f"  ({', '.join(flags)})" if flags else ""))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def read_checkpoint_safely(path: str | Path) -> dict:
    """The checkpoint at ``path`` read with ``weights_only=True``; a :class:`PredictError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"no checkpoint at {path}: pass the best.pt of a training run (e.g. runs/msrn/best.pt)")
    try:
        checkpoint = load_tensors_only(path, fix="pass the best.pt of a training run")
    except UnsafePickleError as error:
        raise PredictError(str(error)) from None
    except UnreadableTensorFileError as error:
        raise PredictError(f"{path} is not a checkpoint msrn_core can read ({error.reason}); "
                           "pass the best.pt of a training run") from None
    if not isinstance(checkpoint, dict) or "signature" not in checkpoint or "model" not in checkpoint:
        raise PredictError(f"{path} was not written by msrn_core (no model signature inside); "
                           "pass the best.pt of a training run")
    return checkpoint


def load_predictor(checkpoint: str | Path, device: str | torch.device = "cpu",
                   image_size: int | None = None) -> Predictor:
    """Rebuild the model of ``checkpoint`` (no dataset needed) on ``device``."""
    from .running.checkpoints import model_from_payload
    from .utils import get_device

    payload = read_checkpoint_safely(checkpoint)
    model, class_names = model_from_payload(payload)
    device = get_device(device) if not isinstance(device, torch.device) else device
    size = image_size or payload.get("image_size")
    if size is None:
        size = DEFAULT_IMAGE_SIZE
        warnings.warn(f"{checkpoint} does not store its input size; using {size} px (set --image-size)",
                      stacklevel=2)
    vocabulary = payload.get("tag_vocabulary")
    return Predictor(model.to(device).eval(), list(class_names), int(size), device, str(checkpoint),
                     tag_names=list(vocabulary["names"]) if vocabulary else None,
                     tag_vectors=vocabulary["vectors"].float() if vocabulary else None)


def store_tag_vocabulary(checkpoint: str | Path, names: Sequence[str], vectors) -> None:
    """Add the full tag vocabulary (seen and unseen tags, n' x w vectors) to an SDL checkpoint.

    ``predict`` then ranks every tag of the vocabulary and marks those the model did not train on.
    """
    from .utils import atomic_write_bytes

    payload = read_checkpoint_safely(checkpoint)
    vectors = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    if vectors.shape[0] != len(names):
        raise ValueError(f"{len(names)} tag names but {vectors.shape[0]} vectors")
    payload["tag_vocabulary"] = {"names": list(names), "vectors": vectors}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(checkpoint, lambda handle: handle.write(buffer.getbuffer()))


def open_image(source, name: str | None = None) -> Image.Image:
    """An RGB image from a path, bytes or a PIL image: EXIF orientation applied, alpha on white.

    Raises :class:`PredictError` (one line) when PIL cannot open it.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "the uploaded file")
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            if isinstance(source, (str, Path)) and not Path(source).is_file():
                raise PredictError(f"no image at {source}: check the path")
            handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
            with warnings.catch_warnings():  # Pillow's "possible bomb" warning is refused like the error
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(handle)
                image.load()
        image = ImageOps.exif_transpose(image)
    except PredictError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PredictError(f"{label} is refused as a possible decompression bomb ({error}): if the image is "
                           f"genuine, allow more pixels with --max-pixels (now {Image.MAX_IMAGE_PIXELS}; "
                           "PIL.Image.MAX_IMAGE_PIXELS in Python), or pass a smaller copy") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PredictError(f"{label} is not an image PIL can open ({type(error).__name__}); "
                           "pass a JPEG, PNG or another image file") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


# --------------------------------------------------------------------------------------------
# what each kind of model shows
# --------------------------------------------------------------------------------------------
CAM_KINDS = ("plain", "mlgcn", "csra")  # kinds whose details hold per-class maps, "class_activation_map"


@torch.no_grad()
def predict_image(predictor: Predictor, image, name: str = "image", threshold: float = 0.5) -> Prediction:
    """Scores of one image (a path, bytes or PIL image) and the kind's explanation maps."""
    picture = open_image(image, name)
    tensor = build_transform(predictor.image_size, train=False)(picture)[None].to(predictor.device)
    model, kind = predictor.model, predictor.kind
    names = list(predictor.class_names)
    maps, titles, unseen = None, [], None
    if kind == "sdl":
        vectors = predictor.tag_vectors if predictor.tag_vectors is not None else model.label_features
        if predictor.tag_names is not None:
            names = list(predictor.tag_names)
        with model.use_tags(vectors):
            scores = model(tensor).logits[0].float().cpu().numpy()
        unseen = np.array([tag not in predictor.class_names for tag in names])
        return Prediction(name, picture, names, scores, kind, unseen=unseen, threshold=threshold)
    output = model(tensor, details=kind in ("msrn", *CAM_KINDS))
    probabilities = torch.sigmoid(output.logits[0].float()).cpu().numpy()
    if kind == "msrn":
        attention = output.details.get("label_attention") if output.details else None
        if attention is not None:
            # relative to a uniform spread (x h*w), so branches of different grid sizes share one scale
            maps = [(a[0].float() * a.shape[-2] * a.shape[-1]).cpu().numpy() for a in attention]
            titles = [f"layer{s} ({a.shape[-2]}x{a.shape[-1]})"
                      for s, a in zip(output.details["branch_stages"], attention)]
    elif kind in CAM_KINDS:
        cam = output.details["class_activation_map"]  # B x n x h x w (Zhou et al. 2016; CSRA's score maps)
        maps = [cam[0].float().cpu().numpy()]
        titles = [f"class activation map ({cam.shape[-2]}x{cam.shape[-1]})"]
    return Prediction(name, picture, names, probabilities, kind, maps, titles, threshold=threshold)


def _display_image(image: Image.Image) -> np.ndarray:
    picture = image.copy()
    picture.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    return np.asarray(picture, dtype=float) / 255.0


def prediction_figure(prediction: Prediction, top_k: int = 3):
    """One figure: the image with its top labels, then the kind's explanation (module docstring)."""
    import matplotlib.pyplot as plt

    picture = _display_image(prediction.image)
    height, width = picture.shape[:2]
    top = prediction.ranked(top_k)
    score = "score" if prediction.kind == "sdl" else "p"
    caption = "\n".join(f"{prediction.names[i]} ({score} {prediction.probabilities[i]:.2f})" for i in top)

    if prediction.maps:
        ncols = 1 + len(prediction.maps)
        cell = min(3.0, 12.0 / ncols)
        row_height = cell * min(1.5, max(0.5, height / width))
        fig, axes = plt.subplots(len(top), ncols, figsize=(cell * ncols + 1.2, row_height * len(top) + 0.8),
                                 squeeze=False, layout="constrained")
        vmax = max(float(m[top].max()) for m in prediction.maps)
        vmin = min(float(m[top].min()) for m in prediction.maps)
        if prediction.kind == "msrn":  # 0 to at least twice the even share: a flat map shows as flat
            vmin, vmax = 0.0, max(vmax, 2.0)
        image_artist = None
        for row, c in enumerate(top):
            axes[row, 0].imshow(picture)
            axes[row, 0].set_ylabel(f"{prediction.names[c]}\np = {prediction.probabilities[c]:.2f}", fontsize=10)
            for col, branch in enumerate(prediction.maps, start=1):
                upsampled = F.interpolate(torch.as_tensor(branch[c])[None, None], size=(height, width),
                                          mode="bilinear", align_corners=False)[0, 0].numpy()
                axes[row, col].imshow(picture)
                image_artist = axes[row, col].imshow(upsampled, cmap="jet", alpha=0.5, vmin=vmin, vmax=vmax)
                if row == 0:
                    axes[row, col].set_title(prediction.map_titles[col - 1], fontsize=10)
        axes[0, 0].set_title(prediction.name, fontsize=10)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        label = ("attention / uniform share (1 = spread evenly)" if prediction.kind == "msrn"
                 else "contribution to the label's logit")
        fig.colorbar(image_artist, ax=axes, shrink=0.8, label=label)
        what = ("MSRN: semantic guided attention per branch, one colour scale" if prediction.kind == "msrn"
                else f"{prediction.kind}: class activation maps, one colour scale")
        fig.suptitle(what, fontsize=11)
        return fig

    # DSDL (coefficients), SDL (ranked tags), or an MSRN without label attention: image + bars
    fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    ax_image.imshow(picture)
    ax_image.set_title(prediction.name, fontsize=10)
    ax_image.set_xlabel(caption, fontsize=9)
    ax_image.set_xticks([])
    ax_image.set_yticks([])
    shown = prediction.ranked(max(top_k, 10))[::-1]
    values = prediction.probabilities[shown]
    colors = ["tab:blue"] * len(shown)
    labels = [prediction.names[i] for i in shown]
    if prediction.unseen is not None:
        colors = [UNSEEN_COLOR if prediction.unseen[i] else "tab:blue" for i in shown]
        labels = [f"{name} *" if prediction.unseen[i] else name for name, i in zip(labels, shown)]
    ax_bars.barh(range(len(shown)), values, color=colors)
    ax_bars.set_yticks(range(len(shown)), labels)
    if prediction.kind == "dsdl":
        ax_bars.set(xlabel="coefficient a (dictionary representation; p = sigmoid(a))",
                    title="DSDL: representation coefficients of the top classes")
    elif prediction.kind == "sdl":
        marked = "* orange: unseen in training" if prediction.unseen.any() else "the checkpoint stores no unseen tags"
        ax_bars.set(xlabel="relevance score max_r <A_r, v_j>", title=f"SDL: ranked tags ({marked})")
    else:
        ax_bars.set(xlabel="probability", title=f"{prediction.kind}: top labels")
    ax_bars.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def figure_names(images: Sequence[str | Path]) -> list[str]:
    """One figure file name per image, never two alike: ``<stem>_predict.png``, or for images
    that share a stem (``a/x.jpg`` and ``b/x.jpg``, ``x.jpg`` and ``x.png``) their path below
    the folder they share, with ``__`` for each ``/``: ``a__x.jpg_predict.png``."""
    paths = [Path(image) for image in images]
    stems = [path.stem for path in paths]
    names = []
    for path in paths:
        if stems.count(path.stem) == 1:
            names.append(f"{path.stem}_predict.png")
            continue
        sharing = [p.resolve() for p, stem in zip(paths, stems) if stem == path.stem]
        common = Path(os.path.commonpath([p.parent for p in sharing]))
        names.append("__".join(path.resolve().relative_to(common).parts) + "_predict.png")
    for index, name in enumerate(names):  # the same file given twice
        earlier = names[:index].count(name)
        if earlier:
            names[index] = name.replace("_predict.png", f"-{earlier + 1}_predict.png")
    return names


def predict_file(predictor: Predictor, image, out_dir: str | Path | None = None, name: str | None = None,
                 top_k: int = 5, threshold: float = 0.5, figure_name: str | None = None):
    """Predict one image, draw its figure and (with ``out_dir``) save it as ``figure_name`` (default
    ``<stem>_predict.png``); returns ``(prediction, figure, path)``."""
    name = name or (Path(image).name if isinstance(image, (str, Path)) else "upload")
    prediction = predict_image(predictor, image, name, threshold)
    fig = prediction_figure(prediction, min(top_k, 3) if prediction.maps else top_k)
    path = None
    if out_dir is not None:
        path = Path(out_dir) / (figure_name or f"{Path(name).stem}_predict.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return prediction, fig, path


# --------------------------------------------------------------------------------------------
# notebook upload
# --------------------------------------------------------------------------------------------
def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of each file in an ``ipywidgets.FileUpload`` value.

    ipywidgets 8: a tuple of dicts with ``name`` and ``content`` (a memoryview); ipywidgets 7: a
    dict ``{name: {"metadata": {...}, "content": bytes}}``.
    """
    if isinstance(value, dict):
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def predict_upload(predictor: Predictor, value, top_k: int = 5, threshold: float = 0.5, out_dir=None):
    """Predict every file of a FileUpload value; returns ``[(prediction, figure), ...]``."""
    results = []
    for name, content in uploaded_files(value):
        prediction, fig, _ = predict_file(predictor, content, out_dir, name=name, top_k=top_k, threshold=threshold)
        results.append((prediction, fig))
    return results


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .running.cli import OneLineParser, positive_int, probability

    parser = OneLineParser(
        prog="python -m msrn_core.predict",
        description="Label your own photos with a trained model and draw what it looked at.",
        epilog="example: python -m msrn_core.predict photo.jpg --checkpoint runs/notebooks/cpu/msrn/best.pt --out predictions",
    )
    parser.add_argument("images", nargs="+", help="image files (any format PIL opens)")
    parser.add_argument("--checkpoint", required=True, help="a best.pt or last.pt written by msrn_core")
    parser.add_argument("--top-k", type=positive_int, default=5,
                        help="labels printed per image (default 5; up to 3 drawn)")
    parser.add_argument("--threshold", type=probability, default=0.5,
                        help="probability at which a label counts as predicted, 0 to 1 (default 0.5)")
    parser.add_argument("--out", default="predictions", help="folder for the figures (default: predictions)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default: cpu)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="input size in pixels (default: the checkpoint's, else 448)")
    parser.add_argument("--max-pixels", type=positive_int, default=None,
                        help=f"largest image accepted, in pixels (default: Pillow's decompression-bomb limit, "
                             f"{Image.MAX_IMAGE_PIXELS})")
    return parser


def device_problem(device: str) -> str | None:
    """Why ``--device`` cannot be used here (in words, with the fix), or None."""
    if device == "auto":
        return None
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        return f"--device {device} is not a device: use cpu, cuda, cuda:N, mps or auto"
    if chosen.type == "cuda" and not torch.cuda.is_available():
        return f"--device {device}: no CUDA GPU is visible to PyTorch here; use --device cpu (or auto)"
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        return f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s); use cuda:0 or cpu"
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return f"--device {device}: MPS is not available here; use --device cpu (or auto)"
    if chosen.type not in ("cpu", "cuda", "mps"):
        return f"--device {device}: use cpu, cuda, cuda:N, mps or auto"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = device_problem(args.device)
    if problem:
        parser.error(problem)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = args.max_pixels
    try:
        predictor = load_predictor(args.checkpoint, args.device, args.image_size)
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    smallest = smallest_input(predictor.model)
    if predictor.image_size < smallest:
        parser.error(f"--image-size {predictor.image_size} is too small for this {predictor.kind} model: "
                     f"at least {smallest} px")
    print(f"{predictor.kind} model with {len(predictor.class_names)} classes from {args.checkpoint}, "
          f"{predictor.image_size} px on {predictor.device}")
    failed = 0
    for image, figure_name in zip(args.images, figure_names(args.images)):
        try:
            prediction, fig, path = predict_file(predictor, image, args.out, top_k=args.top_k,
                                                 threshold=args.threshold, figure_name=figure_name)
        except PredictError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        plt.close(fig)
        print(prediction.describe(args.top_k))
        print(f"  figure: {path}")
    return 2 if failed else 0


def smallest_input(model) -> int:
    """The smallest square input ``model`` takes (see ``running.train.minimum_image_size``)."""
    from .running.train import minimum_image_size

    config = model.config
    return minimum_image_size(config.kind, getattr(config, "branch_stages", None) or (4,))


def cli(argv: list[str] | None = None) -> int:
    """The console entry point: :func:`main`, with any other error of the project as one ``error:`` line."""
    from .running.cli import run_cli

    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
