"""Event shapes and noise of the synthetic benchmark generator (docs/guides/synthetic.md).

Every shape is painted inside its own bounding box (never a full-cube temporary per
event), so the cost of an event is its size, not the cube's. All randomness comes
from the one ``numpy.random.Generator`` the caller passes, drawn in a fixed order,
so a seed fixes every byte.

Scaling to other sizes (paper: 2392 weeks x 200 x 200 pixels):

- spatial sizes scale with ``s = min(H, W) / 200`` (temporal sizes do not) and never
  drop below one pixel; an explicit ``s`` (``event_scale``, e.g. 1.0 for the paper's
  sizes) makes the grid a *window* of a larger field instead: events are painted on the
  grid padded by the largest half-size and cropped, so shapes cut by the window's edge
  keep their share of the coverage;
- event counts scale with the volume ``T*H*W / (2392*200*200)`` times a per-family
  *area compensation* ``E[paper footprint] / E[scaled footprint]``, so the voxel
  coverage of every family (e.g. class 1 ~1.1 %) stays the paper's at any grid size
  instead of shrinking with ``s**2``;
- fractional counts are rounded stochastically (``floor + Bernoulli(frac)``), which
  keeps the expected coverage exact on tiny cubes.

Counts at paper size are the published benchmark's. The size ranges it leaves open
(Gaussian axes, onset footprints) are calibrated so that the coverages match the
published ones (extremes: class 1 ~1.1 %, halo classes ~0.4 % each; random anomaly
sets A/B/C ~1.9 / 0.45 / 1.8 %); see ``tests/test_generator.py`` for the check.

``PublishedSet`` / ``paint_published`` (regime "published") instead draw the published
generator's exp-1 families with its size conventions (see ``PublishedSet``), centred in the
grid, counts scaled with the volume only; ``red_noise_3d`` is its noise red in time and space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PAPER_T, PAPER_HW = 52 * 46, 200
OFFSETS_26 = np.array(
    [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)],
    dtype=np.int64,
)
_QUANTILES = (np.arange(64) + 0.5) / 64  # deterministic quadrature for expected footprints
_PIXEL_CHUNK = 4096  # pixels per red-noise FFT chunk (bounds the complex temporary)
_TIME_CHUNK = 64  # weeks per chunk for float64-only samplers (bounds the temporary)


@dataclass(frozen=True)
class ShapeSet:
    """Event counts at paper size and the size ranges of one set of shape families.

    Half-sizes are in voxels (an extent is ``2*h + 1``); Gaussian blobs are ellipsoids
    (a level set of a 3D Gaussian) with semi-axes drawn uniformly in the given ranges.
    """

    name: str
    cubes: int = 0
    walks: int = 0
    local: int = 0
    gaussian: int = 0
    onset: int = 0
    cube_half_px: tuple[int, int] = (1, 17)
    cube_half_weeks: tuple[int, int] = (1, 12)
    walk_length: int = 125
    local_weeks: tuple[int, int] = (2, 16)
    gauss_axis_px: tuple[float, float] = (1.0, 6.0)
    gauss_axis_weeks: tuple[float, float] = (1.0, 6.0)
    onset_half_px: tuple[int, int] = (1, 5)
    onset_fraction: float = 0.02


EXTREMES = ShapeSet(
    "extremes",
    cubes=200,
    walks=1100,
    local=2600,
    gaussian=340,
    onset=25,
    cube_half_px=(1, 17),
    cube_half_weeks=(0, 6),
    gauss_axis_px=(2.0, 12.0),
    gauss_axis_weeks=(3.0, 12.0),
    onset_half_px=(1, 4),
)
ANOMALY_SETS = (
    ShapeSet(
        "A",
        cubes=320,
        walks=3000,
        local=4000,
        gaussian=300,
        cube_half_px=(1, 16),
        gauss_axis_px=(1.0, 4.0),
        gauss_axis_weeks=(1.0, 3.0),
    ),
    ShapeSet(
        "B",
        onset=18,
        walks=1800,
        local=160,
        gaussian=350,
        gauss_axis_px=(2.0, 10.0),
        gauss_axis_weeks=(1.0, 6.0),
        onset_half_px=(4, 14),
    ),
    ShapeSet(
        "C",
        cubes=300,
        walks=2000,
        local=2800,
        gaussian=290,
        gauss_axis_px=(1.0, 4.0),
        gauss_axis_weeks=(1.0, 3.0),
    ),
)


@dataclass(frozen=True)
class Grid:
    """Cube size and its scale factors relative to the paper's cube."""

    T: int
    H: int
    W: int
    scale: float | None = None  # None: min(H, W) / 200 (the paper's structure shrunk to the grid)

    @property
    def space_scale(self) -> float:
        return self.scale if self.scale is not None else min(self.H, self.W) / PAPER_HW

    def window_pad(self) -> int:
        """Pixels added on each side when painting a window (0 for a whole, shrunk field)."""
        if self.scale is None:
            return 0
        widest = max(
            max(s.cube_half_px[1], s.onset_half_px[1], math.ceil(s.gauss_axis_px[1])) for s in (EXTREMES, *ANOMALY_SETS)
        )
        return int(np.rint(widest * self.scale))

    @property
    def volume_scale(self) -> float:
        return self.T * self.H * self.W / (PAPER_T * PAPER_HW * PAPER_HW)


