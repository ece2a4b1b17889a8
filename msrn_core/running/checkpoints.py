"""Checkpoints that load after a restart and refuse to load into the wrong model.

A checkpoint holds the model's *signature* (architecture config, class names, label-feature
width) beside its weights; loading compares signatures and raises
:class:`CheckpointMismatchError` naming what differs. Files are written atomically (temporary
file, then rename), so an interrupted save never destroys the previous checkpoint.

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain values
(numbers, strings, lists, dicts) are unpickled, so a crafted file cannot run code. A file
holding anything else is refused with :class:`UnsafeCheckpointError`; what the training loop
stores beside the weights (random states, history, settings) is kept to such plain values.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path
from typing import Sequence

import torch

from ..model import build_model, model_config, model_signature
from ..utils import UnreadableTensorFileError, UnsafePickleError, atomic_write_bytes, load_tensors_only

CHECKPOINT_FORMAT = 1
# Config values renamed since a checkpoint was written (kind -> field -> {former value: value}): a
# saved signature is read under the current names (:func:`current_config`). MSRN's renamed weights
# are read by the model itself (``model.RENAMED_STATE_KEYS``).
RENAMED_CONFIG_VALUES = {"dsdl": {"loss_form": {"paper": "additive"}}}


class CheckpointMismatchError(ValueError):
    """The checkpoint was made for another label set or architecture."""


class UnsafeCheckpointError(CheckpointMismatchError):
    """The file holds objects other than tensors and plain values: it is not unpickled."""


def save_checkpoint(path: str | Path, model, class_names: Sequence[str], **state) -> None:
    """Save the model, its signature and any extra ``state`` (optimizer, epoch, ...) atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "signature": model_signature(model, class_names),
        "model": model.state_dict(),
        **state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getbuffer()))


def require_checkpoint_file(path: str | Path) -> Path:
    """``path`` as a Path; a FileNotFoundError that says what to do when no file is there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train first, or pass the path of an existing .pt file")
    return path


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint at ``path``, unpickled safely (tensors and plain values only)."""
    path = require_checkpoint_file(path)
    try:
        with _legacy_numpy_states():
            checkpoint = load_tensors_only(path, map_location=map_location)
    except UnsafePickleError as error:
        raise UnsafeCheckpointError(
            f"{path} was not loaded: it holds objects other than tensors and plain values ({error.blocked}), "
            "and unpickling them could run code. msrn_core never writes such files; use a checkpoint you "
            "trained here, or train again") from None
    except UnreadableTensorFileError as error:
        raise CheckpointMismatchError(
            f"{path} is not a readable checkpoint ({error.reason}): it is truncated or corrupt; "
            f"{unreadable_checkpoint_fix(path)}") from None
    if not isinstance(checkpoint, dict) or "signature" not in checkpoint or "model" not in checkpoint:
        raise CheckpointMismatchError(
            f"{path} was not written by msrn_core (no model signature inside); "
            "train with msrn_core, or load the raw state dict yourself"
        )
    return checkpoint


def unreadable_checkpoint_fix(path: Path) -> str:
    """What to do about a corrupt checkpoint, in words that work when followed.

    A run's ``best.pt`` cannot be rebuilt from ``last.pt`` (it holds the best epoch's weights,
    ``last.pt`` the last epoch's): start the run over, or evaluate the last epoch instead.
    A corrupt ``last.pt`` is deleted and the run starts over (resuming needs it whole).
    """
    last = path.parent / "last.pt"
    if path.name == "best.pt" and last.is_file():
        return (f"delete it and train again with --fresh (the same --out; force=True in a notebook), "
                f"or evaluate the last epoch's weights instead: --evaluate {last}")
    if path.name == "last.pt":
        return "delete it and train again (the run starts over)"
    return "delete it and train again, or pass another checkpoint"


def current_config(saved_config: dict) -> dict:
    """A checkpoint's architecture config with the values renamed since it was written
    (:data:`RENAMED_CONFIG_VALUES`)."""
    config = dict(saved_config)
    for field, renamed in RENAMED_CONFIG_VALUES.get(config.get("kind"), {}).items():
        if field in config:
            config[field] = renamed.get(config[field], config[field])
    return config


