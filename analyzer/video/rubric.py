"""A rubric in the spirit of Google's ABCDs of effective video ads: Attention, Branding, Connection,
Direction. Each check says what it saw and when (never a bare score); `passed` is None when the check
could not be judged here (no brand given, no OCR or face detector could run)."""

from __future__ import annotations

import re

from clip_arena.analyzer.content.calls_to_action import PHRASES, find_calls_to_action

OPENING_S = 3.0  # Attention: a cut or motion within the first seconds
MOTION = 6.0  # mean content change per frame (0..255 HSV) that counts as motion
BRAND_WITHIN_S = 5.0  # Branding: the brand on screen within the first 5 s


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _times(values) -> str:
    shown = [f"{t:.1f} s" for t in values[:5]]
    return ", ".join(shown) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def check(cid: str, name: str, passed: bool | None, evidence: str, times=()) -> dict:
    return {"id": cid, "name": name, "passed": passed, "evidence": evidence,
            "times_s": [round(t, 3) for t in times]}


def attention(cuts: list[float], opening_motion: list[float], cuts_per_second: float,
              average_shot_s: float | None) -> dict:
    early = [c for c in cuts if c <= OPENING_S]
    motion = sum(opening_motion) / len(opening_motion) if opening_motion else 0.0
    pace = f"{cuts_per_second:.2f} cuts per second" + (f", shots of {average_shot_s:.1f} s on average"
                                                        if average_shot_s else "")
    if early:
        return check("attention", "Attention: a cut or motion in the first seconds", True,
                     f"First cut at {early[0]:.1f} s ({len(early)} in the first {OPENING_S:g} s); {pace}.", early)
    if motion >= MOTION:
        return check("attention", "Attention: a cut or motion in the first seconds", True,
                     f"No cut in the first {OPENING_S:g} s but the picture moves (mean change {motion:.1f} per "
                     f"frame, {MOTION:g} counts as motion); {pace}.")
    first = f"the first cut comes at {cuts[0]:.1f} s" if cuts else "there is no cut"
    return check("attention", "Attention: a cut or motion in the first seconds", False,
                 f"No cut and little motion in the first {OPENING_S:g} s (mean change {motion:.1f} per frame); "
                 f"{first}; {pace}.", cuts[:1])


def branding(brand: str | None, text_seen: list[dict], ocr_ran: bool) -> dict:
    name = "Branding: the brand on screen in the first 5 s"
    if not brand or not _squash(brand):
        return check("branding", name, None, "Not judged: no brand name was given (--brand).")
    if not ocr_ran:
        return check("branding", name, None, "Not judged: no OCR tier could read the text on screen.")
    key = _squash(brand)
    hits = [e for e in text_seen if key in _squash(e["text"])]
    if not hits:
        return check("branding", name, False, f"{brand!r} was not read on screen at any time.")
    first = min(hits, key=lambda e: e["first_s"])
    ok = first["first_s"] <= BRAND_WITHIN_S
    when = "within" if ok else "after"
    return check("branding", name, ok, f"{brand!r} first on screen at {first['first_s']:.1f} s ({when} the first "
                                       f"{BRAND_WITHIN_S:g} s), read as {first['text']!r}.", [first["first_s"]])


def connection(keyframe_objects: list[dict], objects_ran: bool, fallback: str | None = None) -> dict:
    """keyframe_objects: the objects section's per-keyframe values (each with time_s); `fallback`:
    the detector's backend when only the fallback tier ran (its finds are weaker evidence: said)."""
    name = "Connection: people or faces on screen"
    if not objects_ran:
        return check("connection", name, None, "Not judged: no face or people detector could run.")
    times, what = [], set()
    for kf in keyframe_objects:
        faces, people = kf.get("faces", 0), kf.get("people", 0)
        persons = (kf.get("counts") or {}).get("person", 0)
        if faces or people or persons:
            times.append(kf["time_s"])
            what |= {w for w, n in (("faces", faces), ("people", people or persons)) if n}
    if not times:
        return check("connection", name, False, f"No face or person found on the {len(keyframe_objects)} keyframes.")
    by = f"; found by the fallback detector ({fallback}), which also takes some shapes for faces" if fallback else ""
    return check("connection", name, True, f"{' and '.join(sorted(what)).capitalize()} on screen at {_times(times)} "
                                           f"(keyframes{by}).", times)


def calls_on_screen(text: str) -> list[str]:
    """Calls to action in text read off the screen, where OCR often drops the spaces ("SHOPNOW")."""
    found = find_calls_to_action(text)
    compact = re.sub(r"[\W_]+", "", text or "").lower()
    found += [p for p in PHRASES if p not in found and re.sub(r"[\W_]+", "", p) in compact]
    return found


def direction(text_seen: list[dict], ad_text: str, ocr_ran: bool) -> dict:
    name = "Direction: a call to action on screen"
    found = [(e["first_s"], cta, e["text"]) for e in text_seen for cta in calls_on_screen(e["text"])]
    in_text = find_calls_to_action(ad_text)
    if found:
        first = min(found)
        return check("direction", name, True, f"{first[1]!r} on screen from {first[0]:.1f} s (read as {first[2]!r}).",
                     sorted({f[0] for f in found}))
    if not ocr_ran:
        return check("direction", name, None, "Not judged: no OCR tier could read the text on screen"
                     + (f"; the ad text asks {in_text[0]!r}." if in_text else "."))
    also = (f" The ad text has one ({in_text[0]!r}) that never appears on screen." if in_text else "")
    return check("direction", name, False, "No call to action was read on screen." + also)
