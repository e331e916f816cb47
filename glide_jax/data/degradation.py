"""PITI's BSRGAN-light degradation chain for upsampler training pairs (PITI `pretrained_diffusion/degradation/bsrgan_light.py`).

`degrade_bsrgan_light(image, rng)` turns the 256x256 uint8 ground truth into the 64x64 uint8
low-resolution input. All randomness comes from the explicit `numpy.random.Generator`, so a
pipeline that seeds one generator per example is deterministic. PITI draws the same quantities from
Python's `random` and NumPy's global state, so individual samples are not bit-comparable with PITI;
the distribution of degradations is the same.

PITI's L0-smoothing step receives [0, 1] floats but expects 0..255, and returns an all-zero image
(about 20% of its low-res inputs are black). `l0_smooth_bug=True` reproduces this; the default
scales by 255 around the smoother, which is what the step was meant to do.
"""
import cv2
import numpy as np
from scipy import ndimage
from scipy.linalg import orth

# cv2 interpolation codes PITI draws from: INTER_LINEAR, INTER_CUBIC, INTER_AREA.
_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA)


def _random_interpolation(rng):
    return _INTERPOLATIONS[rng.integers(len(_INTERPOLATIONS))]


def _resize(x, width, height, rng):
    return cv2.resize(x, (width, height), interpolation=_random_interpolation(rng))


def _convolve_mirror(x, kernel):
    return ndimage.convolve(x, kernel[..., None], mode="mirror")


# ---------------------------------------------------------------------------------------------
# Kernels


def gaussian_kernel(size, sigma):
    """MATLAB fspecial('gaussian', size, sigma): [size, size] float64 summing to 1."""
    half = (size - 1) / 2.0
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    k = np.nan_to_num(k)
    k[k < np.finfo(float).eps * k.max()] = 0
    total = k.sum()
    return k / total if total != 0 else k


def anisotropic_gaussian_kernel(size, theta, l1, l2):
    """Gaussian with eigenvalues (l1, l2) rotated by theta, sampled on a centred size x size grid."""
    v = np.array([np.cos(theta), np.sin(theta)])
    basis = np.array([[v[0], v[1]], [v[1], -v[0]]])
    cov = basis @ np.diag([max(l1, 1e-8), max(l2, 1e-8)]) @ np.linalg.inv(basis)
    offset = size / 2.0 - 0.5
    coords = np.arange(size) - offset
    xx, yy = np.meshgrid(coords, coords)
    points = np.stack([xx, yy], -1)
    inv = np.linalg.inv(cov)
    k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", points, inv, points))
    return k / k.sum()


def _linear_resample(a, coords, axis):
    """Linear interpolation of `a` at fractional in-range positions `coords` along `axis`."""
    lo = np.floor(coords).astype(np.int64)
    hi = np.minimum(lo + 1, a.shape[axis] - 1)
    frac = (coords - lo).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
    return np.take(a, lo, axis) * (1 - frac) + np.take(a, hi, axis) * frac


def shift_pixel(x, sf, upper_left=True):
    """Shift an [H, W] or [H, W, C] array by (sf - 1) / 2 px with bilinear resampling.

    Coordinates are clamped to the array, matching BSRGAN's interp2d-based helper.
    """
    h, w = x.shape[:2]
    shift = (sf - 1) * 0.5 * (1 if upper_left else -1)
    rows = np.clip(np.arange(h) + shift, 0, h - 1)
    cols = np.clip(np.arange(w) + shift, 0, w - 1)
    return _linear_resample(_linear_resample(np.asarray(x, np.float64), rows, 0), cols, 1)


# ---------------------------------------------------------------------------------------------
# MATLAB-style antialiased bicubic resize (imresize)


def _cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _imresize_axis(x, out_len, scale, axis):
    in_len = x.shape[axis]
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None]
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    weights /= weights.sum(1, keepdims=True)
    idx = idx.astype(np.int64) - 1  # to 0-based; out-of-range taps reflect (symmetric padding)
    idx = np.where(idx < 0, -idx - 1, idx)
    idx = np.where(idx >= in_len, 2 * in_len - 1 - idx, idx)
    moved = np.moveaxis(x, axis, 0)
    out = np.einsum("ot,ot...->o...", weights, moved[idx])
    return np.moveaxis(out, 0, axis)


