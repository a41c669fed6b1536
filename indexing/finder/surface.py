"""The surface a photo's items lie on, learnt from its border: colour, texture and uneven light."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.finder.colour import kmeans

BORDER = 0.05  # the border ring, as a share of the short side, from which the surface is learnt
CLUSTERS = 4  # surface modes: a plain sheet needs one, wood grain, weaves or a cluttered floor more
# Per-feature noise floors for (L, a, b, texture): a difference below these is never an edge.
FLOORS = np.array([4.0, 3.0, 3.0, 2.5], np.float32)


def work_copy(photo: Image.Image, side: int) -> np.ndarray:
    """The photo reduced to this long side, as float RGB."""
    scale = side / max(photo.size)
    size = (max(8, round(photo.width * scale)), max(8, round(photo.height * scale)))
    return np.asarray(photo.resize(size, Image.Resampling.BOX, reducing_gap=2.0), np.float32)


def border_ring(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    width = max(2, round(BORDER * min(h, w)))
    ring = np.ones((h, w), bool)
    ring[width:-width, width:-width] = False
    return ring


def smooth_colour(lab: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    return ndimage.gaussian_filter(lab, (sigma, sigma, 0))


def texture(light: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Local texture energy: the spread of lightness around each pixel."""
    mean = ndimage.gaussian_filter(light, sigma)
    return np.sqrt(np.maximum(ndimage.gaussian_filter(light * light, sigma) - mean * mean, 0))


def features(lab: np.ndarray) -> np.ndarray:
    """Per pixel: smoothed Lab colour and texture energy."""
    return np.concatenate([smooth_colour(lab), texture(lab[..., 0])[..., None]], -1)


def trend_basis(shape: tuple[int, int], grid: tuple[int, int], origin: tuple[float, float] = (0.0, 0.0),
                scale: float = 1.0) -> np.ndarray:
    """Quadratic terms of each pixel's place in the photo.

    shape: the pixels' grid; grid: the working grid's (h, w); a finer window of the photo starts at origin
    (y, x, in working pixels) and has scale pixels per working pixel.
    """
    ys = origin[0] + (np.arange(shape[0], dtype=np.float32) + 0.5) / scale - 0.5
    xs = origin[1] + (np.arange(shape[1], dtype=np.float32) + 0.5) / scale - 0.5
    y, x = np.meshgrid(ys / grid[0] - 0.5, xs / grid[1] - 0.5, indexing="ij")
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], -1)


@dataclass(frozen=True)
class Surface:
    """What the border says about the surface: a smooth light trend per colour channel, then the modes
    (colour and texture) of what remains, each with its own spread."""

    grid: tuple[int, int]  # the working copy's (h, w), in which the trend was fitted
    trend: np.ndarray  # (3, 6): quadratic coefficients for L, a, b
    centres: np.ndarray  # (modes, 4)
    spreads: np.ndarray  # (modes, 4)
    edge: float = 0.0  # a distance beyond which a pixel is not surface: above what the border itself shows

    def detrend(self, feats: np.ndarray, origin: tuple[float, float] = (0.0, 0.0), scale: float = 1.0
                ) -> np.ndarray:
        basis = trend_basis(feats.shape[:2], self.grid, origin, scale)
        out = feats.copy()
        for channel in range(3):
            out[..., channel] += self.trend[channel, 0] - basis @ self.trend[channel]
        return out

    def distance(self, feats: np.ndarray, origin: tuple[float, float] = (0.0, 0.0), scale: float = 1.0
                 ) -> np.ndarray:
        """How many noise-widths each pixel lies from the nearest mode of the surface (see detrend for
        origin and scale: a finer window of the photo)."""
        flat = self.detrend(feats, origin, scale).reshape(-1, feats.shape[-1])
        return nearest_mode(flat, self.centres, self.spreads).reshape(feats.shape[:2])


def nearest_mode(points: np.ndarray, centres: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    best = np.full(len(points), np.inf, np.float32)
    for centre, spread in zip(centres, spreads, strict=True):
        best = np.minimum(best, np.sqrt((((points - centre) / spread) ** 2).mean(-1)))
    return best


def fit_surface(feats: np.ndarray, ring: np.ndarray) -> Surface:
    # Every other border pixel: neighbours are near copies after smoothing, and half make the same fit
    # in half the time (the finder runs before every album).
    on_border = trend_basis(ring.shape, ring.shape)[ring][::2]
    border = feats[ring][::2]
    trend = np.zeros((3, on_border.shape[-1]), np.float32)
    samples = border.copy()
    for channel in range(3):
        values = border[:, channel]
        keep = np.ones(len(values), bool)
        for _ in range(2):  # an item touching the border must not bend the fit: refit without outliers
            trend[channel], *_ = np.linalg.lstsq(on_border[keep], values[keep], rcond=None)
            residual = np.abs(values - on_border @ trend[channel])
            keep = residual <= np.percentile(residual, 80) + 1e-3
        samples[:, channel] += trend[channel, 0] - on_border @ trend[channel]
    centres, labels = kmeans(samples, CLUSTERS)
    modes = [j for j in range(CLUSTERS) if (labels == j).sum() >= 0.03 * len(samples)]
    spreads = [np.maximum(samples[labels == j].std(0), FLOORS) for j in modes]
    centres, spreads = centres[modes], np.array(spreads, np.float32)
    # The border's own outliers (a shadow, a seam) set how far a pixel must lie to count as an item.
    edge = max(2.5, float(np.percentile(nearest_mode(samples, centres, spreads), 95)) * 1.15)
    return Surface(ring.shape, trend, centres, spreads, edge)
