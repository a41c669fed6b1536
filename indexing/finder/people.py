"""People in a photo: MediaPipe's BlazePose detector and landmark model give each person's box, body points and mask."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.special import expit

from indexing.finder.items import mask_box, scale_box
from indexing.finder.people_models import check_models

DETECT_SIDE = 224
LANDMARK_SIDE = 256
MASK_SIDE = 320  # a person's mask is kept over the whole photo at this long side
# A detection must score this in a user's photo: MediaPipe's own default, and its weighted suppression averages
# every detection above it (people half hidden by a busy scene score 0.5-0.7).
MIN_SCORE = 0.5
# Counting a catalogue's model shots asks for more: on catalogue packshots a shoe, a tie or a deodorant scored
# 0.51-0.68 as a person, while catalogue model shots score 0.76-0.91.
SURE = 0.7
PRESENT = 0.5  # MediaPipe's threshold for "a person is in the crop"
# A person's box follows their mask where the model is this sure. The mask's soft edge spills into whatever the
# person stands on or against (a floor, a shadow, legs guessed below a photo's edge): a box stretched over the
# spill frames the person smaller and lower than the catalogue does. The cut-out keeps the soft mask.
CORE = 0.9
OVERLAP = 0.3  # detections overlapping more than this (IoU) are one person
BODY_MARGIN = 0.12  # the mask reaches at most this share of the body's height past its outermost points
ROI_SCALE = 1.25  # the landmark model's crop: the detector's body circle, a quarter larger
MAX_PEOPLE = 3
# Body points (BlazePose's 33): where the garment regions start and end.
SHOULDERS, HIPS, KNEES, ANKLES, HEELS, TOES = (11, 12), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)


@dataclass(frozen=True)
class Person:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the photo
    points: np.ndarray = field(repr=False)  # (33, 3): x, y in the photo's pixels, and visibility in [0, 1]
    mask: np.ndarray = field(repr=False)  # float32 in [0, 1] over the whole photo, long side MASK_SIDE
    score: float = 0.0

    def seen(self, pair: tuple[int, int], size: tuple[int, int], at_least: float = 0.5) -> bool:
        """Both points visible and inside the photo (the model guesses the hips below a portrait's edge)."""
        x, y, visible = self.points[list(pair)].T
        inside = (x >= 0) & (x < size[0]) & (y >= 0) & (y < size[1])
        return bool(inside.all() and visible.min() >= at_least)

    def level(self, pair: tuple[int, int]) -> float:
        """The height of a pair of body points (both shoulders, say), in the photo's pixels."""
        return float(self.points[list(pair), 1].mean())


def ssd_anchors() -> np.ndarray:
    """The detector's 2,254 anchor centres (x, y in [0, 1]): MediaPipe's SSD options for pose detection
    (strides 8, 16, 32, 32, 32; two anchors a cell per layer, layers of one stride sharing a grid)."""
    anchors = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        cells = DETECT_SIDE // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        anchors.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(anchors).astype(np.float32)


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float = MIN_SCORE
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x0, y0, x1, y1), keypoints (4, 2) and scores of the detections scoring min_score, in [0, 1] of
    the detector's square input."""
    scores = expit(logits.reshape(-1))
    keep = scores >= min_score
    raw, anchors, scores = raw[keep], anchors[keep], scores[keep]
    centre = raw[:, :2] / DETECT_SIDE + anchors
    half = raw[:, 2:4] / DETECT_SIDE / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) / DETECT_SIDE + anchors[:, None, :]
    return boxes, keypoints, scores


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each person's keypoints, averaged over the detections
    that overlap the best one, weighted by score."""
    order = np.argsort(-scores)
    people = []
    while order.size and len(people) < MAX_PEOPLE:
        overlapping = order[iou(boxes[order[0]], boxes[order]) > OVERLAP]
        weights = scores[overlapping, None, None]
        people.append(((keypoints[overlapping] * weights).sum(0) / weights.sum(), float(scores[order[0]])))
        order = np.setdiff1d(order, overlapping, assume_unique=True)
        order = order[np.argsort(-scores[order])]
    return people


def letterbox(photo: Image.Image, side: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The photo scaled into a black square (RGB float in [0, 255]), its scale, and its offset there."""
    scale = side / max(photo.size)
    w, h = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
    square = Image.new("RGB", (side, side))
    offset = ((side - w) // 2, (side - h) // 2)
    square.paste(photo.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), offset)
    return np.asarray(square, np.float32), scale, (float(offset[0]), float(offset[1]))