def check_signature(checkpoint: dict, model, class_names: Sequence[str], path="checkpoint") -> None:
    """Raise :class:`CheckpointMismatchError` if ``checkpoint`` does not fit ``model`` and ``class_names``."""
    saved, wanted = checkpoint["signature"], model_signature(model, class_names)
    if saved["class_names"] != wanted["class_names"]:
        raise CheckpointMismatchError(
            f"{path} was trained for another label set: {len(saved['class_names'])} classes "
            f"{_preview(saved['class_names'])}, but this dataset has {len(wanted['class_names'])} "
            f"{_preview(wanted['class_names'])}. Use a checkpoint trained on this dataset, or train a new "
            "model (a fresh --out folder)."
        )
    # a field the checkpoint lacks was added later: the checkpoint was made with its default;
    # the SGA form (lean or naive) gives the same model, so it may differ
    saved_config = {**_field_defaults(model.config), **current_config(saved["config"])}
    differences = [
        f"{key}: checkpoint {saved_config.get(key)!r} vs model {value!r}"
        for key, value in wanted["config"].items()
        if key not in ("pretrained", "sga") and _normalise(saved_config.get(key)) != _normalise(value)
    ]
    if saved["label_feature_dim"] != wanted["label_feature_dim"]:
        differences.append(
            f"label feature width: checkpoint {saved['label_feature_dim']} vs model {wanted['label_feature_dim']}"
        )
    if differences:
        raise CheckpointMismatchError(
            f"{path} was made for another architecture ({'; '.join(differences)}). Build the model with "
            "the checkpoint's settings, or train a new model (a fresh --out folder)."
        )


def load_model_state(path: str | Path, model, class_names: Sequence[str], map_location="cpu") -> dict:
    """Load the weights at ``path`` into ``model`` after checking the signature; returns the checkpoint."""
    checkpoint = read_checkpoint(path, map_location)
    check_signature(checkpoint, model, class_names, path)
    model.load_state_dict(checkpoint["model"])
    return checkpoint


def model_from_checkpoint(path: str | Path, map_location="cpu"):
    """Rebuild a model from a checkpoint alone (its label features and graph are in the weights).

    Returns ``(model, class_names, checkpoint)``.
    """
    checkpoint = read_checkpoint(path, map_location)
    model, class_names = model_from_payload(checkpoint)
    return model, class_names, checkpoint


def model_from_payload(checkpoint: dict):
    """``(model, class_names)`` from a checkpoint already read: its signature and its weights.

    The label features and the label graph are buffers of the weights, so nothing else is needed.
    """
    signature = checkpoint["signature"]
    config = model_config(**{**current_config(signature["config"]), "pretrained": False})
    n = len(signature["class_names"])
    model = build_model(config, torch.zeros(n, signature["label_feature_dim"]), torch.eye(n))
    model.load_state_dict(checkpoint["model"])
    return model, list(signature["class_names"])


def transform_image_size(transform) -> int | None:
    """The square input size of an evaluation transform (its ``Resize``), else ``None``."""
    for step in getattr(transform, "transforms", [transform]):
        size = getattr(step, "size", None)
        if isinstance(size, int):
            return size
        if isinstance(size, (tuple, list)) and len(size) == 2 and size[0] == size[1]:
            return int(size[0])
    return None


@contextlib.contextmanager
def _legacy_numpy_states():
    """Allow the NumPy arrays that older ``last.pt`` files hold (NumPy's random state).

    Reconstructing an array runs no code of the file's choosing; anything else stays refused.
    Torch versions without ``safe_globals`` (before 2.5) read only checkpoints of this version.
    """
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:
        yield
        return
    import numpy as np

    multiarray = getattr(np, "_core", None) or np.core
    allowed = [multiarray.multiarray._reconstruct, np.ndarray, np.dtype]
    allowed += [getattr(np.dtypes, name) for name in ("UInt32DType", "Float64DType", "Int64DType")
                if hasattr(getattr(np, "dtypes", None), name)]
    with safe_globals(allowed):
        yield


def _field_defaults(config) -> dict:
    return {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}


def _normalise(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def _preview(names: Sequence[str], count: int = 4) -> str:
    shown = ", ".join(names[:count])
    return f"[{shown}{', ...' if len(names) > count else ''}]"


def load_trunk_weights(path: str | Path, model, map_location="cpu") -> dict:
    """Start ``model``'s backbone from the backbone of the checkpoint at ``path``; returns the checkpoint.

    The checkpoint may come from any model kind on the same backbone (a plain ResNet trained once
    and shared by every head, as the paper shares ImageNet weights, section 4.1): only the
    ``trunk.`` weights are copied; the head keeps its fresh initialisation.
    """
    checkpoint = read_checkpoint(path, map_location)
    saved_backbone = checkpoint["signature"]["config"].get("backbone")
    if saved_backbone != model.config.backbone:
        raise CheckpointMismatchError(
            f"{path} holds a {saved_backbone} backbone but this model uses {model.config.backbone}: "
            f"pre-train the same backbone, or build the model with backbone={saved_backbone!r}")
    trunk = {key[len("trunk."):]: value for key, value in checkpoint["model"].items() if key.startswith("trunk.")}
    if not trunk:
        raise CheckpointMismatchError(f"{path} holds no backbone weights (no 'trunk.' entries)")
    model.trunk.load_state_dict(trunk)
    return checkpoint
