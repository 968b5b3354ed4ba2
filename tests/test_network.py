"""The MLBN module and network: structure, sizes, parameter counts."""

import inspect

import pytest
import torch
from torch import nn

from idc_sklearn import PRESETS, MLBNBlock, MLBNInception, MLBNInceptionClassifier


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_default_network_is_the_authors_best_model():
    # Built on the meta device: shapes and counts without allocating 135 MB.
    with torch.device("meta"):
        net = MLBNInception().eval()
        out = net(torch.zeros(2, 3, 50, 50))
    assert n_params(net) == 33_772_117  # the paper: 33.8 M
    assert out.shape == (2, 2)


def test_sibling_reading_of_filters_is_reachable():
    with torch.device("meta"):
        net = MLBNInception(filters=(16, 16, 32, 32, 64, 64, 128, 128))
    assert n_params(net) == 5_712_781  # the authors' sibling model: about 5.7 M


def test_block_branches_and_output_channels():
    block = MLBNBlock(3, 9)
    assert block.out_channels == 36
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    # 1x1 reductions included: a BN after every one of the six convolutions
    assert len(convs) == 6 and len(bns) == 6
    kernels = sorted(c.kernel_size[0] for c in convs)
    assert kernels == [1, 1, 1, 1, 3, 5]
    assert block.branch5x5[0][0].out_channels == 3  # fpb // 3
    assert block.branch3x3[0][0].out_channels == 4  # fpb // 2
    assert all(c.bias is not None and c.stride == (1, 1) for c in convs)
    out = block(torch.randn(2, 3, 10, 10))
    assert out.shape == (2, 36, 10, 10)
    assert (out >= 0).all()  # ReLU last in every branch


def test_bn_sits_between_conv_and_relu():
    unit = MLBNBlock(3, 6).branch1x1
    assert [type(m) for m in unit] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


def test_ablation_drops_batchnorm_inside_modules_only():
    net = MLBNInception(multilevel_bn=False, filters=(3, 3), patch_size=16)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.features.modules())
    assert any(isinstance(m, nn.BatchNorm1d) for m in net.head.modules())
    block = MLBNBlock(3, 6, multilevel_bn=False)
    assert [type(m) for m in block.branch1x1] == [nn.Conv2d, nn.ReLU]


def test_pooling_after_modules_2_4_6():
    net = MLBNInception(filters=(3,) * 8, head_units=())
    kinds = ["pool" if isinstance(m, nn.MaxPool2d) else "inc" for m in net.features]
    assert kinds == ["inc", "inc", "pool"] * 3 + ["inc", "inc"]
    # 50 -> 25 -> 12 -> 6, 4 * 3 channels
    assert net.head[0].in_features == 12 * 6 * 6


def test_head_is_fc_bn_dropout_relu():
    net = MLBNInception(filters=(3, 3), head_units=(5, 4), dropout=0.25, patch_size=16)
    kinds = [type(m) for m in net.head]
    block = [nn.Linear, nn.BatchNorm1d, nn.Dropout, nn.ReLU]
    assert kinds == block * 2 + [nn.Linear]
    assert net.head[2].p == 0.25
    assert net.head[-1].out_features == 2


@pytest.mark.parametrize(
    "patch_size, filters",
    [(16, (3,)), (16, (3,) * 8), (32, (3, 3, 6)), (50, (3, 3)), ((20, 24), (3,) * 5)],
)
def test_any_patch_size_and_filters_length(patch_size, filters):
    net = MLBNInception(
        n_classes=3, filters=filters, head_units=(4,), patch_size=patch_size
    )
    h, w = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    assert net.eval()(torch.zeros(2, 3, h, w)).shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 15}, "patch_size must be at least 16"),
        ({"filters": ()}, "filters"),
        ({"filters": (2,)}, r"filters must be ints >= 3 .*got \(2,\)"),
        ({"filters": 64}, "filters must be a sequence"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_classes": 1}, "n_classes"),
        ({"head_units": (0,)}, "head_units"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MLBNInception(**kwargs)


def test_paper_preset_is_the_networks_default():
    for cls in (MLBNInception, MLBNInceptionClassifier):
        defaults = inspect.signature(cls).parameters
        assert PRESETS["paper"] == {
            name: defaults[name].default for name in ("filters", "head_units")
        }


@pytest.mark.parametrize(
    "name, filters, head_units, n",
    [
        ("paper", (64, 64, 128, 128, 256, 256, 512, 512), (256, 256), 33_772_117),
        ("medium", (32, 32, 64, 64, 128, 128, 256, 256), (128, 128), 8_446_180),
        ("small", (8, 8, 16, 16, 32, 32, 64, 64), (64, 64), 826_736),
        ("tiny", (3, 3), (8,), 240_450),
    ],
)
def test_each_preset_builds_its_network(name, filters, head_units, n):
    assert dict(PRESETS[name]) == {"filters": filters, "head_units": head_units}
    with torch.device("meta"):
        net = MLBNInception(**PRESETS[name]).eval()
        out = net(torch.zeros(2, 3, 50, 50))
    assert n_params(net) == n and out.shape == (2, 2)
    blocks = [m for m in net.features if isinstance(m, MLBNBlock)]
    assert tuple(block.filters_per_branch for block in blocks) == filters
    dense = [m.out_features for m in net.head if isinstance(m, nn.Linear)]
    assert tuple(dense) == (*head_units, 2)
    clf = MLBNInceptionClassifier(**PRESETS[name])
    assert clf.get_params()["filters"] == filters


def test_presets_are_read_only():
    with pytest.raises(TypeError):
        PRESETS["small"]["filters"] = (3,)
    with pytest.raises(TypeError):
        PRESETS["huge"] = {}