class PeopleModel:
    """BlazePose, run as MediaPipe runs it: the detector finds each person's hips and body circle on the
    whole photo; the landmark model, on a square crop around that circle, gives 33 body points and a mask.
    Upright people only: the crop is not turned to the body's axis."""

    def __init__(self, folder: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter  # LiteRT runs the .tflite files as MediaPipe does

        files = check_models(folder)
        self.detector = Interpreter(model_path=str(files["pose_detection.tflite"]), num_threads=threads)
        self.landmarks = Interpreter(model_path=str(files["pose_landmark_full.tflite"]), num_threads=threads)
        for model in (self.detector, self.landmarks):
            model.allocate_tensors()
        self.anchors = ssd_anchors()
        # An interpreter holds its input and output tensors: photos found in several threads at once (a burst
        # of users) take turns, or one photo's outputs are read off another's run.
        self.lock = threading.Lock()

    def _run(self, model, pixels: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            model.set_tensor(model.get_input_details()[0]["index"], pixels[None])
            model.invoke()
            return [model.get_tensor(d["index"])[0].copy() for d in model.get_output_details()]

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, min_score: float = MIN_SCORE
             ) -> list[Person]:
        """The people in the photo, most confident first; boxes and points in pixels of size (default: the
        photo's own, when the photo given is a reduced copy). min_score: SURE to count only clear people."""
        size = size or photo.size
        square, scale, (ox, oy) = letterbox(photo, DETECT_SIDE)
        raw, logits = self._run(self.detector, square / 127.5 - 1)
        people = []
        for keypoints, score in weighted_nms(*decode(raw, logits, self.anchors, min_score)):
            # Keypoint 0 is the hips' centre, 1 a point on the circle around the whole body.
            hips = (keypoints[0] * DETECT_SIDE - (ox, oy)) / scale
            edge = (keypoints[1] * DETECT_SIDE - (ox, oy)) / scale
            half = float(np.hypot(*(edge - hips))) * ROI_SCALE
            person = self._landmarks(photo, (hips[0] - half, hips[1] - half, hips[0] + half, hips[1] + half), score)
            if person is not None:
                people.append(rescaled(person, photo.size, size))
        return people

    def _landmarks(self, photo: Image.Image, roi: tuple[float, float, float, float], score: float) -> Person | None:
        crop = photo.convert("RGB").transform((LANDMARK_SIDE, LANDMARK_SIDE), Image.Transform.EXTENT, roi,
                                              Image.Resampling.BILINEAR)
        points, present, segmentation, *_ = self._run(self.landmarks, np.asarray(crop, np.float32) / 255)
        if float(present.reshape(-1)[0]) < PRESENT:
            return None
        side = (roi[2] - roi[0]) / LANDMARK_SIDE
        body = points.reshape(-1, 5)[:33]
        xy = body[:, :2] * side + (roi[0], roi[1])
        visible = expit(body[:, 3])
        mask = roi_mask(expit(segmentation[..., 0]), roi, photo.size)
        mx, my = photo.width / mask.shape[1], photo.height / mask.shape[0]
        # The mask can spill into whatever touches the person (a motorbike, a sofa): keep it near the body.
        # Every point counts, hidden ones too: the model places a hidden leg where it must be.
        body = np.clip(xy, 0, photo.size)
        reach = BODY_MARGIN * float(np.ptp(body[:, 1]) or photo.height)
        (x0, y0), (x1, y1) = (body.min(0) - reach) / (mx, my), (body.max(0) + reach) / (mx, my)
        near = np.zeros(mask.shape, bool)
        near[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = True
        mask = np.where(near, mask, 0).astype(np.float32)
        if not (mask > 0.5).any():
            return None
        return Person(person_box(mask, photo.size), np.column_stack([xy, visible]).astype(np.float32), mask, score)


def person_box(mask: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box around the part of a person's mask the model is sure of (CORE), in pixels of size."""
    core = mask > CORE
    return mask_box(core if core.any() else mask > 0.5, size)


def roi_mask(crop_mask: np.ndarray, roi: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """The landmark crop's mask placed over the whole photo, at MASK_SIDE."""
    scale = MASK_SIDE / max(size)
    grid = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    per = LANDMARK_SIDE / (roi[2] - roi[0]) / scale  # crop pixels per grid pixel
    image = Image.fromarray(crop_mask.astype(np.float32), "F")
    placed = image.transform(grid, Image.Transform.AFFINE,
                             (per, 0, -roi[0] * LANDMARK_SIDE / (roi[2] - roi[0]), 0, per,
                              -roi[1] * LANDMARK_SIDE / (roi[3] - roi[1])),
                             Image.Resampling.BILINEAR)
    return np.asarray(placed, np.float32)


def rescaled(person: Person, have: tuple[int, int], want: tuple[int, int]) -> Person:
    if have == want:
        return person
    sx, sy = want[0] / have[0], want[1] / have[1]
    points = person.points.copy()
    points[:, 0] *= sx
    points[:, 1] *= sy
    return Person(scale_box(person.box, sx, sy, want), points, person.mask, person.score)