# ----------------------------------------------------------------------------------
# counts
# ----------------------------------------------------------------------------------


def _scaled_half(h: np.ndarray, s: float) -> np.ndarray:
    """Half-size in pixels at scale ``s``; 0 means a 1-pixel extent (never less)."""
    return np.maximum(np.rint(h * s), 0).astype(np.int64)


def _box_compensation(lo: int, hi: int, s: float) -> float:
    """E[paper footprint] / E[scaled footprint] of a box with half-sizes U{lo..hi} per axis."""
    h = np.arange(lo, hi + 1)
    return float((np.mean(2 * h + 1) / np.mean(2 * _scaled_half(h, s) + 1)) ** 2)


def _ellipse_compensation(lo: float, hi: float, s: float) -> float:
    """Same for an ellipse with semi-axes U[lo, hi] (footprint at least one pixel)."""
    a = lo + _QUANTILES * (hi - lo)
    paper = np.maximum(math.pi * np.outer(a, a), 1.0).mean()
    sa = np.maximum(a * s, 0.5)
    return float(paper / np.maximum(math.pi * np.outer(sa, sa), 1.0).mean())


def _draw_count(rng: np.random.Generator, expected: float) -> int:
    """Stochastic rounding: the expectation stays exact when ``expected`` < 1."""
    base = math.floor(expected)
    return base + int(rng.random() < expected - base)


def event_counts(shapes: ShapeSet, grid: Grid, density: float, rng: np.random.Generator) -> dict[str, int]:
    """Number of events per family for this grid (see the module docstring)."""
    s, vol = grid.space_scale, grid.volume_scale * density
    comp = {
        "cubes": _box_compensation(*shapes.cube_half_px, s),
        "walks": 1.0,
        "local": 1.0,
        "gaussian": _ellipse_compensation(*shapes.gauss_axis_px, s),
        "onset": _box_compensation(*shapes.onset_half_px, s),
    }
    return {k: _draw_count(rng, getattr(shapes, k) * vol * comp[k]) for k in comp}


# ----------------------------------------------------------------------------------
# painting (each in its bounding box)
# ----------------------------------------------------------------------------------


def _centres(rng: np.random.Generator, n: int, grid: Grid) -> np.ndarray:
    return np.stack([rng.integers(0, grid.T, n), rng.integers(0, grid.H, n), rng.integers(0, grid.W, n)], axis=1)


def _paint_boxes(mask: np.ndarray, centres: np.ndarray, half: np.ndarray, t_end: bool = False) -> None:
    """Set boxes ``centre +- half`` (clipped); ``t_end`` boxes run from the centre's week to the end."""
    for (t, y, x), (ht, hy, hx) in zip(centres.tolist(), half.tolist()):
        t0 = t if t_end else max(t - ht, 0)
        t1 = mask.shape[0] if t_end else t + ht + 1
        mask[t0:t1, max(y - hy, 0) : y + hy + 1, max(x - hx, 0) : x + hx + 1] = 1


def paint_cubes(mask: np.ndarray, n: int, shapes: ShapeSet, grid: Grid, rng: np.random.Generator) -> None:
    c = _centres(rng, n, grid)
    lo, hi = shapes.cube_half_px
    half = np.stack(
        [
            rng.integers(shapes.cube_half_weeks[0], shapes.cube_half_weeks[1] + 1, n),
            _scaled_half(rng.integers(lo, hi + 1, n), grid.space_scale),
            _scaled_half(rng.integers(lo, hi + 1, n), grid.space_scale),
        ],
        axis=1,
    )
    _paint_boxes(mask, c, half)


