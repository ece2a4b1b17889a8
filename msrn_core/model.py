"""MSRN (paper section 3) and the two baselines it is compared with, on one backbone.

- :class:`ResNetTrunk`   any torchvision ResNet without its pooling and classifier
- :class:`MSRN`          Label-Group Embedding + Semantic Guided Attention over several stages
- :class:`PlainBaseline` the backbone alone: global average pooling + linear classifier
- :class:`MLGCNBaseline` ML-GCN: a two-layer GCN turns label features into classifiers
- :func:`build_model`    one factory for all three, driven by :class:`ModelConfig`
- :func:`class_activation_map`  the CAM of a linear classifier over the last conv map (Zhou et al. 2016)

Every model returns a :class:`ModelOutput`; with ``details=True`` MSRN also returns what a
reader needs to look inside (GAT attention, Diffpool assignment, per-branch attention maps), and
the two baselines their class activation maps.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from . import defaults
from .graph import gat_mask
from .layers import (COMPACTNESS_FORMS, DiffpoolBlock, GATLayer, check_sga_axis, compactness_loss, group_link_loss,
                     semantic_guided_attention)
from .utils import UnreadableTensorFileError, UnsafePickleError, file_digest, load_tensors_only
from .variants.lean_sga import semantic_guided_attention_lean
from .variants.per_label_head import PerLabelClassifier, label_rows

EMBEDDING_MODES = ("full", "label", "group", "none")
# "paper": fc1 over the flattened M = [O || Q] (its weights grow with n + m); "per_label": one
# shared layer applied to each label's own row, then a weight vector per label (linear in n).
HEAD_KINDS = ("paper", "per_label")
MODEL_KINDS = ("msrn", "plain", "mlgcn", "csra")
# Two implementations of eq. 7-9 with the same results: "lean" (the default) never holds the
# B x HW x (n + m) x d score tensors, "naive" is the plain form the tutorial teaches.
SGA_FORMS = ("lean", "naive")
OUTPUT_STRIDES = (32, 16)  # ModelConfig.output_stride
# ModelConfig.attention_scale: what eq. 8's scores are divided by before the softmax (section 3.3)
# - "none":    nothing, eq. 8 as printed (the default);
# - "fixed":   ModelConfig.attention_temperature, the same on every branch;
# - "sqrt_d":  sqrt(d), d = embed_dim (as a transformer scales its dot products), times
#              attention_temperature (1 by default);
# - "learned": one temperature per branch, exp of a learned parameter (so it stays positive),
#              starting at attention_temperature.
# A temperature below 1 sharpens the maps, above 1 flattens them.
ATTENTION_SCALES = ("none", "fixed", "sqrt_d", "learned")
# How the branches' buffer 1x1 convolutions start: "default" is PyTorch's Conv2d initialisation;
# "he_normal" is the authors' (their ResNet.py, ResNet.__init__: N(0, 2 / (k * k * out_channels))).
BRANCH_INITS = ("default", "he_normal")


def check_output_stride(value) -> None:
    """A clear error unless ``value`` is one of :data:`OUTPUT_STRIDES` (the configs' and the trunk's check)."""
    if value not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {value!r}")


def sga_function(form: str):
    """The function that computes eq. 7-9 for ``ModelConfig.sga``: lean or naive."""
    if form not in SGA_FORMS:
        raise ValueError(f"unknown SGA form {form!r}; choose one of {SGA_FORMS}")
    return semantic_guided_attention_lean if form == "lean" else semantic_guided_attention


@dataclass
class ModelConfig:
    """Everything that fixes a model's architecture (stored in every checkpoint)."""

    kind: str = "msrn"  # msrn | plain | mlgcn | csra
    backbone: str = "resnet101"  # any torchvision ResNet: resnet18/34/50/101/152, ...
    pretrained: bool = False  # ImageNet weights through torchvision's weights API
    branch_stages: tuple[int, ...] = (2, 3, 4)  # backbone stages (layer2..layer4) feeding branches
    num_groups: int = defaults.NUM_GROUPS  # m, the number of Diffpool label groups (4)
    embed_dim: int = defaults.EMBED_DIM  # d (512)
    gat_hidden: int = defaults.GAT_HIDDEN  # width of the first GAT layer's output (300)
    embeddings: str = "full"  # ablation (paper Table 5): full | label | group | none
    fc_hidden: int = defaults.FC_HIDDEN  # width of fc1 (2048)
    head_negative_slope: float = 0.2  # LeakyReLU between fc1 and fc2
    head: str = "paper"  # paper | per_label (HEAD_KINDS; per_label scales to thousands of labels)
    compactness_form: str = "paper"  # paper | authors | paper_mean (layers.COMPACTNESS_FORMS)
    sga: str = "lean"  # lean | naive (SGA_FORMS): how eq. 7-9 is computed, same results; not architecture
    # 32: torchvision's ResNet; 16: layer4 keeps layer3's resolution (ResNetTrunk), for small images
    output_stride: int = 32
    # eq. 8's softmax (MSRN only): what divides the scores (ATTENTION_SCALES, "none" as printed), the
    # temperature "fixed" uses (and "learned" starts at), and what the softmax runs over (layers.SGA_AXES):
    # "channel" per label and channel as eq. 8, "label" one map per label from dot-product scores
    attention_scale: str = "none"
    attention_temperature: float = 1.0
    attention_axis: str = "channel"
    # CSRA (kind "csra", msrn_core.csra): softmax temperature T (inf: max pooling) and weight lambda
    # of the residual attention; csra_normalise divides each class's scores by its classifier's norm
    csra_temperature: float = 1.0
    csra_lambda: float = 0.1
    csra_normalise: bool = True
    # 0: the label vectors V enter the first GAT layer (the paper); w > 0: a Linear(k -> w) first,
    # as the authors' fc_label (models.py, MSGDN: Linear(300, 256))
    label_projection: int = 0
    branch_init: str = "default"  # BRANCH_INITS: the buffer convolutions' initialisation
    # Diffpool (eq. 5) pools ReLU(E_l), as the authors' code does (True), or E_l, as the paper (False);
    # None: as the authors' code exactly when compactness_form is theirs ("authors"), see relu_before_diffpool
    diffpool_relu: bool | None = None

    @classmethod
    def authors(cls, **overrides) -> "ModelConfig":
        """MSRN as the authors' code builds it (models.py, MSGDN; LabelEmbedding.py; ResNet.py):
        the label vectors projected to 256 before the GAT (``fc_label``), LeakyReLU slope 0.01 in the
        head (``F.leaky_relu``'s default), their compactness loss (unsquared, on Diffpool over
        ReLU(E_l), lambda 1e-4) and He-normal buffer convolutions. ``overrides`` change any field."""
        values = dict(label_projection=256, head_negative_slope=0.01, compactness_form="authors",
                      branch_init="he_normal")
        return cls(**{**values, **overrides})

    @property
    def relu_before_diffpool(self) -> bool:
        """Whether Diffpool reads ReLU(E_l) (the authors' code) rather than E_l (the paper, eq. 5):
        ``diffpool_relu`` when set, else True exactly with the authors' compactness form, which
        their code pairs with it."""
        return self.compactness_form == "authors" if self.diffpool_relu is None else self.diffpool_relu

    def __post_init__(self):
        self.branch_stages = tuple(int(s) for s in self.branch_stages)
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r} for ModelConfig; choose one of {MODEL_KINDS}, "
                             "or build the config of another kind with model_config(kind, ...)")
        if self.embeddings not in EMBEDDING_MODES:
            raise ValueError(f"unknown embeddings mode {self.embeddings!r}; choose one of {EMBEDDING_MODES}")
        if not self.branch_stages or any(s not in (1, 2, 3, 4) for s in self.branch_stages):
            raise ValueError(f"branch_stages must be a non-empty subset of 1..4, got {self.branch_stages}")
        if self.num_groups < 1:
            raise ValueError("num_groups (m) must be at least 1")
        if self.compactness_form not in COMPACTNESS_FORMS:
            raise ValueError(f"unknown compactness_form {self.compactness_form!r}; "
                             f"choose one of {tuple(COMPACTNESS_FORMS)}")
        if self.head not in HEAD_KINDS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {HEAD_KINDS}")
        if self.sga not in SGA_FORMS:
            raise ValueError(f"unknown sga {self.sga!r}; choose one of {SGA_FORMS}")
        check_output_stride(self.output_stride)
        if self.attention_scale not in ATTENTION_SCALES:
            raise ValueError(f"unknown attention_scale {self.attention_scale!r}; choose one of {ATTENTION_SCALES}")
        if not self.attention_temperature > 0:
            raise ValueError(f"attention_temperature must be positive, got {self.attention_temperature!r}")
        check_sga_axis(self.attention_axis)
        if not self.csra_temperature > 0 or self.csra_lambda < 0:
            raise ValueError(f"CSRA needs csra_temperature > 0 (inf for max pooling) and csra_lambda >= 0, "
                             f"got {self.csra_temperature!r} and {self.csra_lambda!r}")
        if self.branch_init not in BRANCH_INITS:
            raise ValueError(f"unknown branch_init {self.branch_init!r}; choose one of {BRANCH_INITS}")
        if self.label_projection < 0:
            raise ValueError(f"label_projection must be 0 (none) or a width, got {self.label_projection}")
        if self.head == "per_label" and self.embeddings == "none":
            raise ValueError("the per_label head reads each label's SGA representation, which embeddings='none' "
                             "does not compute: use head='paper' for that ablation")


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, n)
    compactness: torch.Tensor  # paper eq. 6 (0 for models without groups)
    details: dict = field(default_factory=dict)
    # Diffpool's link-prediction loss ||A - S S^T||_F / n (None for models without groups);
    # weighted by TrainConfig.group_link_weight, 0 in the paper's recipe
    group_link: torch.Tensor | None = None


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were asked for but could not be loaded."""


def load_resnet(name: str, pretrained: bool) -> nn.Module:
    """A torchvision ResNet, with ImageNet weights when ``pretrained`` (a clear error if offline)."""
    if not hasattr(torchvision.models, name) or not name.startswith(("resnet", "resnext", "wide_resnet")):
        raise ValueError(f"unknown backbone {name!r}: use a torchvision ResNet such as resnet18 or resnet101")
    model = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        model.load_state_dict(imagenet_state_dict(name))
    return model


def imagenet_state_dict(name: str) -> dict:
    """The ImageNet weights of the torchvision ResNet ``name``, read as data, never as code.

    The file is the one torchvision uses (``$TORCH_HOME/hub/checkpoints/<name>-<hash>.pth``,
    downloaded there once), but read here: its SHA-256 must start with the hash its name carries,
    and it is unpickled with ``weights_only=True`` (torchvision's own loader would run any code a
    replaced file holds). A file that fails either check is named with the fix.
    """
    weights = torchvision.models.get_model_weights(name).DEFAULT
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    cached = folder / weights.url.rsplit("/", 1)[-1]
    found = torch.hub.HASH_REGEX.search(cached.name)
    hash_prefix = found.group(1) if found else None
    if not cached.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(weights.url, str(cached), hash_prefix, progress=True)
        except Exception as error:  # network errors come in many types
            raise PretrainedWeightsError(
                f"could not load ImageNet weights {weights} for {name} ({type(error).__name__}: {error}). "
                f"Download them once while online (torchvision caches them), or by hand: "
                f"`mkdir -p {folder} && curl -L -o {cached} {weights.url}` (the file name must stay as it is: "
                "its hash is checked). Or train from scratch with pretrained=False (CLI: leave out --pretrained)."
            ) from error
    fix = f"delete it (rm {cached}) and run again: the weights are downloaded anew"
    if hash_prefix and not file_digest(cached).startswith(hash_prefix):
        raise PretrainedWeightsError(f"{cached} is not the file torchvision publishes (its SHA-256 does not start "
                                     f"with {hash_prefix}, as its name says): it is damaged or replaced; {fix}")
    try:
        return load_tensors_only(cached, fix=fix)
    except (UnsafePickleError, UnreadableTensorFileError) as error:
        raise PretrainedWeightsError(str(error)) from None


def stage_channels(layer: nn.Sequential) -> int:
    """Output channels of a ResNet stage, read from the model (never hard-coded)."""
    last_block = layer[-1]
    norms = [m for m in last_block.modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1].num_features


def keep_layer4_resolution(layer4: nn.Sequential) -> None:
    """Output stride 16: the first block of layer4 stops halving the map (its stride-2 convolution
    and its shortcut's get stride 1), so layer4 is as large as layer3, as segmentation networks do.

    The weights are unchanged (a checkpoint of either stride loads into the other); each layer4
    filter sees half the pixels it saw before (no dilation: torchvision's BasicBlock has none).
    At 128 px the last map grows from 4 x 4 to 8 x 8 cells, fine enough to point at a 20-px
    object; a training step costs about 1.5 x (ResNet-18, ``benchmarks/throughput.py --output-stride``).
    """
    for module in layer4[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (1, 1)


class ResNetTrunk(nn.Module):
    """A torchvision ResNet from stem to layer4, returning the outputs of chosen stages.

    ``output_stride`` 32 is the ResNet as published; 16 keeps layer4 at layer3's resolution
    (:func:`keep_layer4_resolution`).
    """

    def __init__(self, name: str = "resnet101", pretrained: bool = False, output_stride: int = 32):
        super().__init__()
        check_output_stride(output_stride)
        resnet = load_resnet(name, pretrained)
        if output_stride == 16:
            keep_layer4_resolution(resnet.layer4)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.stages = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        self.channels = {i + 1: stage_channels(layer) for i, layer in enumerate(self.stages)}

    def forward(self, x: torch.Tensor, stages: Sequence[int] = (4,)) -> dict[int, torch.Tensor]:
        outputs = {}
        x = self.stem(x)
        for index, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if index in stages:
                outputs[index] = x
            if index >= max(stages):
                break
        return outputs


def make_branch(in_channels: int, embed_dim: int, buffer: bool, init: str = "default") -> nn.Sequential:
    """One branch (paper 4.1): [buffer 1x1 conv] -> MaxPool 2x2/2 -> 1x1 projection to d.

    ``init="he_normal"`` draws the buffer's weights from N(0, 2 / out_channels) (a 1x1 kernel),
    as the authors' ResNet.__init__ does for its ``conv_buffer`` layers; the projection keeps
    PyTorch's default, as their MSGDN's ``ProjectM``.
    """
    layers: list[nn.Module] = []
    if buffer:
        conv = nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1)
        if init == "he_normal":
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        layers.append(conv)
    layers += [nn.MaxPool2d(kernel_size=2, stride=2), nn.Conv2d(in_channels, embed_dim, kernel_size=1)]
    return nn.Sequential(*layers)


class LabelGraphModel(nn.Module):
    """What every model kind shares (MSRN, the baselines, DSDL, CSRA): a :class:`ResNetTrunk`, and
    the label features and the label graph in buffers (saved in checkpoints)."""

    def __init__(self, config: ModelConfig, label_features: torch.Tensor, adjacency: torch.Tensor):
        super().__init__()
        label_features = torch.as_tensor(label_features, dtype=torch.float32)
        adjacency = torch.as_tensor(adjacency, dtype=torch.float32)
        n = label_features.shape[0]
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency is {tuple(adjacency.shape)} but there are {n} label feature rows")
        self.config = config
        self.num_classes = n
        self.register_buffer("label_features", label_features)
        self.register_buffer("adjacency", adjacency)  # normalised ML-GCN adjacency A_hat
        self.trunk = ResNetTrunk(config.backbone, config.pretrained, config.output_stride)

    @property
    def gat_mask(self) -> torch.Tensor:
        """Label i attends to j where A_hat[i, j] > 0 (paper section 3.2; notebook 02), self loop always."""
        return gat_mask(self.adjacency)

    def parameter_groups(self, lr: float, backbone_lr_mult: float = 0.1) -> list[dict]:
        """SGD groups: the (pretrained) trunk at ``lr * backbone_lr_mult``, new layers at ``lr``."""
        trunk = list(self.trunk.parameters())
        trunk_ids = {id(p) for p in trunk}
        new = [p for p in self.parameters() if id(p) not in trunk_ids]
        return [
            {"params": trunk, "lr": lr * backbone_lr_mult, "name": "backbone"},
            {"params": new, "lr": lr, "name": "new_layers"},
        ]


# MSRN's weights renamed since a checkpoint was written (old key prefix -> new): read on loading
RENAMED_STATE_KEYS = {"gat_embed.": "group_pool.gat_embed.", "gat_assign.": "group_pool.gat_assign."}


def _rename_old_state_keys(state_dict: dict, prefix: str, *_) -> None:
    """A ``load_state_dict`` pre-hook: the keys of an older checkpoint under their current names."""
    for key in list(state_dict):
        for old, new in RENAMED_STATE_KEYS.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)


class MSRN(LabelGraphModel):
    """Multi-layered Semantic Representation Network (paper Figure 1)."""

    def __init__(self, config: ModelConfig, label_features: torch.Tensor, adjacency: torch.Tensor):
        super().__init__(config, label_features, adjacency)
        self._register_load_state_dict_pre_hook(_rename_old_state_keys)  # checkpoints of older versions
        d, m, n = config.embed_dim, config.num_groups, self.num_classes
        k = self.label_features.shape[1]
        self.label_projection = None  # the authors' fc_label, when config.label_projection > 0
        if config.label_projection and config.embeddings != "none":
            self.label_projection = nn.Linear(k, config.label_projection)
            k = config.label_projection
        # Label-Group Embedding (section 3.2)
        self.uses_labels = config.embeddings in ("full", "label")
        self.uses_groups = config.embeddings in ("full", "group")
        if config.embeddings != "none":
            self.gat1 = GATLayer(k, config.gat_hidden)  # eq. 4, t = 1
            self.gat2 = GATLayer(config.gat_hidden, d)  # eq. 4, t = 2
        if self.uses_groups:
            self.group_pool = DiffpoolBlock(d, m)  # Diffpool's embedding and assignment GNNs (eq. 5)
        # Branches (section 3.1 and 4.1): a buffer conv on every branch below the last stage
        self.branch_stages = config.branch_stages
        self.branches = nn.ModuleList(
            make_branch(self.trunk.channels[s], d, buffer=s < 4, init=config.branch_init) for s in self.branch_stages
        )
        if config.attention_scale == "learned":  # one temperature per branch, exp(log T) > 0
            self.attention_log_temperature = nn.Parameter(
                torch.full((len(self.branch_stages),), math.log(config.attention_temperature)))
        width = d * len(self.branch_stages)  # one row of M
        if config.head == "per_label":  # label i reads O_i and, with groups, its groups' rows S_i Q
            self.classifier = PerLabelClassifier((self.uses_labels + self.uses_groups) * width,
                                                 config.fc_hidden, n, config.head_negative_slope)
        else:
            rows = (n if self.uses_labels else 0) + (m if self.uses_groups else 0)
            self.fc1 = nn.Linear((rows if config.embeddings != "none" else 1) * width, config.fc_hidden)
            self.fc2 = nn.Linear(config.fc_hidden, n)

    def label_group_embeddings(self) -> dict:
        """LGE module: label embeddings E_l (eq. 2-4) and group embeddings E_g (eq. 5-6)."""
        mask = self.gat_mask
        vectors = self.label_features if self.label_projection is None else self.label_projection(self.label_features)
        hidden, alpha1 = self.gat1(vectors, mask)
        label_embeddings, alpha2 = self.gat2(hidden, mask)  # E_l = GAT_2(GAT_1(V))
        out = {"label_embeddings": label_embeddings, "gat_attention": [alpha1, alpha2]}
        if self.uses_groups:
            # the paper pools E_l; the authors' code ReLU(E_l) (ModelConfig.diffpool_relu)
            pooled_input = F.relu(label_embeddings) if self.config.relu_before_diffpool else label_embeddings
            group_embeddings, assignment = self.group_pool(pooled_input, self.adjacency, mask)  # eq. 5
            out.update(group_embeddings=group_embeddings, assignment=assignment,
                       compactness=compactness_loss(group_embeddings, label_embeddings, assignment,
                                                    self.config.compactness_form),
                       group_link=group_link_loss(assignment, mask))
        return out

    def forward(self, images: torch.Tensor, details: bool = False) -> ModelOutput:
        return self.after_trunk(self.trunk(images, self.branch_stages), details)

    def attention_temperatures(self) -> list:
        """What divides eq. 8's scores on each branch (ModelConfig.attention_scale): 1.0 for "none"."""
        config, branches = self.config, len(self.branch_stages)
        if config.attention_scale == "learned":
            return list(self.attention_log_temperature.exp())
        scale = {"none": 1.0, "fixed": config.attention_temperature,
                 "sqrt_d": math.sqrt(config.embed_dim) * config.attention_temperature}[config.attention_scale]
        return [scale] * branches

    def branch_maps(self, features: dict[int, torch.Tensor]) -> list[torch.Tensor]:
        """Each branch's projected map f (B x d x H x W) from the trunk's stage outputs.

        The stage outputs go in as channels_last (NHWC): the 2x2 max-pooling runs about twice
        as fast on the CPU, and the flattened B x HW x d map that the SGA reads is contiguous
        without a copy.
        """
        return [branch(features[stage].contiguous(memory_format=torch.channels_last))
                for stage, branch in zip(self.branch_stages, self.branches)]

    def classify(self, rows: torch.Tensor, assignment: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B x n) from ``tanh(M)``, the rows of M = [O || Q] (B x (n+m) x (branches * d)).

        The paper's head flattens all rows into fc1, so every label's logit reads every row; the
        per-label head gives label c its own row O_c and, with groups, ``S_c Q`` (its groups' rows,
        weighted by the Diffpool ``assignment``).
        """
        if self.config.head == "per_label":
            return self.classifier(label_rows(rows, self.num_classes, self.uses_labels, assignment))  # B x n
        hidden = F.leaky_relu(self.fc1(rows.flatten(1)), self.config.head_negative_slope)
        return self.fc2(hidden)

    def after_trunk(self, features: dict[int, torch.Tensor], details: bool = False) -> ModelOutput:
        """Everything after the trunk, from the outputs of its stages (``ResNetTrunk.forward``)."""
        n = self.num_classes
        zero = features[self.branch_stages[0]].new_zeros(())
        if self.config.embeddings == "none":
            # no LGE (Table 5): each branch's projected map is globally max-pooled instead
            pooled = [f.amax(dim=(2, 3)) for f in self.branch_maps(features)]
            hidden = F.leaky_relu(self.fc1(torch.tanh(torch.cat(pooled, dim=1))), self.config.head_negative_slope)
            return ModelOutput(self.fc2(hidden), zero)

        lge = self.label_group_embeddings()
        used = ([lge["label_embeddings"]] if self.uses_labels else []) + (
            [lge["group_embeddings"]] if self.uses_groups else [])
        embeddings = torch.cat(used, dim=0)  # (n + m) x d: rows of M = [O || Q]
        sga = sga_function(self.config.sga)
        representations, attention_maps = [], []
        for f, temperature in zip(self.branch_maps(features), self.attention_temperatures()):  # B x d x H x W
            height, width = f.shape[-2:]
            f = f.flatten(2).transpose(1, 2)  # B x HW x d
            out = sga(f, embeddings.to(f.dtype), return_attention=details, temperature=temperature,
                      axis=self.config.attention_axis)  # eq. 7-9
            if details:
                out, attention = out
                attention_maps.append(attention.unflatten(-1, (height, width)))
            representations.append(out)
        m_matrix = torch.cat(representations, dim=-1)  # B x (n+m) x (branches * d)
        split = n if self.uses_labels else 0
        rows = torch.tanh(m_matrix)
        result = ModelOutput(self.classify(rows, lge.get("assignment")), lge.get("compactness", zero),
                             group_link=lge.get("group_link"))
        if details:
            result.details = {
                "gat_attention": [a.detach() for a in lge["gat_attention"]],
                "label_embeddings": lge["label_embeddings"].detach(),
                "assignment": lge["assignment"].detach() if self.uses_groups else None,
                "branch_stages": list(self.branch_stages),
                "label_attention": [a[:, :split].detach() for a in attention_maps] if self.uses_labels else None,
                "group_attention": [a[:, split:].detach() for a in attention_maps] if self.uses_groups else None,
                "head_rows": rows.detach(),  # tanh(M), B x (n+m) x (branches * d): what classify() reads
            }
        return result


def class_activation_map(features: torch.Tensor, classifiers: torch.Tensor) -> torch.Tensor:
    """Class activation maps (Zhou et al., CVPR 2016): ``CAM_c = sum_k w_ck F_k``.

    ``features``: the last conv map F, B x C x h x w; ``classifiers``: the class weights w, n x C
    (a linear layer's weight, or ML-GCN's GCN outputs). Returns B x n x h x w, with no bias and
    no normalisation. For a classifier on global *average* pooling, the mean of ``CAM_c`` over the
    positions plus the bias is exactly the logit of class c: the map says where that logit comes from.
    """
    if features.ndim != 4 or classifiers.ndim != 2 or classifiers.shape[1] != features.shape[1]:
        raise ValueError(f"class_activation_map needs features B x C x h x w and classifiers n x C, got "
                         f"{tuple(features.shape)} and {tuple(classifiers.shape)}")
    return torch.einsum("bkhw,ck->bchw", features, classifiers.to(features.dtype))


class PlainBaseline(LabelGraphModel):
    """The backbone alone: global average pooling and a linear classifier.

    With ``details=True`` it returns its class activation maps,
    ``details["class_activation_map"]`` (B x n x h x w on the layer4 map).
    """

    def __init__(self, config: ModelConfig, label_features: torch.Tensor, adjacency: torch.Tensor):
        super().__init__(config, label_features, adjacency)
        self.classifier = nn.Linear(self.trunk.channels[4], self.num_classes)

    def forward(self, images: torch.Tensor, details: bool = False) -> ModelOutput:
        features = self.trunk(images, (4,))[4]
        result = ModelOutput(self.classifier(features.mean(dim=(2, 3))), images.new_zeros(()))
        if details:
            result.details = {"class_activation_map": class_activation_map(features, self.classifier.weight).detach(),
                              "branch_stages": [4]}
        return result


class GraphConvolution(nn.Module):
    """One GCN layer as in ML-GCN: ``A_hat H W`` (no bias)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        nn.init.uniform_(self.weight, -1 / out_features ** 0.5, 1 / out_features ** 0.5)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return adjacency @ (h @ self.weight)


class MLGCNBaseline(LabelGraphModel):
    """ML-GCN head: classifiers W = GCN_2(LeakyReLU(GCN_1(V))), logits = W x (x max-pooled).

    With ``details=True`` it returns the class activation maps of its GCN classifiers,
    ``details["class_activation_map"]`` (B x n x h x w on the layer4 map). ML-GCN max-pools, so the
    maps do not average to the logits as a plain ResNet's do; they still show, position by
    position, what the classifier of each label reads.
    """

    def __init__(self, config: ModelConfig, label_features: torch.Tensor, adjacency: torch.Tensor,
                 hidden: int = 1024):
        super().__init__(config, label_features, adjacency)
        self.gc1 = GraphConvolution(self.label_features.shape[1], hidden)
        self.gc2 = GraphConvolution(hidden, self.trunk.channels[4])

    def forward(self, images: torch.Tensor, details: bool = False) -> ModelOutput:
        features = self.trunk(images, (4,))[4]
        pooled = features.amax(dim=(2, 3))  # B x C
        hidden = F.leaky_relu(self.gc1(self.label_features, self.adjacency), 0.2)
        classifiers = self.gc2(hidden, self.adjacency)  # n x C
        result = ModelOutput(pooled @ classifiers.t(), images.new_zeros(()))
        if details:
            result.details = {"class_activation_map": class_activation_map(features, classifiers).detach(),
                              "branch_stages": [4]}
        return result


MODEL_CLASSES = {"msrn": MSRN, "plain": PlainBaseline, "mlgcn": MLGCNBaseline}
CONFIG_CLASSES: dict[str, type] = {kind: ModelConfig for kind in MODEL_CLASSES}
# Kinds defined in a module of their own: the module calls register_model when imported, and is
# imported on first use, so a config or checkpoint naming the kind always finds it.
KIND_MODULES = {"dsdl": ".extras.dsdl", "sdl": ".extras.sdl", "csra": ".csra"}
# The kinds that classify a dataset's own labels, trained and evaluated alike (the training command
# line offers these); SDL ranks tags for zero-shot learning on a split of its own (notebook 08).
CLASSIFIER_KINDS = (*MODEL_KINDS, "dsdl")


def register_model(kind: str, model_class: type, config_class: type) -> None:
    """Make ``kind`` known to :func:`build_model`, :func:`model_config`, recipes and checkpoints.

    ``config_class`` is a dataclass with at least the fields ``kind``, ``backbone`` and ``pretrained``.
    """
    MODEL_CLASSES[kind] = model_class
    CONFIG_CLASSES[kind] = config_class


def _load_kind(kind: str) -> None:
    if kind not in MODEL_CLASSES and kind in KIND_MODULES:
        importlib.import_module(KIND_MODULES[kind], __package__)
    if kind not in MODEL_CLASSES:
        known = sorted(set(MODEL_CLASSES) | set(KIND_MODULES))
        raise ValueError(f"unknown model kind {kind!r}; choose one of {known}")


def config_class(kind: str) -> type:
    """The config dataclass of ``kind`` (:class:`ModelConfig` for MSRN and its baselines)."""
    _load_kind(kind)
    return CONFIG_CLASSES[kind]


def model_config(kind: str = "msrn", **values):
    """A config for any kind, e.g. ``model_config("dsdl", backbone="resnet18")``."""
    return config_class(kind)(kind=kind, **values)


def build_model(config, label_features, adjacency) -> LabelGraphModel:
    """Build the model named by ``config.kind`` for the given label features and graph."""
    _load_kind(config.kind)
    return MODEL_CLASSES[config.kind](config, label_features, adjacency)


def model_signature(model: LabelGraphModel, class_names: Sequence[str]) -> dict:
    """What must match for a checkpoint to load into a model: architecture and label set."""
    return {
        "config": asdict(model.config),
        "class_names": list(class_names),
        "label_feature_dim": int(model.label_features.shape[1]),
    }


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
