"""Shapes, ablation switches, introspection outputs and the parameter count of MSRN."""
from dataclasses import replace

import pytest
import torch
import torchvision

from msrn_core.model import ModelConfig, MSRN, ResNetTrunk, build_model, count_parameters


def random_graph(n, k=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.nn.functional.normalize(torch.randn(n, k, generator=generator), dim=1)
    edges = (torch.rand(n, n, generator=generator) > 0.7).float()
    adjacency = 0.2 * edges + torch.eye(n)
    return features, adjacency


@pytest.mark.parametrize("name, channels", [
    ("resnet18", {1: 64, 2: 128, 3: 256, 4: 512}),
    ("resnet50", {1: 256, 2: 512, 3: 1024, 4: 2048}),
])
def test_trunk_reads_channel_counts_from_the_model(name, channels):
    trunk = ResNetTrunk(name)
    assert trunk.channels == channels
    outputs = trunk(torch.randn(1, 3, 64, 64), stages=(1, 2, 3, 4))
    assert {s: o.shape[1] for s, o in outputs.items()} == channels


@pytest.mark.parametrize("embeddings", ["full", "label", "group", "none"])
@pytest.mark.parametrize("stages", [(2, 3, 4), (4,), (1, 2, 3, 4)])
def test_msrn_resnet18_shapes_for_every_ablation(embeddings, stages):
    n, m = 7, 3
    features, adjacency = random_graph(n)
    model = build_model(ModelConfig(backbone="resnet18", embeddings=embeddings, branch_stages=stages,
                                    num_groups=m, fc_hidden=64), features, adjacency)
    output = model(torch.randn(2, 3, 96, 96), details=True)
    assert output.logits.shape == (2, n)
    uses_groups = embeddings in ("full", "group")
    assert (output.compactness.item() > 0) == uses_groups
    if embeddings == "none":
        return
    details = output.details
    sizes = {1: 12, 2: 6, 3: 3, 4: 1}  # 96 px: stage s is 96 / 2^(s+1), then max-pooled by 2
    for kind, rows, wanted in (("label_attention", n, embeddings != "group"),
                               ("group_attention", m, uses_groups)):
        maps = details[kind]
        if not wanted:
            assert maps is None
            continue
        assert [tuple(a.shape) for a in maps] == [(2, rows, sizes[s], sizes[s]) for s in stages]
        for attention in maps:  # SGA attention sums to 1 over positions
            torch.testing.assert_close(attention.sum(dim=(2, 3)), torch.ones(2, rows))


def test_msrn_details_expose_gat_attention_and_assignment():
    n, m = 6, 2
    features, adjacency = random_graph(n)
    model = build_model(ModelConfig(backbone="resnet18", num_groups=m, fc_hidden=32), features, adjacency)
    details = model(torch.randn(1, 3, 64, 64), details=True).details
    mask = model.gat_mask
    assert len(details["gat_attention"]) == 2
    for alpha in details["gat_attention"]:
        torch.testing.assert_close(alpha.sum(1), torch.ones(n))
        assert torch.all(alpha[~mask] == 0)
    assert details["assignment"].shape == (n, m)
    torch.testing.assert_close(details["assignment"].sum(1), torch.ones(n))


@pytest.mark.parametrize("kind", ["plain", "mlgcn"])
def test_baselines_shapes(kind):
    features, adjacency = random_graph(5)
    model = build_model(ModelConfig(kind=kind, backbone="resnet18"), features, adjacency)
    output = model(torch.randn(3, 3, 64, 64))
    assert output.logits.shape == (3, 5)
    assert output.compactness.item() == 0


def test_msrn_resnet101_forward_at_448():
    features, adjacency = random_graph(20, k=300)
    model = build_model(ModelConfig(backbone="resnet101"), features, adjacency).eval()
    with torch.no_grad():
        output = model(torch.randn(1, 3, 448, 448), details=True)
    assert output.logits.shape == (1, 20)
    # 448 px: layer2/3/4 give 56/28/14 px, max-pooled to 28/14/7 (paper section 4.1)
    assert [tuple(a.shape[-2:]) for a in output.details["label_attention"]] == [(28, 28), (14, 14), (7, 7)]


def expected_paper_parameter_count(n=20, m=4, k=300, d=512, hidden=300, fc=2048):
    """The parameter count of the paper's VOC configuration (sections 3 and 4.1), layer by layer."""
    resnet = torchvision.models.resnet101(weights=None)
    trunk = count_parameters(resnet) - count_parameters(resnet.fc)  # stem .. layer4
    conv1x1 = lambda cin, cout: cin * cout + cout  # noqa: E731  (weights + bias)
    buffers = conv1x1(512, 512) + conv1x1(1024, 1024)  # branches 1 and 2
    projections = conv1x1(512, d) + conv1x1(1024, d) + conv1x1(2048, d)
    gat = lambda cin, cout: cin * cout + 2 * cout  # noqa: E731  (U without bias, P of 2 * cout)
    lge = gat(k, hidden) + gat(hidden, d) + gat(d, d) + gat(d, m)
    head = ((n + m) * 3 * d) * fc + fc + fc * n + n  # fc1 (36,864 x 2048) and fc2
    return trunk + buffers + projections + lge + head


def test_paper_configuration_parameter_count():
    features, adjacency = random_graph(20, k=300)
    model = build_model(ModelConfig(backbone="resnet101", num_groups=4), features, adjacency)
    expected = expected_paper_parameter_count()
    assert count_parameters(model) == expected
    assert model.fc1.in_features == 36_864
    assert 121e6 < expected < 122e6  # the authors' model: about 121.8 M once its unused tensors are removed


def test_parameter_groups_split_backbone_and_new_layers():
    features, adjacency = random_graph(4)
    model = build_model(ModelConfig(backbone="resnet18", fc_hidden=16), features, adjacency)
    backbone, new = model.parameter_groups(lr=0.01, backbone_lr_mult=0.1)
    assert backbone["lr"] == pytest.approx(0.001) and new["lr"] == 0.01
    assert len(backbone["params"]) + len(new["params"]) == len(list(model.parameters()))
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.trunk.parameters()}


