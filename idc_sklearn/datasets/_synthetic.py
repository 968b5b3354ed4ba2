"""A synthetic IDC-like patch dataset: H&E-looking patches on per-patient slide grids.

Patches are painted with a Beer-Lambert stain model: a haematoxylin and an eosin
concentration map per patch, turned into RGB through per-patient stain colours. Every
step is vectorised over a batch of patches with numpy: textures are crops of a small
bank of precomputed tiles, and all nuclei of a batch are stamped at once with one
``np.bincount``.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._frame import make_frame

# The archive's patches sit on a 50-pixel grid whose first patch is at x = y = 1.
GRID_STEP = 50
GRID_ORIGIN = 1
# Optical density of haematoxylin (blue-purple) and eosin (pink) per unit of stain,
# estimated from the pixels of the real sample (shared/data/idc_sample).
H_OD = np.array([0.55, 0.76, 0.35])
E_OD = np.array([0.18, 0.83, 0.53])
LABEL_NOISE = 0.03
# Patches rendered at once: keeps the temporaries small (a few MB, cache-sized).
_BATCH = 256
_BANK_TILES = 16


def _smooth_noise(rng, shape, sigma) -> np.ndarray:
    """Gaussian-filtered white noise, standardised over the last two axes."""
    noise = ndimage.gaussian_filter(
        rng.standard_normal(shape), sigma=(0,) * (len(shape) - 2) + tuple(sigma)
    )
    noise -= noise.mean(axis=(-2, -1), keepdims=True)
    noise /= noise.std(axis=(-2, -1), keepdims=True) + 1e-9
    return noise


def _make_bank(rng, tile: int, scale: float):
    """Texture tiles of ``tile`` x ``tile`` pixels in four channels, channel first.

    Channels: collagen fibres (0..1, running along each tile's angle), fat cell
    membranes (0..1, a Voronoi pattern), a smooth region field (uniform on 0..1, for
    fat and glass masks) and fine grain (standard normal, for chromatin and noise).
    Returns the bank, float32 of shape (4, tiles, tile, tile), and the fibre angles.
    """
    k = _BANK_TILES
    # Collagen: white noise filtered by a Gaussian elongated along the fibre angle;
    # two bundles at slightly different angles make the fibres wavy.
    angles = rng.uniform(0, np.pi, k)
    freq = np.fft.fftfreq(tile)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    fibre = np.zeros((k, tile, tile))
    for bend, weight in ((0.0, 1.0), (rng.uniform(-0.5, 0.5, k), 0.7)):
        theta = (angles + bend)[:, None, None]
        along = fx * np.cos(theta) + fy * np.sin(theta)
        across = fy * np.cos(theta) - fx * np.sin(theta)
        gain = np.exp(-((along / 0.03) ** 2) - (across / (0.3 / scale)) ** 2)
        noise = np.fft.fft2(rng.standard_normal((k, tile, tile)))
        fibre += weight * np.fft.ifft2(noise * gain).real
    fibre /= fibre.std(axis=(1, 2), keepdims=True)
    fibre = 0.5 + 0.5 * np.tanh(1.2 * fibre)
    # Adipocytes: cell borders, where the two nearest seeds are about equidistant.
    # One seed per cell of a grid (Worley noise): the two nearest seeds of a pixel
    # are among the 3 x 3 cells around its own.
    cell = 17 * scale
    n_cells = int(np.ceil(tile / cell)) + 2
    seeds = np.arange(n_cells)[None, :, None, None] - 1 + np.zeros((k, 1, 1, 1))
    seeds = (
        np.concatenate(
            [
                seeds + rng.uniform(0, 1, (k, n_cells, n_cells, 1)),
                np.arange(n_cells)[None, None, :, None]
                - 1
                + rng.uniform(0, 1, (k, n_cells, n_cells, 1)),
            ],
            axis=-1,
        )
        * cell
    )
    pixel = np.arange(tile) + 0.5
    own = (pixel // cell).astype(int) + 1
    nearest = np.full((k, tile, tile), np.inf)
    second = np.full((k, tile, tile), np.inf)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            seed = seeds[:, own + di][:, :, own + dj]
            dist = np.hypot(
                seed[..., 0] - pixel[None, :, None], seed[..., 1] - pixel[None, None, :]
            )
            second = np.minimum(second, np.maximum(nearest, dist))
            nearest = np.minimum(nearest, dist)
    dist = np.stack([nearest, second], axis=-1)
    membrane = np.exp(-(((dist[..., 1] - dist[..., 0]) / (1.1 * scale)) ** 2))
    region = _smooth_noise(rng, (k, tile, tile), (7 * scale, 7 * scale))
    ranks = region.reshape(k, -1).argsort(axis=1).argsort(axis=1)
    region = ((ranks + 0.5) / ranks.shape[1]).reshape(k, tile, tile)
    grain = _smooth_noise(rng, (k, tile, tile), (0.6 * scale, 0.6 * scale))
    bank = np.stack([fibre, membrane, region, grain]).astype(np.float32)
    return bank, angles


def _crop(bank, rng, n: int, size: int):
    """Random crops of the bank's tiles; return the channels and each crop's tile.

    Each crop is a ``size`` x ``size`` window at a random offset of a random tile,
    gathered for all channels with one fancy index of a sliding-window view.
    """
    k, tile = bank.shape[1], bank.shape[2]
    idx = rng.integers(0, k, n)
    oy, ox = rng.integers(0, tile - size + 1, (2, n))
    windows = np.lib.stride_tricks.sliding_window_view(bank, (size, size), (2, 3))
    return list(windows[:, idx, oy, ox]), idx


def _layout(rng, n_patients, per_patient, positive_fraction):
    """Place each patient's patches on a slide grid and label tumour blobs.

    Returns per patch: patient index, grid row and column, tumour content (0..1,
    above 0.5 for the patient's IDC patches) and whether the patch is at the tissue
    edge.
    """
    cols = int(np.ceil(np.sqrt(per_patient * 1.6)))
    rows = int(np.ceil(per_patient * 1.6 / cols))
    # Each patient's IDC fraction: Beta around positive_fraction (mean kept).
    concentration = 6.0
    if 0 < positive_fraction < 1:
        fractions = rng.beta(
            positive_fraction * concentration,
            (1 - positive_fraction) * concentration,
            n_patients,
        )
    else:
        fractions = np.full(n_patients, positive_fraction)
    yy, xx = np.mgrid[0:rows, 0:cols]
    radius = np.hypot((yy - rows / 2) / rows, (xx - cols / 2) / cols)
    out = {"patient": [], "row": [], "col": [], "tumour": [], "edge": []}
    for p in range(n_patients):
        tissue_score = _smooth_noise(rng, (rows, cols), (1.5, 1.5)) * 0.35 - radius * 4
        chosen = np.argsort(-tissue_score, axis=None, kind="stable")[:per_patient]
        chosen.sort()
        tissue = np.zeros(rows * cols, bool)
        tissue[chosen] = True
        tissue = tissue.reshape(rows, cols)
        padded = np.pad(tissue, 1)
        edge = ~(
            padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
        # Tumour: a smooth random field whose top cells become the IDC blobs.
        field = _smooth_noise(rng, (rows, cols), (2.0, 2.0)).ravel()[chosen]
        n_pos = int(round(fractions[p] * per_patient))
        order = np.argsort(-field, kind="stable")
        tumour = np.zeros(per_patient)
        if n_pos > 0:
            thr = field[order[n_pos - 1]]
            below = field[order[n_pos]] if n_pos < per_patient else thr - 1
            cut = (thr + below) / 2
            spread = max(field.std(), 1e-6) * 0.6
            tumour = 1 / (1 + np.exp(-(field - cut) / spread * 2.2))
            tumour[order[:n_pos]] = np.maximum(tumour[order[:n_pos]], 0.5)
            tumour[order[n_pos:]] = np.minimum(tumour[order[n_pos:]], 0.499)
        r, c = np.divmod(chosen, cols)
        out["patient"].append(np.full(per_patient, p))
        out["row"].append(r)
        out["col"].append(c)
        out["tumour"].append(tumour)
        out["edge"].append(edge.ravel()[chosen])
    return {key: np.concatenate(val) for key, val in out.items()}


def _patient_params(rng, n_patients: int):
    """Per-patient stain colours and intensities, nucleus size and tissue habits."""
    h_od = H_OD + rng.normal(0, 0.1, (n_patients, 3))
    e_od = E_OD + rng.normal(0, 0.11, (n_patients, 3))
    h_od = np.abs(h_od) / np.linalg.norm(h_od, axis=1, keepdims=True)
    e_od = np.abs(e_od) / np.linalg.norm(e_od, axis=1, keepdims=True)
    return {
        "h_od": h_od,
        "e_od": e_od,
        "h_gain": rng.lognormal(0, 0.33, n_patients),
        "e_gain": rng.lognormal(0, 0.36, n_patients),
        "background": 255
        - rng.uniform(4, 22, (n_patients, 1)) * rng.uniform(0.6, 1.0, (n_patients, 3)),
        "nucleus_size": rng.lognormal(0, 0.12, n_patients),
        "pleomorphism": rng.uniform(0.12, 0.32, n_patients),
        "fat": rng.uniform(0.1, 0.55, n_patients),
        "lymph_rate": rng.uniform(0.05, 0.4, n_patients),
        "cellularity": rng.lognormal(0, 0.2, n_patients),
    }


def _patch_params(rng, layout, patients, scale: float):
    """Draw what each patch holds: fat, glass, nucleus counts, ducts, label noise."""
    n = len(layout["patient"])
    pid = layout["patient"]
    tumour = layout["tumour"]
    is_idc = tumour >= 0.5
    # Tumour cells of IDC patches; a few atypical cells at the blob's border.
    tumour_cells = np.where(is_idc, 0.2 + 0.8 * tumour, np.maximum(tumour - 0.3, 0))
    fat_mean = patients["fat"][pid] * np.where(is_idc, 0.55, 1.0)
    fat = np.clip(rng.beta(1.2, 1.8, n) * fat_mean * 2, 0, 0.95)
    glass = np.where(layout["edge"], rng.uniform(0.0, 0.6, n), 0.0)
    glass *= rng.random(n) < 0.6
    lymph_rich = rng.random(n) < patients["lymph_rate"][pid]
    area = scale**2
    duct = (~is_idc) & (rng.random(n) < 0.12) & (fat < 0.5)
    return {
        "label": np.where(rng.random(n) < LABEL_NOISE, ~is_idc, is_idc).astype(
            np.int64
        ),
        "tumour_cells": tumour_cells,
        "fat": fat,
        "glass": glass,
        "duct": duct,
        "n_tumour": rng.poisson(
            tumour_cells * 34 * area * patients["cellularity"][pid] * (1 - fat * 0.8)
        ),
        "n_fibro": rng.poisson(5 * area * (1 - fat), n),
        "n_lymph": rng.poisson(np.where(lymph_rich, 26, 1.5) * area),
        "n_duct": np.where(duct, rng.integers(9, 16, n), 0),
    }


def _ellipses(a, ratio, angle, irregular, half: int) -> np.ndarray:
    """Soft-edged nuclei, one per row of the arguments, in (2 * half + 1)^2 windows.

    Each is an ellipse of semi-axes ``a`` and ``a * ratio`` whose border is bent by
    its 2nd and 3rd angular harmonics (``irregular`` gives their amplitudes), so
    that large ``irregular`` makes lobed, pleomorphic outlines.
    """
    steps = np.arange(-half, half + 1, dtype=np.float64)
    dy, dx = steps[None, :, None], steps[None, None, :]
    a = a[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = (dx * cos + dy * sin) / a
    v = (dy * cos - dx * sin) / (a * ratio[:, None, None])
    r2 = u * u + v * v + 1e-9
    rho = np.sqrt(r2)
    # cos and sin of 2t and 3t for the polar angle t of (u, v).
    c2, s2 = (u * u - v * v) / r2, 2 * u * v / r2
    c3 = (u * u - 3 * v * v) * u / (r2 * rho)
    s3 = (3 * u * u - v * v) * v / (r2 * rho)
    border = 1 + irregular[:, 0, None, None] * (c2 + 0.5 * s2)
    border += irregular[:, 1, None, None] * 0.7 * (c3 + s3)
    return np.clip((border - rho) * (a + 1) / 1.3 + 0.5, 0, 1).astype(np.float32)


def _make_stamps(rng, scale: float):
    """Libraries of pre-drawn nuclei, each sorted by the key used to pick from it.

    Returns ``{kind: (stamps, key, half)}``: tumour nuclei (large, pleomorphic; key
    is size), fibroblasts (elongated; key is angle), lymphocytes and duct epithelium
    (small, regular; random picks).
    """
    big, small = int(np.ceil(6 * scale)), int(np.ceil(4.2 * scale))

    def library(half, a, ratio, angle, irregular, key):
        a = np.clip(a * scale, 0.6, half / 1.35)
        stamps = _ellipses(a, ratio, angle, irregular, half)
        key = a if key == "size" else angle
        order = np.argsort(key, kind="stable")
        return stamps[order], key[order], half

    n = 1024
    return {
        "tumour": library(
            big,
            2.9 * rng.lognormal(0, 0.35, n),
            1 / rng.uniform(1.0, 1.6, n),
            rng.uniform(0, np.pi, n),
            rng.uniform(0, [0.28, 0.22], (n, 2)),
            "size",
        ),
        "fibro": library(
            small,
            rng.uniform(2.6, 4.0, 256),
            1 / rng.uniform(2.6, 4.0, 256),
            rng.uniform(0, np.pi, 256),
            rng.uniform(0, 0.06, (256, 2)),
            "angle",
        ),
        "lymph": library(
            small,
            rng.uniform(1.4, 2.0, 128),
            1 / rng.uniform(1.0, 1.15, 128),
            rng.uniform(0, np.pi, 128),
            rng.uniform(0, 0.05, (128, 2)),
            "size",
        ),
        "duct": library(
            small,
            rng.uniform(1.8, 2.4, 256),
            1 / rng.uniform(1.1, 1.4, 256),
            rng.uniform(0, np.pi, 256),
            rng.uniform(0, 0.08, (256, 2)),
            "size",
        ),
    }


def _pick(rng, key: np.ndarray, wanted: np.ndarray, spread: int) -> np.ndarray:
    """Indices of library stamps whose key is near ``wanted``, with random jitter."""
    nearest = np.searchsorted(key, wanted)
    jitter = rng.integers(-spread, spread + 1, len(wanted))
    return np.clip(nearest + jitter, 0, len(key) - 1)


def _place_nuclei(rng, params, patients, pid, fibre_angle, ring, stamps, size, scale):
    """Choose every nucleus of a batch.

    Returns one ``(kind, patch, centre, stamp, darkness)`` per kind of nucleus,
    with arrays over its nuclei: the patch index, the (row, col) centre, the index of
    the library stamp drawn and the haematoxylin darkness.
    """
    n = len(pid)
    h_gain = patients["h_gain"][pid]
    hubs = rng.uniform(0, size, (n, 3, 2))

    def clustered(patch, spread, share):
        # Nuclei gather around three hubs per patch; a share is scattered evenly.
        m = len(patch)
        yx = hubs[patch, rng.integers(0, 3, m)]
        yx += rng.normal(0, spread * scale, (m, 2))
        scattered = rng.random(m) < share
        yx[scattered] = rng.uniform(0, size, (int(scattered.sum()), 2))
        return yx

    def around_lumen(patch):
        theta = rng.uniform(0, 2 * np.pi, len(patch))
        radius = ring[patch, 2:] * rng.normal(1.0, 0.06, (len(patch), 1))
        return ring[patch, :2] + radius * np.column_stack(
            [np.sin(theta), np.cos(theta)]
        )

    def tumour_stamps(patch):
        wanted = (
            2.9
            * scale
            * patients["nucleus_size"][pid][patch]
            * rng.lognormal(0, patients["pleomorphism"][pid][patch])
        )
        return _pick(rng, stamps["tumour"][1], wanted, 24)

    def fibroblast_stamps(patch):
        along = np.mod(fibre_angle[patch] + rng.normal(0, 0.15, len(patch)), np.pi)
        return _pick(rng, stamps["fibro"][1], along, 2)

    def any_stamp(kind):
        return lambda patch: rng.integers(0, len(stamps[kind][1]), len(patch))

    kinds = (
        # kind, count per patch, centres, stamps, darkness range
        (
            "tumour",
            "n_tumour",
            lambda p: clustered(p, 9, 0.35),
            tumour_stamps,
            (0.95, 1.45),
        ),
        (
            "fibro",
            "n_fibro",
            lambda p: rng.uniform(0, size, (len(p), 2)),
            fibroblast_stamps,
            (0.85, 1.2),
        ),
        (
            "lymph",
            "n_lymph",
            lambda p: clustered(p, 6, 0.3),
            any_stamp("lymph"),
            (1.35, 1.75),
        ),
        # Normal ducts: one ring of small regular nuclei around a lumen.
        ("duct", "n_duct", around_lumen, any_stamp("duct"), (1.0, 1.3)),
    )
    nuclei = []
    for kind, count, centres, pick, (low, high) in kinds:
        patch = np.repeat(np.arange(n), params[count])
        dark = rng.uniform(low, high, len(patch)) * h_gain[patch]
        nuclei.append((kind, patch, centres(patch), pick(patch), dark))
    return nuclei


def _stamp(nuclei, stamps, n: int, size: int) -> np.ndarray:
    """Add all nuclei of a batch into an (n, size, size) density with one bincount.

    Nuclei centred up to a window's half-width outside the patch still reach into
    it, so the canvas is padded by twice the largest half-width.
    """
    pad = 2 * max(half for _, _, half in stamps.values())
    width = size + 2 * pad
    placed = []
    for kind, patch, yx, pick, dark in nuclei:
        iy = np.floor(yx[:, 0]).astype(np.int64)
        ix = np.floor(yx[:, 1]).astype(np.int64)
        inside = (iy >= -pad // 2) & (iy < size + pad // 2)
        inside &= (ix >= -pad // 2) & (ix < size + pad // 2)
        base = patch[inside] * (width * width) + (iy[inside] + pad) * width
        base += ix[inside] + pad
        placed.append((stamps[kind], base, pick[inside], dark[inside]))
    total = sum(len(base) * lib[0][0].size for lib, base, _, _ in placed)
    # One index and one weight array for all nuclei, filled in place: no copies.
    index = np.empty(total, dtype=np.intp)
    weight = np.empty(total, dtype=np.float64)
    start = 0
    for (library, _, half), base, pick, dark in placed:
        stop = start + len(base) * library[0].size
        window = np.arange(-half, half + 1)
        offsets = window[:, None] * width + window[None, :]
        np.add(
            base[:, None, None],
            offsets[None],
            out=index[start:stop].reshape(len(base), *offsets.shape),
        )
        np.multiply(
            library[pick],
            dark[:, None, None],
            out=weight[start:stop].reshape(len(base), *offsets.shape),
        )
        start = stop
    canvas = np.bincount(index, weights=weight, minlength=n * width * width)
    canvas = canvas.reshape(n, width, width)
    return canvas[:, pad : pad + size, pad : pad + size].astype(np.float32)


def _ramp(x: np.ndarray, width: float) -> np.ndarray:
    """A soft step from 0 (x <= -width/2) to 1 (x >= width/2), in place on ``x``."""
    x *= 1 / width
    x += 0.5
    return np.clip(x, 0, 1, out=x)


def _render(rng, params, patients, pid, bank, angles, stamps, size, scale):
    """Paint one batch of patches; return them as (n, size, size, 3) uint8."""
    n = len(pid)
    (fibre, membrane, region, grain), tile = _crop(bank, rng, n, size)
    angle = angles[tile]
    fat_mask = _ramp(params["fat"][:, None, None].astype(np.float32) - region, 0.08)
    # Empty tissue: fat and glass (slide background, at the tissue's edge) and lumens.
    empty = fat_mask.copy()
    edge = np.flatnonzero(params["glass"] > 0)
    if len(edge):
        glass = _ramp(
            region[edge] - (1 - params["glass"][edge, None, None].astype(np.float32)),
            0.08,
        )
        empty[edge] = np.maximum(empty[edge], glass)
        fat_mask[edge] *= 1 - glass
    ring = np.column_stack(
        [
            rng.uniform(0.3, 0.7, (n, 2)) * size,
            rng.uniform(7, 13, (n, 2)) * scale,
        ]
    )
    ducts = np.flatnonzero(params["duct"])
    if len(ducts):
        steps = np.arange(size, dtype=np.float32)
        r = ring[ducts, :, None, None].astype(np.float32)
        lumen = ((steps[None, :, None] - r[:, 0]) / (0.7 * r[:, 2])) ** 2 + (
            (steps[None, None, :] - r[:, 1]) / (0.7 * r[:, 3])
        ) ** 2
        empty[ducts] = np.maximum(empty[ducts], _ramp(1 - lumen, 0.3))
    tissue = np.subtract(1, empty, out=empty)
    nuclei = _place_nuclei(rng, params, patients, pid, angle, ring, stamps, size, scale)
    density = _stamp(nuclei, stamps, n, size)
    tumour = params["tumour_cells"][:, None, None].astype(np.float32)
    e_gain = patients["e_gain"][pid][:, None, None].astype(np.float32)
    h_gain = patients["h_gain"][pid][:, None, None].astype(np.float32)
    # Eosin: fibrous stroma, thinned where tumour cells crowd it, and fat membranes.
    eosin = fibre * 0.55
    eosin += 0.45
    eosin *= (1 - 0.3 * tumour) * tissue
    eosin += 0.85 * membrane * fat_mask
    eosin *= 0.75 * e_gain
    # Haematoxylin: nuclei with chromatin grain, and the faint purple cytoplasm of
    # tumour cells.
    grain *= 0.12
    grain += 0.8
    haem = np.minimum(density, 1.6, out=density)
    haem *= grain
    haem *= tissue
    haem += (0.12 * tumour * h_gain) * tissue
    # Beer-Lambert, one channel at a time (contiguous arrays are fast):
    # I = background * exp(-(haem * h_od + eosin * e_od)), plus a little grain.
    grain -= 0.8
    grain *= 20.0
    grain += 0.5
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    log_background = np.log(patients["background"][pid])
    channel = np.empty_like(haem)
    scratch = np.empty_like(haem)
    for c in range(3):
        np.multiply(haem, _per_patch(-patients["h_od"][pid, c]), out=channel)
        np.multiply(eosin, _per_patch(-patients["e_od"][pid, c]), out=scratch)
        channel += scratch
        channel += _per_patch(log_background[:, c])
        np.exp(channel, out=channel)
        channel += grain
        out[..., c] = np.clip(channel, 0, 255, out=channel)
    return out


def _per_patch(values) -> np.ndarray:
    """Per-patch values as float32 of shape (n, 1, 1), to broadcast over pixels."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


@validate_params(
    {
        "n_patients": [Interval(Integral, 1, None, closed="left")],
        "patches_per_patient": [Interval(Integral, 1, None, closed="left")],
        "positive_fraction": [Interval(Real, 0, 1, closed="both")],
        "patch_size": [Interval(Integral, 8, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_idc_patches(
    n_patients: int = 20,
    patches_per_patient: int = 200,
    positive_fraction: float = 0.28,
    patch_size: int = 50,
    random_state=None,
) -> Bunch:
    """Generate a synthetic IDC-like dataset of H&E patches, grouped by patient.

    Haematoxylin-blue nuclei on eosin-pink stroma, white fat and glass. IDC patches
    are crowded with large, irregular, dark nuclei; non-IDC patches hold sparse
    nuclei in fibrous stroma, fat, normal ducts and lymphocyte clusters. Each patient
    is a slide: its patches tile a grid, and IDC forms spatially coherent blobs on
    it. Patients differ in stain colour and intensity, nucleus size and IDC fraction,
    so patient-grouped cross-validation matters; 3% of labels are flipped.

    Parameters
    ----------
    n_patients : int, default=20
        Number of patients (slides).
    patches_per_patient : int, default=200
        Number of tissue patches per patient.
    positive_fraction : float, default=0.28
        Mean fraction of IDC patches (the real archive's is 0.284). Each patient's
        fraction is drawn from a Beta distribution around it.
    patch_size : int, default=50
        Height and width of the patches in pixels (the archive's is 50); nuclei and
        textures scale with it.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        The same fields as :func:`load_idc`:

        data : ndarray of shape (n, patch_size, patch_size, 3), uint8
            The patches, RGB, channels last.
        target : ndarray of shape (n,), int64
            1 for IDC, 0 for non-IDC (after label noise).
        groups : ndarray of shape (n,), object
            Patient ids ``"synth00"``, ``"synth01"``, ...
        frame : pandas.DataFrame
            Columns ``patient``, ``x``, ``y`` (top-left of the patch on the
            patient's 50-pixel slide grid, ``1 + 50 * k`` as in the archive),
            ``target``, ``path`` (empty), ``height``, ``width``.
        skipped : list
            Empty.
        DESCR : str
            Description of the data.

    See Also
    --------
    load_idc : The real IDC archive, as the same Bunch.

    Examples
    --------
    >>> from idc_sklearn import make_idc_patches
    >>> idc = make_idc_patches(n_patients=4, patches_per_patient=30, patch_size=16,
    ...                        random_state=0)
    >>> idc.data.shape, idc.data.dtype
    ((120, 16, 16, 3), dtype('uint8'))
    >>> sorted(set(idc.groups))
    ['synth00', 'synth01', 'synth02', 'synth03']
    >>> list(idc.frame.columns)
    ['patient', 'x', 'y', 'target', 'path', 'height', 'width']
    """
    n_patients, per_patient, size = (
        int(n_patients),
        int(patches_per_patient),
        int(patch_size),
    )
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    layout_rng, bank_rng, param_rng, render_rng = np.random.default_rng(seed).spawn(4)
    scale = size / 50
    bank, angles = _make_bank(bank_rng, 2 * size, scale)
    stamps = _make_stamps(bank_rng, scale)
    layout = _layout(layout_rng, n_patients, per_patient, float(positive_fraction))
    patients = _patient_params(param_rng, n_patients)
    params = _patch_params(param_rng, layout, patients, scale)
    n = n_patients * per_patient
    data = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, _BATCH):
        stop = min(start + _BATCH, n)
        batch = {key: value[start:stop] for key, value in params.items()}
        data[start:stop] = _render(
            render_rng,
            batch,
            patients,
            layout["patient"][start:stop],
            bank,
            angles,
            stamps,
            size,
            scale,
        )
    width = max(2, len(str(n_patients - 1)))
    names = np.array([f"synth{p:0{width}d}" for p in range(n_patients)], dtype=object)
    groups = names[layout["patient"]]
    target = params["label"]
    frame = make_frame(
        patient=groups,
        target=target,
        x=GRID_ORIGIN + GRID_STEP * layout["col"].astype(np.int64),
        y=GRID_ORIGIN + GRID_STEP * layout["row"].astype(np.int64),
        path=[""] * n,
        height=np.full(n, size),
        width=np.full(n, size),
    )
    descr = (
        "Synthetic IDC-like H&E patches (make_idc_patches)\n"
        "--------------------------------------------------\n\n"
        f"{n} patches of {size}x{size} pixels from {n_patients} synthetic patients, "
        f"{int(target.sum())} labelled IDC and {n - int(target.sum())} non-IDC "
        f"({LABEL_NOISE:.0%} of labels flipped), random_state={random_state!r}.\n"
        "Painted with a Beer-Lambert H&E stain model, with per-patient stain "
        "colours and IDC blobs on each patient's slide grid, to stand in for the "
        "IDC archive of Janowczyk & Madabhushi 2016 (J Pathol Inform 7:29) and "
        "Cruz-Roa et al. 2014 (Proc. SPIE 9041:904103) when it is absent.\n"
    )
    return Bunch(
        data=data,
        target=target,
        groups=groups,
        frame=frame,
        skipped=[],
        DESCR=descr,
    )
