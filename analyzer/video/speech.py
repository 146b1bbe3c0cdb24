"""Speech in a video's audio track, to text with a Whisper checkpoint: a hub tier only (no offline
model ships with the app). The model is asked for before the video is read, so that a machine without
it collects no audio; the audio is kept as 16 kHz mono float32 (what Whisper takes), at most MAX_S."""

from __future__ import annotations

import numpy as np

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.component import OK, UNAVAILABLE, Unavailable, section

RATE = 16_000
MAX_S = 300.0  # 19 MB of samples; the rest of a longer track is not transcribed (and said)


def _load_pipeline(name: str, device: str):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=name, device=device)


class Speech:
    """ready() says whether a model is there; push() audio blocks as they decode; section() at the end."""

    def __init__(self, settings):
        self.settings, self.pipe, self.reason = settings, None, None
        self.chunks: list[np.ndarray] = []
        self.kept = 0
        self.cut = False
        try:
            self.pipe = hub.load("transcript", _load_pipeline, settings.device or "cpu")
        except Unavailable as err:
            self.reason = str(err)

    def ready(self) -> bool:
        return self.pipe is not None

    def push(self, samples: np.ndarray, rate: int) -> None:
        """Planar float samples (channels x n) at `rate`: averaged to mono, resampled to 16 kHz."""
        if self.pipe is None or self.cut:
            return
        from scipy.signal import resample_poly

        mono = np.asarray(samples, dtype=np.float32).mean(axis=0)
        block = resample_poly(mono, RATE, rate).astype(np.float32) if rate != RATE else mono
        room = int(MAX_S * RATE) - self.kept
        if len(block) >= room:
            block, self.cut = block[:room], True
        self.chunks.append(block)
        self.kept += len(block)

    def section(self) -> dict:
        backend = hub.backend_name("transcript")
        if self.pipe is None:
            return {**section(UNAVAILABLE, backend, f"speech transcription needs a hub model: {self.reason}"),
                    "needs": [hub.model_id("transcript")]}
        if not self.kept:
            return section(UNAVAILABLE, backend, "no audio track to transcribe")
        audio = np.concatenate(self.chunks)
        out = self.pipe({"raw": audio, "sampling_rate": RATE}, chunk_length_s=30, return_timestamps=True)
        lines = [{"text": c["text"].strip(), "start_s": c["timestamp"][0], "end_s": c["timestamp"][1]}
                 for c in out.get("chunks") or [] if c.get("text", "").strip()]
        note = f"the first {MAX_S:.0f} s only" if self.cut else None
        return {**section(OK, backend, note), "text": out.get("text", "").strip(), "lines": lines}