def paint_onsets(mask: np.ndarray, n: int, shapes: ShapeSet, grid: Grid, rng: np.random.Generator) -> None:
    """Boxes that start in the last ``onset_fraction`` of time and last to the end."""
    c = _centres(rng, n, grid)
    span = max(1, math.ceil(shapes.onset_fraction * grid.T))
    c[:, 0] = grid.T - 1 - rng.integers(0, span, n)
    lo, hi = shapes.onset_half_px
    half = np.stack(
        [
            np.zeros(n, np.int64),
            _scaled_half(rng.integers(lo, hi + 1, n), grid.space_scale),
            _scaled_half(rng.integers(lo, hi + 1, n), grid.space_scale),
        ],
        axis=1,
    )
    _paint_boxes(mask, c, half, t_end=True)


def paint_local(mask: np.ndarray, n: int, shapes: ShapeSet, grid: Grid, rng: np.random.Generator) -> None:
    """One pixel over a run of ``local_weeks`` weeks."""
    c = _centres(rng, n, grid)
    dur = rng.integers(shapes.local_weeks[0], shapes.local_weeks[1] + 1, n)
    for (t, y, x), d in zip(c.tolist(), dur.tolist()):
        mask[t : t + d, y, x] = 1


def paint_walks(mask: np.ndarray, n: int, shapes: ShapeSet, grid: Grid, rng: np.random.Generator) -> None:
    """Random walks of ``walk_length`` voxels, 26-neighbourhood steps, clipped at the cube's faces."""
    if n == 0:
        return
    pos = _centres(rng, n, grid)
    steps = OFFSETS_26[rng.integers(0, 26, (shapes.walk_length - 1, n))]
    upper = np.array([grid.T - 1, grid.H - 1, grid.W - 1])
    path = np.empty((shapes.walk_length, n, 3), np.int64)
    path[0] = pos
    for i in range(1, shapes.walk_length):  # vectorised over walks; clipping keeps the walk connected
        pos = np.clip(pos + steps[i - 1], 0, upper)
        path[i] = pos
    path = path.reshape(-1, 3)
    mask[path[:, 0], path[:, 1], path[:, 2]] = 1


def paint_gaussians(mask: np.ndarray, n: int, shapes: ShapeSet, grid: Grid, rng: np.random.Generator) -> None:
    """Ellipsoids (Gaussian level sets) with random semi-axes; the centre voxel is always set."""
    c = _centres(rng, n, grid)
    at = rng.uniform(*shapes.gauss_axis_weeks, n)
    ay = np.maximum(rng.uniform(*shapes.gauss_axis_px, n) * grid.space_scale, 0.5)
    ax = np.maximum(rng.uniform(*shapes.gauss_axis_px, n) * grid.space_scale, 0.5)
    for (t, y, x), a in zip(c.tolist(), np.stack([at, ay, ax], 1).tolist()):
        h = [int(v) for v in a]
        lo = [max(p - k, 0) for p, k in zip((t, y, x), h)]
        hi = [min(p + k + 1, m) for p, k, m in zip((t, y, x), h, mask.shape)]
        dt, dy, dx = (np.arange(l, u) - p for l, u, p in zip(lo, hi, (t, y, x)))
        r2 = (dt[:, None, None] / a[0]) ** 2 + (dy[None, :, None] / a[1]) ** 2 + (dx[None, None, :] / a[2]) ** 2
        box = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        box |= (r2 <= 1.0).astype(np.uint8)


PAINTERS = {
    "cubes": paint_cubes,
    "walks": paint_walks,
    "local": paint_local,
    "gaussian": paint_gaussians,
    "onset": paint_onsets,
}


def paint_set(
    mask: np.ndarray, shapes: ShapeSet, grid: Grid, density: float, rng: np.random.Generator
) -> dict[str, int]:
    """Paint every family of ``shapes`` into the uint8 ``mask`` (T, H, W); returns the counts used.

    For a window grid (explicit ``scale``) the events of the padded field are drawn and
    painted, and the window is cut out of it.
    """
    pad = grid.window_pad()
    field = grid if pad == 0 else Grid(grid.T, grid.H + 2 * pad, grid.W + 2 * pad, grid.scale)
    target = mask if pad == 0 else np.zeros((field.T, field.H, field.W), np.uint8)
    counts = event_counts(shapes, field, density, rng)
    for family, n in counts.items():
        PAINTERS[family](target, n, shapes, field, rng)
    if pad:
        mask |= target[:, pad : pad + grid.H, pad : pad + grid.W]
    return counts