def test_invalid_configuration_errors():
    with pytest.raises(ValueError, match="embeddings"):
        ModelConfig(embeddings="both")
    with pytest.raises(ValueError, match="branch_stages"):
        ModelConfig(branch_stages=(5,))
    with pytest.raises(ValueError, match="torchvision ResNet"):
        ResNetTrunk("vgg16")
    features, adjacency = random_graph(4)
    with pytest.raises(ValueError, match="adjacency"):
        MSRN(ModelConfig(backbone="resnet18"), features, adjacency[:3, :3])


def test_msrn_lean_and_naive_sga_give_the_same_model():
    features, adjacency = random_graph(6)
    config = ModelConfig(backbone="resnet18", num_groups=2, fc_hidden=32)
    assert config.sga == "lean"  # the default
    lean_model = build_model(config, features, adjacency)
    naive_model = build_model(replace(config, sga="naive"), features, adjacency)
    naive_model.load_state_dict(lean_model.state_dict())  # the same weights: the form is not architecture
    images = torch.randn(2, 3, 64, 64)
    results = {}
    for form, model in (("naive", naive_model), ("lean", lean_model)):
        model.zero_grad()
        output = model(images, details=True)
        output.logits.sum().backward()
        results[form] = (output.logits.detach(), output.details["label_attention"][0],
                         model.gat1.U.weight.grad.clone(), model.branches[0][-1].weight.grad.clone())
    for naive, lean in zip(results["naive"], results["lean"]):
        torch.testing.assert_close(lean, naive, rtol=1e-4, atol=1e-5)


def per_label_model(n, embeddings="full", hidden=16, m=2):
    features, adjacency = random_graph(n)
    config = ModelConfig(backbone="resnet18", embeddings=embeddings, num_groups=m, embed_dim=8,
                         gat_hidden=8, fc_hidden=hidden, head="per_label")
    return build_model(config, features, adjacency)


@pytest.mark.parametrize("embeddings", ["full", "label", "group"])
def test_per_label_head_shapes(embeddings):
    model = per_label_model(5, embeddings)
    output = model(torch.randn(2, 3, 64, 64), details=True)
    assert output.logits.shape == (2, 5)
    assert not hasattr(model, "fc1")
    rows = (embeddings != "group") + (embeddings != "label")  # O_i and/or S_i Q per label
    assert model.classifier.shared.in_features == rows * 8 * 3


