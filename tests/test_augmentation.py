"""Per-batch augmentation: dihedral views and HED stain jitter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import requires_cuda
from skimage.color import hed2rgb, rgb2hed, rgb_from_hed

from idc_sklearn.augmentation import AUGMENT_MODES, augment_batch, dihedral, hed_jitter


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_rgb(n=4, size=16, seed=0) -> np.ndarray:
    """Integer-valued RGB on 0-255, channels last, with pure black and white."""
    rgb = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3))
    rgb[0, 0, 0], rgb[0, 0, 1] = 0, 255
    return rgb.astype(np.float64)


def _stained_rgb(n=4, size=16, low=0.0, high=0.1, seed=0):
    """RGB made from non-negative stain densities, so ``rgb2hed`` clips nothing."""
    stains = np.random.default_rng(seed).uniform(low, high, (n, size, size, 3))
    return 255.0 * np.exp(stains @ rgb_from_hed * math.log(1e-6)), stains


def _to_torch(rgb: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(rgb, dtype=dtype).permute(0, 3, 1, 2)


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).double().cpu().numpy()


def _views(patch: torch.Tensor) -> list[torch.Tensor]:
    """The 8 dihedral views of a (C, H, W) patch."""
    return [
        torch.rot90(p, k, dims=(1, 2)) for p in (patch, patch.flip(2)) for k in range(4)
    ]


def _view_index(out: torch.Tensor, patch: torch.Tensor) -> int:
    matches = [
        i
        for i, v in enumerate(_views(patch))
        if v.shape == out.shape and torch.equal(v, out)
    ]
    assert len(matches) == 1, "output is not exactly one dihedral view of its input"
    return matches[0]


# -- hed_jitter --


@pytest.mark.parametrize(
    "dtype, sigma, atol",
    [
        (torch.float64, 0.0, 1e-9),
        (torch.float32, 0.0, 1e-3),
        (torch.float64, 1e-9, 1e-5),
        (torch.float32, 1e-9, 1e-3),
    ],
)
def test_hed_jitter_without_jitter_returns_the_input(dtype, sigma, atol):
    rgb, _ = _stained_rgb()
    x = _to_torch(rgb, dtype)
    y = hed_jitter(x, sigma=sigma, generator=_gen(0))
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y, x, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-9), (torch.float32, 1e-3)])
def test_hed_round_trip_is_scikit_images(dtype, atol):
    # Random colours lie partly outside the stain gamut, where rgb2hed clips
    # negative densities: the round trip is then not the identity, but it must be
    # scikit-image's.
    rgb = _random_rgb()
    expected = 255.0 * hed2rgb(rgb2hed(rgb / 255.0))
    assert np.abs(expected - rgb).max() > 10
    y = hed_jitter(_to_torch(rgb, dtype), sigma=0.0)
    np.testing.assert_allclose(_to_numpy(y), expected, rtol=0, atol=atol)


def test_hed_jitter_is_an_affine_map_of_each_patchs_stains():
    sigma = 0.02
    # Densities of at least 0.05 stay positive after the largest shift, so the
    # stains of the output are alpha * s + beta with nothing clipped.
    rgb, stains = _stained_rgb(n=6, low=0.05, high=0.1)
    y = hed_jitter(_to_torch(rgb), sigma=sigma, generator=_gen(0))
    out_stains = rgb2hed(_to_numpy(y) / 255.0)
    draws = []
    for i in range(len(rgb)):
        for c in range(3):
            s, t = stains[i, ..., c].ravel(), out_stains[i, ..., c].ravel()
            alpha, beta = np.polyfit(s, t, 1)
            np.testing.assert_allclose(alpha * s + beta, t, atol=1e-9)
            assert 1 - sigma <= alpha <= 1 + sigma and -sigma <= beta <= sigma
            draws.append((alpha, beta))
    # Every patch and stain has its own alpha and its own beta.
    for values in zip(*draws, strict=True):
        assert len(np.unique(np.round(values, 9))) == len(draws)


def test_jittered_batch_stays_on_the_0_255_scale():
    x = _to_torch(_random_rgb(n=32), torch.float32)
    y = hed_jitter(x, sigma=0.5, generator=_gen(0))
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 255
    assert (y - x).abs().mean() > 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_hed_jitter_keeps_dtype(dtype):
    x = _to_torch(_stained_rgb()[0], dtype)
    y = hed_jitter(x, generator=_gen(0))
    assert y.dtype == dtype and y.shape == x.shape


# -- dihedral --


def test_dihedral_gives_each_patch_one_of_its_8_views_uniformly():
    x = torch.rand(800, 3, 5, 5, generator=_gen(1))
    y = dihedral(x, generator=_gen(0))
    counts = np.bincount(
        [_view_index(o, p) for o, p in zip(y, x, strict=True)], minlength=8
    )
    # 100 expected per view; the standard deviation is about 9.4.
    assert counts.min() >= 70 and counts.max() <= 130, counts


@pytest.mark.parametrize("shape", [(5, 7), (16, 12)])
def test_dihedral_keeps_non_square_shapes(shape):
    x = torch.rand(200, 3, *shape, generator=_gen(1))
    y = dihedral(x, generator=_gen(0))
    assert y.shape == x.shape
    seen = {_view_index(o, p) for o, p in zip(y, x, strict=True)}
    # identity, horizontal flip, vertical flip, rotation by 180 degrees
    assert seen == {0, 2, 4, 6}


def test_dihedral_in_channels_last_memory_format():
    x = torch.rand(64, 3, 16, 16, generator=_gen(1))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y = dihedral(x, generator=_gen(0))
    y_cl = dihedral(x_cl, generator=_gen(0))
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, y, rtol=0, atol=0)


# -- augment_batch --


@pytest.mark.parametrize("mode", ["dihedral", "hed", "all"])
def test_same_seed_same_output_other_seed_other_output(mode):
    x = _to_torch(_random_rgb(n=16), torch.float32)
    a = augment_batch(x, mode, generator=_gen(0))
    b = augment_batch(x, mode, generator=_gen(0))
    c = augment_batch(x, mode, generator=_gen(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_all_is_hed_then_dihedral():
    x = _to_torch(_random_rgb(n=16), torch.float32)
    g = _gen(0)
    expected = dihedral(hed_jitter(x, sigma=0.1, generator=g), generator=g)
    y = augment_batch(x, "all", generator=_gen(0), hed_sigma=0.1)
    assert torch.equal(y, expected)


def test_mode_none_returns_the_input_itself():
    x = _to_torch(_random_rgb(), torch.float32)
    before = x.clone()
    assert augment_batch(x, None) is x
    assert torch.equal(x, before)


def test_modes_leave_their_input_untouched():
    x = _to_torch(_random_rgb(), torch.float32)
    before = x.clone()
    for mode in AUGMENT_MODES:
        augment_batch(x, mode, generator=_gen(0))
    assert torch.equal(x, before)


@pytest.mark.parametrize("mode", ["flip", "HED", "", 1, ("hed",)])
def test_bad_mode_is_named_with_the_allowed_modes(mode):
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"mode must be one of \(None, 'dihedral'"):
        augment_batch(x, mode)


@pytest.mark.parametrize("sigma", [-0.1, 1.0, 2, float("nan"), "0.1", True, None])
def test_bad_sigma_is_named_with_what_was_expected(sigma):
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"^sigma must be a float in \[0, 1\); got"):
        hed_jitter(x, sigma=sigma)
    with pytest.raises(ValueError, match=r"^hed_sigma must be a float in \[0, 1\)"):
        augment_batch(x, "dihedral", hed_sigma=sigma)


@pytest.mark.parametrize(
    "func, x, match",
    [
        (dihedral, torch.zeros(3, 4, 4), r"x must be a 4-D tensor .* got \(3, 4, 4\)"),
        (dihedral, np.zeros((2, 3, 4, 4)), "x must be a 4-D tensor .* got ndarray"),
        (hed_jitter, torch.zeros(2, 1, 4, 4), r"float RGB batch .* \(2, 1, 4, 4\)"),
        (hed_jitter, torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "dtype torch.uint8"),
    ],
)
def test_bad_batch_is_named(func, x, match):
    with pytest.raises(ValueError, match=match):
        func(x)


# -- GPU --


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("mode", ["dihedral", "hed", "all"])
def test_cuda_batch_matches_cpu_batch_for_the_same_cpu_generator(mode):
    x = _to_torch(_random_rgb(n=32), torch.float32)
    x_cuda = x.cuda().contiguous(memory_format=torch.channels_last)
    expected = augment_batch(x, mode, generator=_gen(0), hed_sigma=0.2)
    y = augment_batch(x_cuda, mode, generator=_gen(0), hed_sigma=0.2)
    assert y.is_cuda and y.dtype == x.dtype
    torch.testing.assert_close(y.cpu(), expected, rtol=0, atol=1e-2)
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    assert augment_batch(x_cuda, mode, generator=cuda_gen).is_cuda
