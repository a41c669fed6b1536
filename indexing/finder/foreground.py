"""A garment that fills the frame: told from the bed, floor or wall around it by the colours of each, learnt from
the photo's centre and border and relearnt from what each then claims (GrabCut's idea, without its graph cut)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from indexing.finder.contrast import quantise

COLOURS = 16  # colour bins, learnt per photo
CENTRE = 0.2  # the garment's seed: an ellipse around the centre, with this share of each side as its half-axis
ROUNDS = 4
SMOOTH = 1.5  # pixels over which a pixel's odds are averaged with its neighbours' (what a graph cut would do)
LEAST, MOST = 0.08, 0.97  # the garment's share of the photo
# The centre's colours and the border's may share at most this much (Bhattacharyya coefficient of their
# histograms, light evened out first): above, the centre is the border's (a bare bed) or the border the centre's
# (a close-up of fabric). Bare surfaces (52 drawn): 0.66 and up but one in twenty; garments at home (225 tuning
# photos): 0.54 and down but one in twenty.
SHARED = 0.6


def centre_seed(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    return ((ys + 0.5) / h - 0.5) ** 2 + ((xs + 0.5) / w - 0.5) ** 2 <= CENTRE ** 2


def histogram(bins: np.ndarray, where: np.ndarray) -> np.ndarray:
    counts = np.bincount(bins[where], minlength=COLOURS).astype(np.float32) + 0.5
    return counts / counts.sum()


def foreground(lab: np.ndarray, ring: np.ndarray) -> np.ndarray | None:
    """The mask of the garment that the photo was taken of, or None where there is none to tell apart. lab: the
    photo's colours with the light's drift across it taken out (Surface.detrend): else a bare sheet's vignetting
    reads as a lighter thing in the middle."""
    bins = quantise(lab, COLOURS)
    seed = centre_seed(bins.shape)
    garment, surface = histogram(bins, seed), histogram(bins, ring)
    if float(np.sqrt(garment * surface).sum()) > SHARED:
        return None
    for _ in range(ROUNDS):
        odds = ndimage.gaussian_filter((garment / (garment + surface))[bins], SMOOTH)
        claimed = odds > 0.5
        if not claimed.any() or claimed.all():
            return None
        garment, surface = histogram(bins, claimed), histogram(bins, ~claimed)
    mask = ndimage.binary_fill_holes(ndimage.binary_opening(claimed, iterations=1))
    labels, _ = ndimage.label(mask)
    held = np.unique(labels[seed & mask])
    mask = np.isin(labels, held[held > 0])
    return mask if LEAST <= mask.mean() <= MOST else None