def test_per_label_head_parameters_grow_linearly_in_the_number_of_labels():
    hidden = 16
    counts = {n: count_parameters(per_label_model(n, hidden=hidden)) for n in (4, 8, 16)}
    # each extra label adds one weight vector (hidden) and one bias, nothing else
    assert counts[8] - counts[4] == 4 * (hidden + 1)
    assert counts[16] - counts[8] == 8 * (hidden + 1)
    # the paper's head adds a whole block of fc1 per label, and grows with m too
    features, adjacency = random_graph(8)
    paper = build_model(ModelConfig(backbone="resnet18", num_groups=2, embed_dim=8, gat_hidden=8,
                                    fc_hidden=hidden), features, adjacency)
    fc1_weights = (8 + 2) * 24 * hidden  # (n + m) rows of 3 branches x d = 8
    shared_weights = 2 * 24 * hidden  # [O_i || S_i Q]
    assert count_parameters(paper) - counts[8] == fc1_weights - shared_weights


def test_per_label_head_training_reduces_the_loss():
    torch.manual_seed(0)
    model = per_label_model(4)
    images = torch.randn(4, 3, 64, 64)
    targets = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(12):
        output = model(images)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, targets) + 1e-3 * output.compactness
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_per_label_head_configuration_errors():
    with pytest.raises(ValueError, match="head"):
        ModelConfig(head="linear")
    with pytest.raises(ValueError, match="per_label"):
        ModelConfig(head="per_label", embeddings="none")


def test_checkpoint_written_before_the_head_option_still_loads(tmp_path):
    from msrn_core.running.checkpoints import load_model_state, save_checkpoint

    features, adjacency = random_graph(3)
    model = build_model(ModelConfig(backbone="resnet18", fc_hidden=8), features, adjacency)
    save_checkpoint(tmp_path / "old.pt", model, ["a", "b", "c"])
    checkpoint = torch.load(tmp_path / "old.pt", weights_only=False)
    del checkpoint["signature"]["config"]["head"]  # as written before the option existed
    torch.save(checkpoint, tmp_path / "old.pt")
    load_model_state(tmp_path / "old.pt", model, ["a", "b", "c"])
    per_label = build_model(ModelConfig(backbone="resnet18", fc_hidden=8, head="per_label"), features, adjacency)
    with pytest.raises(Exception, match="head"):
        load_model_state(tmp_path / "old.pt", per_label, ["a", "b", "c"])


