"""Loudness of the audio track, streamed: ITU-R BS.1770 integrated loudness (LUFS) with pyloudnorm's
K-weighting filters run block by block (filter state carried over), so a long track is never held in
memory; the gating follows pyloudnorm's Meter.integrated_loudness. Also the momentary loudness curve,
the share of silence and the share of clipped samples."""

from __future__ import annotations

import numpy as np

BLOCK_S, HOP_S = 0.4, 0.1  # BS.1770 gating blocks: 400 ms, 75% overlap
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0
SILENCE_LUFS = -60.0  # momentary loudness below this counts as silence
CLIP_LEVEL = 0.999  # a sample at full scale (float samples, 1.0 = full scale)
CURVE_EVERY_S = 0.5


class LoudnessMeter:
    """push(samples: float32 channels x n) as the audio decodes; result() at the end."""

    def __init__(self, rate: int, channels: int):
        import pyloudnorm
        from scipy.signal import lfilter_zi

        self.rate, self.channels = rate, channels
        meter = pyloudnorm.Meter(rate)  # its K-weighting: a high shelf, then a high pass
        self.stages = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
        self.state = [[lfilter_zi(b, a) * 0.0 for b, a, _ in self.stages] for _ in range(channels)]
        self.hop = HOP_S * rate
        self.segments: list[np.ndarray] = []  # per 100 ms: sum of squares per channel
        self._acc = np.zeros(channels)
        self._filled = 0  # samples in the current segment
        self._seen = 0
        self.samples = 0
        self.clipped = 0

    def push(self, samples: np.ndarray) -> None:
        from scipy.signal import lfilter

        samples = np.asarray(samples, dtype=np.float64)[: self.channels]
        if samples.shape[0] < self.channels or samples.shape[1] == 0:
            return
        self.samples += samples.shape[1]
        self.clipped += int((np.abs(samples) >= CLIP_LEVEL).any(axis=0).sum())
        weighted = np.empty_like(samples)
        for ch in range(self.channels):
            x = samples[ch]
            for k, (b, a, gain) in enumerate(self.stages):
                y, self.state[ch][k] = lfilter(b, a, x, zi=self.state[ch][k])
                x = gain * y
            weighted[ch] = x
        squares = weighted ** 2
        pos = 0
        n = squares.shape[1]
        while pos < n:  # segments end at int(k * hop), as pyloudnorm's block bounds do
            end_of_segment = int((len(self.segments) + 1) * self.hop) - self._seen
            take = min(n - pos, end_of_segment)
            self._acc += squares[:, pos:pos + take].sum(axis=1)
            pos += take
            self._seen += take
            if take == end_of_segment:
                self.segments.append(self._acc)
                self._acc = np.zeros(self.channels)

    def result(self) -> dict:
        segs = np.array(self.segments).reshape(-1, self.channels)
        per_block = int(round(BLOCK_S / HOP_S))
        if len(segs) < per_block:
            return {"loudness_lufs": None, "loudness_curve": [], "silence_share": None,
                    "clipping_share": self._clipping(), "reason": "the audio track is shorter than 0.4 s"}
        gains = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[: self.channels]
        window = np.lib.stride_tricks.sliding_window_view(segs, per_block, axis=0).sum(axis=-1)
        z = window / (BLOCK_S * self.rate)  # blocks x channels: mean squares
        with np.errstate(divide="ignore"):
            blocks = -0.691 + 10 * np.log10(z @ gains)
            gated = blocks >= ABSOLUTE_GATE
            integrated = None
            if gated.any():
                relative = -0.691 + 10 * np.log10(z[gated].mean(axis=0) @ gains) + RELATIVE_GATE
                keep = gated & (blocks > relative)
                if keep.any():
                    integrated = float(-0.691 + 10 * np.log10(z[keep].mean(axis=0) @ gains))
        every = int(round(CURVE_EVERY_S / HOP_S))
        curve = [{"time_s": round((j * HOP_S) + BLOCK_S, 2),
                  "lufs": round(float(blocks[j]), 2) if np.isfinite(blocks[j]) else None}
                 for j in range(0, len(blocks), every)]
        return {"loudness_lufs": None if integrated is None else round(integrated, 2),
                "loudness_curve": curve,
                "silence_share": round(float(np.mean(~(blocks >= SILENCE_LUFS))), 4),
                "clipping_share": self._clipping(),
                "reason": None if integrated is not None else "the audio track is silent"}

    def _clipping(self) -> float | None:
        return round(self.clipped / self.samples, 6) if self.samples else None


def resampler_for(stream):
    """Planar float samples, at most two channels (BS.1770's weights past two need a known layout)."""
    import av

    channels = stream.codec_context.channels or (stream.layout.nb_channels if stream.layout else 2)
    layout = "mono" if channels == 1 else "stereo"
    return av.AudioResampler(format="fltp", layout=layout, rate=stream.rate), (1 if layout == "mono" else 2)