# ----------------------------------------------------------------------------------
# the published generator's shape families (regime "published")
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedSet:
    """Event counts at paper size and the *maximum* extents of the published generator's exp-1 families.

    Sizes follow its conventions: a box half-size ``h`` is ``U{3..max} // 2`` and the box spans
    ``[c - h, c + h)`` (extent ``2h``); local events last ``2h`` weeks around their centre week;
    onsets start in the last ``1 - onset_start`` of the time axis and last to its end; Gaussian
    events are the voxels where a Gaussian with standard deviations ``U{7..max} // 2`` exceeds
    ``1 - max(std) / 100`` of its peak; random walks make ``walk_steps`` moves to voxels they have
    not visited (at most ``10 * walk_steps`` tries). Every event is centred inside the grid and clipped at
    its faces, as in the published generator (no window padding).
    """

    name: str
    cubes: int = 0
    walks: int = 0
    local: int = 0
    gaussian: int = 0
    onset: int = 0
    box_px: int = 35
    box_weeks: int = 25
    local_weeks: int = 17
    onset_px: int = 17
    onset_start: float = 0.98
    walk_steps: int = 125


PUBLISHED_EXTREMES = PublishedSet("extremes", cubes=200, walks=1100, local=2600, gaussian=340, onset=25)
PUBLISHED_ANOMALY_SETS = (
    PublishedSet("A", cubes=320, walks=3000, local=4000, gaussian=300),
    PublishedSet("B", onset=18, walks=1800, local=160, gaussian=350),
    PublishedSet("C", cubes=300, walks=2000, local=2800, gaussian=290),
)


def _pub_half(rng: np.random.Generator, lo: int, top: int, n: int, s: float = 1.0) -> np.ndarray:
    """Half-sizes ``U{lo..top} // 2``, spatial ones times ``s`` (at least 1)."""
    h = rng.integers(lo, top + 1, n) // 2
    return h if s == 1.0 else np.maximum(np.rint(h * s), 1).astype(np.int64)


def _pub_boxes(mask: np.ndarray, c: np.ndarray, half: np.ndarray) -> None:
    for (t, y, x), (ht, hy, hx) in zip(c.tolist(), half.tolist()):
        mask[max(t - ht, 0) : t + ht, max(y - hy, 0) : y + hy, max(x - hx, 0) : x + hx] = 1


def pub_cubes(mask: np.ndarray, n: int, ps: PublishedSet, grid: Grid, rng: np.random.Generator) -> None:
    c, s = _centres(rng, n, grid), grid.space_scale
    half = np.stack(
        [_pub_half(rng, 3, ps.box_weeks, n), _pub_half(rng, 3, ps.box_px, n, s), _pub_half(rng, 3, ps.box_px, n, s)], 1
    )
    _pub_boxes(mask, c, half)


def pub_local(mask: np.ndarray, n: int, ps: PublishedSet, grid: Grid, rng: np.random.Generator) -> None:
    c, h = _centres(rng, n, grid), _pub_half(rng, 3, ps.local_weeks, n)
    for (t, y, x), ht in zip(c.tolist(), h.tolist()):
        mask[max(t - ht, 0) : t + ht, y, x] = 1


def pub_onsets(mask: np.ndarray, n: int, ps: PublishedSet, grid: Grid, rng: np.random.Generator) -> None:
    c, s = _centres(rng, n, grid), grid.space_scale
    c[:, 0] = rng.integers(int(ps.onset_start * grid.T), grid.T, n)
    half = np.stack([np.full(n, grid.T), _pub_half(rng, 3, ps.onset_px, n, s), _pub_half(rng, 3, ps.onset_px, n, s)], 1)
    for (t, y, x), (_, hy, hx) in zip(c.tolist(), half.tolist()):
        mask[t:, max(y - hy, 0) : y + hy, max(x - hx, 0) : x + hx] = 1


def pub_gaussians(mask: np.ndarray, n: int, ps: PublishedSet, grid: Grid, rng: np.random.Generator) -> None:
    """Ellipsoids ``sum (d_i / sd_i)^2 <= -2 ln(1 - max(sd) / 100)``: the thresholded Gaussians."""
    c, s = _centres(rng, n, grid), grid.space_scale
    sd = np.stack(
        [_pub_half(rng, 7, ps.box_weeks, n), _pub_half(rng, 7, ps.box_px, n, s), _pub_half(rng, 7, ps.box_px, n, s)], 1
    )
    for centre, d in zip(c.tolist(), sd.tolist()):
        r2 = -2.0 * math.log(1.0 - max(d) / 100.0)
        reach = [int(math.sqrt(r2) * k) for k in d]
        lo = [max(p - k, 0) for p, k in zip(centre, reach)]
        hi = [min(p + k + 1, m) for p, k, m in zip(centre, reach, mask.shape)]
        dt, dy, dx = ((np.arange(a, b) - p) / k for a, b, p, k in zip(lo, hi, centre, d))
        inside = dt[:, None, None] ** 2 + dy[None, :, None] ** 2 + dx[None, None, :] ** 2 <= r2
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= inside.astype(np.uint8)