def test_a_checkpoint_with_the_former_diffpool_weight_names_still_loads(tmp_path):
    from msrn_core.running.checkpoints import load_model_state, model_from_checkpoint, save_checkpoint

    features, adjacency = random_graph(3)
    config = ModelConfig(backbone="resnet18", fc_hidden=8, embed_dim=8, gat_hidden=8, num_groups=2)
    model = build_model(config, features, adjacency).eval()
    save_checkpoint(tmp_path / "old.pt", model, ["a", "b", "c"])
    checkpoint = torch.load(tmp_path / "old.pt", weights_only=False)
    weights = checkpoint["model"]
    assert any(key.startswith("group_pool.gat_embed.") for key in weights)
    checkpoint["model"] = {key.replace("group_pool.", "", 1): value for key, value in weights.items()}  # before
    torch.save(checkpoint, tmp_path / "old.pt")
    fresh = build_model(config, features, adjacency).eval()
    load_model_state(tmp_path / "old.pt", fresh, ["a", "b", "c"])
    rebuilt, _, _ = model_from_checkpoint(tmp_path / "old.pt")
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(images).logits
        torch.testing.assert_close(fresh(images).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(rebuilt.eval()(images).logits, expected, rtol=0, atol=0)


def test_relu_before_diffpool_follows_the_authors_form_unless_set():
    assert not ModelConfig().relu_before_diffpool
    assert ModelConfig(compactness_form="authors").relu_before_diffpool  # their code pairs the two
    assert ModelConfig.authors().relu_before_diffpool
    assert not ModelConfig(compactness_form="authors", diffpool_relu=False).relu_before_diffpool
    assert ModelConfig(compactness_form="paper_mean", diffpool_relu=True).relu_before_diffpool
    features, adjacency = random_graph(4)
    small = dict(backbone="resnet18", fc_hidden=8, embed_dim=8, gat_hidden=8, num_groups=2)
    torch.manual_seed(0)
    relu = build_model(ModelConfig(**small, diffpool_relu=True), features, adjacency)
    torch.manual_seed(0)
    plain = build_model(ModelConfig(**small), features, adjacency)
    with torch.no_grad():
        label_embeddings = plain.label_group_embeddings()["label_embeddings"]
        expected, _ = plain.group_pool(torch.relu(label_embeddings), plain.adjacency, plain.gat_mask)
        torch.testing.assert_close(relu.label_group_embeddings()["group_embeddings"], expected)


# ----------------------------------------------------------------------------- class activation maps
def test_class_activation_map_is_the_weighted_sum_of_channels_by_hand():
    from msrn_core.model import class_activation_map

    features = torch.zeros(1, 2, 2, 2)
    features[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # channel 0 fires top-left
    features[0, 1] = torch.tensor([[0.0, 0.0], [0.0, 2.0]])  # channel 1 fires bottom-right
    weights = torch.tensor([[3.0, 0.0], [1.0, -1.0]])  # class 0 reads channel 0; class 1 = ch0 - ch1
    cam = class_activation_map(features, weights)
    torch.testing.assert_close(cam[0, 0], torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(cam[0, 1], torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    with pytest.raises(ValueError, match="n x C"):
        class_activation_map(features, torch.zeros(2, 3))


def test_plain_cam_averages_to_the_logits():
    """Global average pooling: mean over positions of CAM_c + bias_c = logit_c (Zhou et al. 2016)."""
    n = 5
    features, adjacency = random_graph(n)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="plain", backbone="resnet18"), features, adjacency).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 3, 96, 96), details=True)
    cam = output.details["class_activation_map"]
    assert cam.shape == (2, n, 3, 3) and output.details["branch_stages"] == [4]
    torch.testing.assert_close(cam.mean(dim=(2, 3)) + model.classifier.bias, output.logits, rtol=1e-5, atol=1e-5)
    assert model(torch.randn(1, 3, 64, 64)).details == {}  # only on request


def test_mlgcn_cam_uses_the_gcn_classifiers():
    n = 4
    features, adjacency = random_graph(n)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlgcn", backbone="resnet18"), features, adjacency).eval()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        cam = model(images, details=True).details["class_activation_map"]
        feature_map = model.trunk(images, (4,))[4]
        classifiers = model.gc2(torch.nn.functional.leaky_relu(model.gc1(model.label_features, model.adjacency), 0.2),
                                model.adjacency)
        torch.testing.assert_close(cam, torch.einsum("bkhw,ck->bchw", feature_map, classifiers))
        # a spatially constant map: max pooling = every position, so each cell of the CAM is the logit
        constant = feature_map[:, :, :1, :1].expand_as(feature_map).contiguous()
        model.trunk.forward = lambda x, stages=(4,): {4: constant}
        output = model(images, details=True)
    torch.testing.assert_close(output.details["class_activation_map"],
                               output.logits[:, :, None, None].expand(2, n, 3, 3), rtol=1e-5, atol=1e-5)


def test_sga_form_is_a_config_field_that_checkpoints_do_not_pin(tmp_path):
    from msrn_core.running.checkpoints import load_model_state, save_checkpoint

    with pytest.raises(ValueError, match="sga"):
        ModelConfig(sga="fused")
    features, adjacency = random_graph(3)
    lean = build_model(ModelConfig(backbone="resnet18", fc_hidden=8), features, adjacency)
    save_checkpoint(tmp_path / "lean.pt", lean, ["a", "b", "c"])
    naive = build_model(ModelConfig(backbone="resnet18", fc_hidden=8, sga="naive"), features, adjacency)
    load_model_state(tmp_path / "lean.pt", naive, ["a", "b", "c"])  # the same model, computed another way
    torch.testing.assert_close(naive.fc2.weight, lean.fc2.weight)
    assert naive.config.sga == "naive"


