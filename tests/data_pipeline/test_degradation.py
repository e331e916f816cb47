"""BSRGAN-light degradation chain (spec 12)."""
import numpy as np
import pytest

from glide_jax.data import degradation


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    base = rng.integers(30, 220, (32, 32, 3)).astype(np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))  # 256x256 with some structure


def test_shape_dtype_and_determinism(image):
    for seed in range(6):
        out = degradation.degrade_bsrgan_light(image, np.random.default_rng(seed))
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8
        again = degradation.degrade_bsrgan_light(image, np.random.default_rng(seed))
        np.testing.assert_array_equal(out, again)
    a = degradation.degrade_bsrgan_light(image, np.random.default_rng(100))
    b = degradation.degrade_bsrgan_light(image, np.random.default_rng(101))
    assert not np.array_equal(a, b)


def test_l0_bug_flag(image):
    x = np.random.default_rng(1).uniform(0.1, 0.9, (64, 64, 3)).astype(np.float32)
    x[:8, :8] = 1.0
    assert degradation.l0_smooth(x, 2e-3).max() == 0  # PITI's call on [0, 1] input
    for seed in range(3):
        buggy = degradation.degrade_bsrgan_light(image, np.random.default_rng(seed), l0_prob=1.0,
                                                 l0_smooth_bug=True)
        fixed = degradation.degrade_bsrgan_light(image, np.random.default_rng(seed), l0_prob=1.0)
        assert buggy.mean() < 3 and buggy.max() < 30  # black up to the later noise/JPEG
        assert abs(fixed.mean() - image.mean()) < 10


def test_l0_smooth_flattens_small_gradients():
    rng = np.random.default_rng(0)
    x = np.full((32, 32, 3), 100.0) + rng.normal(0, 1.0, (32, 32, 3))
    x[:, 16:] += 100
    out = degradation.l0_smooth(x, 2e-2).astype(float)
    assert out[:, :14].std() < 0.6 and out[:, 18:].std() < 0.6
    assert abs(out[:, 18:].mean() - out[:, :14].mean() - 100) < 3


def test_helpers():
    k = degradation.gaussian_kernel(7, 1.2)
    assert k.shape == (7, 7) and abs(k.sum() - 1) < 1e-9 and k.argmax() == 24
    a = degradation.anisotropic_gaussian_kernel(9, 0.3, 2.0, 0.5)
    assert abs(a.sum() - 1) < 1e-9 and a.argmax() == 40
    impulse = np.zeros((9, 9))
    impulse[5, 5] = 1.0
    shifted = degradation.shift_pixel(impulse, 3)  # shift by 1 px up-left
    assert shifted[4, 4] == 1.0
    half = degradation.imresize(np.full((16, 12, 3), 0.5, np.float32), 0.5)
    assert half.shape == (8, 6, 3) and np.allclose(half, 0.5, atol=1e-6)
