"""Cut detection on frames scaled down in the decoder (a cut is a picture that changes all at once,
which needs no detail to see), by two differences between consecutive frames: the content difference
of PySceneDetect's ContentDetector (the mean absolute change of hue, saturation and value) and the
colour histogram's Bhattacharyya distance, which also sees cuts between pictures of equal brightness
and saturation whose hues differ less than the content threshold (red to green scores 20 of 27)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THRESHOLD = 27.0  # ContentDetector's default, on 0..255 channel values
HIST_THRESHOLD = 0.5  # Bhattacharyya distance of HSV histograms (0 same colours, 1 none shared)
HIST_BINS = [16, 4, 4]
MIN_SHOT_S = 0.3  # a flash or a glitch is not a shot
OPENING_S = 3.0  # the "first seconds" the rubric's Attention check looks at


def features(small_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(HSV pixels as int16, the normalised HSV histogram)."""
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(small_rgb), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, HIST_BINS, [0, 180, 0, 256, 0, 256])
    return hsv.astype(np.int16), cv2.normalize(hist, None).flatten()


def difference(a, b) -> tuple[float, float]:
    """(content score 0..255, histogram distance 0..1) between two frames' features."""
    import cv2

    return float(np.abs(a[0] - b[0]).mean()), float(cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA))


@dataclass
class Shot:
    index: int
    start_s: float
    end_s: float
    keyframe_s: float | None = None

    def as_dict(self) -> dict:
        return {"index": self.index, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "keyframe_s": None if self.keyframe_s is None else round(self.keyframe_s, 3)}


@dataclass
class ShotDetector:
    """push(time_s, small frame) for every frame in order; True when that frame starts a new shot."""

    threshold: float = THRESHOLD
    hist_threshold: float = HIST_THRESHOLD
    min_shot_s: float = MIN_SHOT_S
    cuts: list[float] = field(default_factory=list)
    opening_motion: list[float] = field(default_factory=list)  # change scores inside shots, first seconds
    _last: tuple | None = None
    _shot_start: float = 0.0

    def push(self, time_s: float, small_rgb: np.ndarray) -> bool:
        frame = features(small_rgb)
        last, self._last = self._last, frame
        if last is None or last[0].shape != frame[0].shape:
            return False
        score, distance = difference(frame, last)
        if (score > self.threshold or distance > self.hist_threshold) and time_s - self._shot_start >= self.min_shot_s:
            self.cuts.append(time_s)
            self._shot_start = time_s
            return True
        if time_s <= OPENING_S:
            self.opening_motion.append(score)
        return False

    def shots(self, end_s: float) -> list[Shot]:
        bounds = [0.0] + self.cuts + [max(end_s, self.cuts[-1] if self.cuts else 0.0)]
        return [Shot(i, a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def pace(shots: list[Shot], duration_s: float) -> dict:
    cuts = max(0, len(shots) - 1)
    return {"cuts_per_second": round(cuts / duration_s, 4) if duration_s > 0 else 0.0,
            "average_shot_s": round(duration_s / len(shots), 3) if shots and duration_s > 0 else None}