# ----------------------------------------------------------------------------- output stride
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])  # a BasicBlock and a Bottleneck ResNet
def test_output_stride_16_keeps_layer4_at_layer3_resolution(name):
    torch.manual_seed(0)
    published = ResNetTrunk(name)
    dense = ResNetTrunk(name, output_stride=16)
    dense.load_state_dict(published.state_dict())  # the same weights: only the strides differ
    published.eval(), dense.eval()
    images = torch.randn(1, 3, 64, 64)
    coarse, fine = published(images, stages=(3, 4)), dense(images, stages=(3, 4))
    assert coarse[4].shape[-2:] == (2, 2) and fine[4].shape[-2:] == (4, 4) == fine[3].shape[-2:]
    torch.testing.assert_close(coarse[3], fine[3])  # the stages before layer4 are untouched
    # stride 1 instead of 2 in the first block's shortcut: its output at even positions is the strided one's
    torch.testing.assert_close(dense.stages[3][0].downsample(fine[3])[..., ::2, ::2],
                               published.stages[3][0].downsample(coarse[3]), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="output_stride"):
        ResNetTrunk(name, output_stride=8)


def test_output_stride_is_a_config_field_and_a_stride_32_backbone_loads_into_it(tmp_path):
    from msrn_core.running.checkpoints import load_trunk_weights, save_checkpoint

    with pytest.raises(ValueError, match="output_stride"):
        ModelConfig(output_stride=8)
    features, adjacency = random_graph(3)
    backbone = build_model(ModelConfig(kind="plain", backbone="resnet18"), features, adjacency)
    save_checkpoint(tmp_path / "backbone.pt", backbone, ["a", "b", "c"])
    for kind in ("plain", "msrn"):
        model = build_model(ModelConfig(kind=kind, backbone="resnet18", fc_hidden=8, output_stride=16),
                            features, adjacency)
        load_trunk_weights(tmp_path / "backbone.pt", model)
        torch.testing.assert_close(model.trunk.stages[3][0].conv1.weight, backbone.trunk.stages[3][0].conv1.weight)
        details = model.eval()(torch.randn(1, 3, 128, 128), details=True).details
        if kind == "plain":
            assert details["class_activation_map"].shape == (1, 3, 8, 8)  # 4 x 4 at stride 32
        else:  # the layer4 branch max-pools the 8 x 8 map to 4 x 4 (2 x 2 at stride 32)
            assert [tuple(a.shape[-2:]) for a in details["label_attention"]] == [(8, 8), (4, 4), (4, 4)]


# ----------------------------------------------------------------------------- eq. 8's scale and axis switches
def msrn_head_as_printed(model, images, sga: str):
    """MSRN's forward pass as the package computed it before the scale and axis switches."""
    from msrn_core.layers import semantic_guided_attention
    from msrn_core.variants.lean_sga import _LeanSemanticGuidedAttention, sga_chunk_elements

    def lean(f, e):
        return _LeanSemanticGuidedAttention.apply(f, e, False, sga_chunk_elements(f.device))[0]

    lge = model.label_group_embeddings()
    embeddings = torch.cat([lge["label_embeddings"], lge["group_embeddings"]], dim=0)
    rows = [(lean if sga == "lean" else semantic_guided_attention)(f.flatten(2).transpose(1, 2), embeddings)
            for f in model.branch_maps(model.trunk(images, model.branch_stages))]
    return model.classify(torch.tanh(torch.cat(rows, dim=-1)), lge["assignment"])


def switched_models(**switches):
    features, adjacency = random_graph(5)
    config = ModelConfig(backbone="resnet18", num_groups=2, fc_hidden=16, embed_dim=8, gat_hidden=8, sga="naive")
    torch.manual_seed(0)
    reference = build_model(config, features, adjacency).eval()
    model = build_model(replace(config, **switches), features, adjacency).eval()
    model.load_state_dict(reference.state_dict(), strict=False)  # a learned temperature is the one new weight
    return reference, model


@pytest.mark.parametrize("switches", [{}, dict(attention_scale="fixed"), dict(attention_scale="learned")])
@pytest.mark.parametrize("sga", ["naive", "lean"])
def test_attention_switch_defaults_are_todays_forward_pass_bit_for_bit(switches, sga):
    reference, model = switched_models(sga=sga, **switches)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images).logits, msrn_head_as_printed(reference, images, sga))