def imresize(x, scale):
    """MATLAB imresize(x, scale, 'bicubic') with antialiasing on [H, W, C] float arrays."""
    h, w = x.shape[:2]
    out = _imresize_axis(x.astype(np.float64), int(np.ceil(h * scale)), scale, 0)
    return _imresize_axis(out, int(np.ceil(w * scale)), scale, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# L0 gradient smoothing (Xu et al. 2011), FFT solver with circular boundary


def _psf2otf_diff(shape, axis):
    """OTF of the forward difference [1, -1] along `axis` for an image of `shape` (H, W)."""
    psf = np.zeros(shape, np.float32)
    psf[0, 0] = 1
    psf[(-1, 0) if axis == 0 else (0, -1)] = -1
    return np.fft.fft2(psf)


def l0_smooth(image, lam, kappa=2.0, beta_max=1e5):
    """L0 gradient minimisation of an [H, W, 3] image given on a 0..255 scale.

    Returns uint8 (values scaled by 1/256 inside and by 256 on the way out, truncated), as PITI.
    """
    s = np.asarray(image, np.float32) / 256
    h, w = s.shape[:2]
    fi = np.fft.fft2(s, axes=(0, 1))
    mtf = (np.abs(_psf2otf_diff((h, w), 1)) ** 2 + np.abs(_psf2otf_diff((h, w), 0)) ** 2)[..., None]
    beta = 2 * lam
    while beta < beta_max:
        dh = np.roll(s, -1, axis=1) - s
        dv = np.roll(s, -1, axis=0) - s
        flat = np.sum(dh ** 2 + dv ** 2, axis=2, keepdims=True) < lam / beta
        dh = np.where(flat, 0, dh)
        dv = np.where(flat, 0, dv)
        div = (np.roll(dh, 1, axis=1) - dh) + (np.roll(dv, 1, axis=0) - dv)
        fs = (fi + beta * np.fft.fft2(div, axes=(0, 1))) / (1 + beta * mtf)
        s = np.fft.ifft2(fs, axes=(0, 1)).real.astype(np.float32)
        beta *= kappa
    return (s * 256).astype(np.uint8)


def _l0_step(x, rng, bug):
    lam = rng.uniform(1.2, 4.0) * 1e-3
    if bug:
        return l0_smooth(x, lam)  # [0, 1] input on a 0..255 scale: an all-zero uint8 image
    return l0_smooth(np.clip(x, 0, 1) * 255.0, lam).astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# The chain


def _add_blur(x, sf, rng):
    wd2, wd = (4.0 + sf) / 4, (2.0 + 0.2 * sf) / 4
    if rng.random() < 0.5:
        size = int(rng.integers(2, 12)) + 3
        k = anisotropic_gaussian_kernel(size, rng.random() * np.pi, wd2 * rng.random(),
                                        wd2 * rng.random())
    else:
        k = gaussian_kernel(int(rng.integers(2, 5)) + 3, wd * rng.random())
    return _convolve_mirror(x, k)


def _add_gaussian_noise(x, rng, level_low=1, level_high=2):
    level = int(rng.integers(level_low, level_high + 1)) / 255.0
    u = rng.random()
    h, w = x.shape[:2]
    if u > 0.6:
        noise = rng.normal(0, level, x.shape)
    elif u < 0.4:
        noise = rng.normal(0, level, (h, w, 1))
    else:
        scale = level_high / 255.0
        basis = orth(rng.random((3, 3)))
        cov = np.abs(scale ** 2 * basis.T @ np.diag(rng.random(3)) @ basis)
        noise = rng.multivariate_normal(np.zeros(3), cov, (h, w))
    return np.clip(x + noise.astype(np.float32), 0.0, 1.0)


def _add_jpeg(x, rng):
    quality = int(rng.integers(80, 96))
    bgr = cv2.cvtColor(_to_uint8(x), cv2.COLOR_RGB2BGR)
    _, encoded = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    decoded = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return decoded.astype(np.float32) / 255.0


def _first_downsample(x, sf, rng):
    h, w = x.shape[:2]
    if rng.random() < 0.8:
        sf1 = rng.uniform(1, 2 * sf)
        x = _resize(x, int(w / sf1), int(h / sf1), rng)
    else:
        k = shift_pixel(gaussian_kernel(25, rng.uniform(0.1, 0.6 * sf)), sf)
        x = _convolve_mirror(x, k / k.sum())[::sf, ::sf]
    return np.clip(x, 0.0, 1.0)


def _to_uint8(x):
    return np.round(np.clip(x, 0, 1) * 255.0).astype(np.uint8)


def _op_order(rng):
    """Random order of ops 0..6 in which the final downsample (3) follows the first (2)."""
    order = list(rng.permutation(7))
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:
        order[i2], order[i3] = order[i3], order[i2]
    return order


def degrade_bsrgan_light(image, rng, sf=4, l0_smooth_bug=False, blur_prob=0.8, jpeg_prob=0.5,
                         scale2_prob=0.25, l0_prob=0.2):
    """BSRGAN-light degradation of one image (PITI `pretrained_diffusion/degradation/bsrgan_light.py`).

    image: [H, W, 3] uint8 (H, W multiples of sf after a mod-crop). rng: numpy Generator.
    Returns [H // sf, W // sf, 3] uint8. The probabilities default to PITI's.
    """
    h0, w0 = image.shape[:2]
    x = image[:h0 - h0 % sf, :w0 - w0 % sf].astype(np.float32) / 255.0
    if sf == 4 and rng.random() < scale2_prob:
        h, w = x.shape[:2]
        if rng.random() < 0.5:
            x = _resize(x, w // 2, h // 2, rng)
        else:
            x = imresize(x, 0.5)
        x = np.clip(x, 0.0, 1.0)
        sf = 2
    width, height = x.shape[1], x.shape[0]
    for op in _op_order(rng):
        if op == 0 and rng.random() < blur_prob:
            x = _add_blur(x, sf, rng)
        elif op == 2:
            width, height = x.shape[1], x.shape[0]
            x = _first_downsample(x, sf, rng)
        elif op == 3:
            x = np.clip(_resize(x, int(width / sf), int(height / sf), rng), 0.0, 1.0)
        elif op == 4:
            x = _add_gaussian_noise(x, rng)
        elif op == 5 and rng.random() < jpeg_prob:
            x = _add_jpeg(x, rng)
        elif op == 6 and rng.random() < l0_prob:
            x = _l0_step(x, rng, l0_smooth_bug)
    return _to_uint8(x)