def pub_walks(mask: np.ndarray, n: int, ps: PublishedSet, grid: Grid, rng: np.random.Generator) -> None:
    """Walks to unvisited voxels of this family (26-neighbourhood), ``walk_steps`` moves, <= 10 tries each."""
    if n == 0:
        return
    seen = np.zeros(mask.shape, np.uint8)
    upper = mask.shape
    for t, y, x in _centres(rng, n, grid).tolist():
        seen[t, y, x] = 1
        moves = 0
        for dt, dy, dx in rng.integers(-1, 2, (10 * ps.walk_steps, 3)).tolist():
            nt, ny, nx = t + dt, y + dy, x + dx
            if 0 <= nt < upper[0] and 0 <= ny < upper[1] and 0 <= nx < upper[2] and not seen[nt, ny, nx]:
                seen[nt, ny, nx] = 1
                t, y, x = nt, ny, nx
                moves += 1
                if moves == ps.walk_steps:
                    break
    mask |= seen


PUB_PAINTERS = {
    "cubes": pub_cubes,
    "walks": pub_walks,
    "local": pub_local,
    "gaussian": pub_gaussians,
    "onset": pub_onsets,
}


def paint_published(
    mask: np.ndarray, ps: PublishedSet, grid: Grid, density: float, rng: np.random.Generator
) -> dict[str, int]:
    """Paint a published family set into ``mask``; counts are the paper's times the volume ratio and ``density``."""
    vol = grid.volume_scale * density
    counts = {k: _draw_count(rng, getattr(ps, k) * vol) for k in PUB_PAINTERS}
    for family, n in counts.items():
        PUB_PAINTERS[family](mask, n, ps, grid, rng)
    return counts


# ----------------------------------------------------------------------------------
# noise (float32 cubes, filled in chunks so no float64 full cube exists)
# ----------------------------------------------------------------------------------


def white_noise(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(sigma)
    return out


def laplace_noise(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    """Laplace noise with standard deviation ``sigma`` (scale sigma / sqrt 2)."""
    out = np.empty(shape, np.float32)
    scale = sigma / math.sqrt(2.0)
    for t0 in range(0, shape[0], _TIME_CHUNK):
        t1 = min(t0 + _TIME_CHUNK, shape[0])
        out[t0:t1] = rng.laplace(0.0, scale, (t1 - t0, *shape[1:]))
    return out


def red_noise(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    """Per-pixel 1/f (pink) noise along time: white noise shaped by 1/sqrt(f) in Fourier space.

    The mean (f = 0) is removed and every pixel's series is scaled to standard deviation ``sigma``.
    """
    T = shape[0]
    out = np.empty(shape, np.float32)
    flat = out.reshape(T, -1)
    freq = np.fft.rfftfreq(T).astype(np.float32)
    gain = np.zeros_like(freq)
    gain[1:] = 1.0 / np.sqrt(freq[1:])
    for p0 in range(0, flat.shape[1], _PIXEL_CHUNK):
        p1 = min(p0 + _PIXEL_CHUNK, flat.shape[1])
        spec = np.fft.rfft(rng.standard_normal((T, p1 - p0), dtype=np.float32), axis=0)
        spec *= gain[:, None]
        series = np.fft.irfft(spec, n=T, axis=0).astype(np.float32, copy=False)
        std = series.std(axis=0)
        series *= np.float32(sigma) / np.maximum(std, np.float32(1e-12))
        flat[:, p0:p1] = series
    return out


def red_noise_3d(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    """Noise red in time *and* space, as the published generator's: white noise whose Fourier amplitude
    is divided by ``max(|f_t|, 1) * max(|f_y|, 1) * max(|f_x|, 1)`` (integer frequency indices), scaled
    to standard deviation ``sigma`` over the whole cube (the mean is kept)."""
    spec = np.fft.rfftn(rng.standard_normal(shape, dtype=np.float32))
    for axis, n in enumerate(shape):
        f = np.abs(np.fft.rfftfreq(n) if axis == 2 else np.fft.fftfreq(n)) * n
        gain = (1.0 / np.maximum(np.rint(f), 1.0)).astype(np.float32)
        spec *= gain.reshape([-1 if a == axis else 1 for a in range(3)])
    out = np.fft.irfftn(spec, s=shape).astype(np.float32, copy=False)
    del spec
    out *= np.float32(sigma / max(float(out.std(dtype=np.float64)), 1e-12))
    return out


NOISES = {"red": red_noise, "laplace": laplace_noise, "white": white_noise, "red3d": red_noise_3d}