def test_attention_scales_divide_the_scores():
    """sqrt_d divides by sqrt(d); fixed by the temperature; learned starts at the temperature."""
    from msrn_core.layers import semantic_guided_attention

    images = torch.randn(2, 3, 128, 128)  # layer4's branch 2 x 2: its softmax has positions to weigh
    _, fixed = switched_models(attention_scale="fixed", attention_temperature=8 ** 0.5)
    _, scaled = switched_models(attention_scale="sqrt_d")  # d = embed_dim = 8
    _, learned = switched_models(attention_scale="learned", attention_temperature=8 ** 0.5)
    with torch.no_grad():
        outputs = [m(images, details=True) for m in (fixed, scaled, learned)]
        lge = fixed.label_group_embeddings()
        embeddings = torch.cat([lge["label_embeddings"], lge["group_embeddings"]], dim=0)
        f = fixed.branch_maps(fixed.trunk(images, fixed.branch_stages))[0]
        by_hand = semantic_guided_attention(f.flatten(2).transpose(1, 2) / 8 ** 0.5, embeddings, return_attention=True)[1]
    # dividing f by sqrt(d) inside the scores only (eq. 9 still reads f): the same attention map
    torch.testing.assert_close(outputs[0].details["label_attention"][0].flatten(2), by_hand[:, :5], rtol=1e-5, atol=1e-6)
    for other in outputs[1:]:
        torch.testing.assert_close(other.logits, outputs[0].logits, rtol=1e-5, atol=1e-6)
    assert learned.attention_log_temperature.shape == (3,)  # one per branch
    torch.testing.assert_close(learned.attention_temperatures()[0], torch.tensor(8 ** 0.5))
    learned.train()
    learned(images).logits.sum().backward()
    assert learned.attention_log_temperature.grad.abs().min() > 0  # every branch's temperature learns
    assert any(p is learned.attention_log_temperature for group in learned.parameter_groups(0.1)
               if group["name"] == "new_layers" for p in group["params"])


def test_label_axis_gives_one_map_per_label():
    _, model = switched_models(attention_axis="label", attention_scale="sqrt_d")
    with torch.no_grad():
        details = model(torch.randn(2, 3, 64, 64), details=True).details
    for maps in details["label_attention"] + details["group_attention"]:
        torch.testing.assert_close(maps.sum(dim=(2, 3)), torch.ones(maps.shape[:2]))
    assert [tuple(a.shape) for a in details["label_attention"]] == [(2, 5, 4, 4), (2, 5, 2, 2), (2, 5, 1, 1)]


def test_attention_switch_errors_name_the_field():
    for field, value in (("attention_scale", "cosine"), ("attention_temperature", 0.0),
                         ("attention_axis", "position"), ("csra_temperature", -1.0), ("csra_lambda", -0.1)):
        with pytest.raises(ValueError, match=field.split("_")[-1]):
            ModelConfig(**{field: value})


def test_checkpoint_written_before_the_attention_switches_still_loads(tmp_path):
    from msrn_core.running.checkpoints import load_model_state, save_checkpoint

    features, adjacency = random_graph(3)
    model = build_model(ModelConfig(backbone="resnet18", fc_hidden=8), features, adjacency)
    save_checkpoint(tmp_path / "old.pt", model, ["a", "b", "c"])
    checkpoint = torch.load(tmp_path / "old.pt", weights_only=False)
    for name in ("attention_scale", "attention_temperature", "attention_axis", "csra_temperature",
                 "csra_lambda", "csra_normalise"):
        del checkpoint["signature"]["config"][name]  # as written before the switches existed
    torch.save(checkpoint, tmp_path / "old.pt")
    load_model_state(tmp_path / "old.pt", model, ["a", "b", "c"])
    sharper = build_model(ModelConfig(backbone="resnet18", fc_hidden=8, attention_scale="fixed",
                                      attention_temperature=0.1), features, adjacency)
    with pytest.raises(Exception, match="attention_scale"):
        load_model_state(tmp_path / "old.pt", sharper, ["a", "b", "c"])
