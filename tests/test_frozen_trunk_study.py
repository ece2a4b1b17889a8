"""The frozen-trunk study's stand-in trunk: a head fed cached stage outputs gives the full model's
output, and a replayed batch that is not the cached images is refused."""
import pytest
import torch

from benchmarks.frozen_trunk_study import STAGES, CachedTrunk
from msrn_core.model import ModelConfig, build_model


def _tiny(kind: str, **overrides):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(5, 8, generator=generator)
    adjacency = 0.2 * (torch.rand(5, 5, generator=generator) > 0.5).float() + torch.eye(5)
    torch.manual_seed(0)
    config = ModelConfig(kind=kind, backbone="resnet18", embed_dim=16, gat_hidden=8, fc_hidden=12, num_groups=2,
                         output_stride=16, **overrides)
    return build_model(config, features, adjacency).eval()


@pytest.mark.parametrize("kind, overrides", [("msrn", {}), ("plain", {}), ("mlgcn", {}), ("csra", {}),
                                             ("msrn", dict(attention_scale="fixed", attention_temperature=0.1))])
def test_a_head_on_cached_features_gives_the_full_models_output(kind, overrides):
    model = _tiny(kind, **overrides)
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(images, details=True)
        cached = model.trunk(images, STAGES)
        model.trunk = CachedTrunk()
        model.trunk.batch = cached
        from_batch = model(torch.empty(4, 0), details=True)
        model.trunk = CachedTrunk(cached, images)
        replayed = [model(images[:2], details=True), model(images[2:], details=True)]
    assert torch.allclose(from_batch.logits, full.logits, atol=1e-6)
    assert torch.allclose(torch.cat([r.logits for r in replayed]), full.logits, atol=1e-6)
    key = "label_attention" if kind == "msrn" else "class_activation_map"
    first = full.details[key][0] if kind == "msrn" else full.details[key]
    second = from_batch.details[key][0] if kind == "msrn" else from_batch.details[key]
    assert torch.allclose(first, second, atol=1e-6)


def test_replay_refuses_images_the_features_were_not_computed_from():
    images = torch.randn(4, 3, 8, 8)
    trunk = CachedTrunk({4: torch.randn(4, 2, 1, 1)}, images)
    assert torch.equal(trunk(images[:2])[4], trunk.features[4][:2])
    with pytest.raises(RuntimeError, match="not those the features"):
        trunk(images[:2])  # positions 2-3 hold other images
