"""Phones -> visemes -> ARKit mouth curves, with coarticulation.

Each phone pulls the face toward its viseme's target with a dominance function
(Cohen & Massaro): strong for lip closures and rounded vowels, weak for
tongue-only consonants, so /t/ in "two" already has rounded lips. Jaw and lip
channels have separate dominances. Curves are the dominance-weighted average of
the nearby targets, which is smooth and anticipatory rather than a step function.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arkit import COUNT, INDEX
from models.arkit import EMOTION_POSES

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou", "schwa")
VISEME_INDEX = {v: i for i, v in enumerate(VISEMES)}

# ARPAbet (flite lower case, pocketsphinx upper case, stress digits dropped).
PHONE_TO_VISEME = {
    "pau": "sil", "sil": "sil", "h#": "sil", "sp": "sil",
    "p": "PP", "b": "PP", "m": "PP",
    "f": "FF", "v": "FF",
    "th": "TH", "dh": "TH",
    "t": "DD", "d": "DD",
    "k": "kk", "g": "kk", "ng": "kk", "hh": "kk",
    "ch": "CH", "jh": "CH", "sh": "CH", "zh": "CH",
    "s": "SS", "z": "SS",
    "n": "nn", "l": "nn", "y": "ih",
    "r": "RR", "er": "RR", "axr": "RR",
    "aa": "aa", "ae": "aa", "ah": "aa", "aw": "aa", "ay": "aa",
    "eh": "E", "ey": "E",
    "ih": "ih", "iy": "ih",
    "ao": "oh", "ow": "oh", "oy": "oh",
    "uw": "ou", "uh": "ou", "w": "ou",
    "ax": "schwa",
}

_L_R = ("Left", "Right")


def _pose(**weights: float) -> np.ndarray:
    w = np.zeros(COUNT, np.float32)
    for name, value in weights.items():
        names = [name + side for side in _L_R] if name + "Left" in INDEX else [name]
        for n in names:
            w[INDEX[n]] = value
    return w


VISEME_TARGETS: dict[str, np.ndarray] = {
    "sil": _pose(),
    "PP": _pose(jawOpen=0.04, mouthClose=0.12, mouthPress=0.45, mouthRollLower=0.25, mouthRollUpper=0.15),
    "FF": _pose(jawOpen=0.08, mouthRollLower=0.55, mouthUpperUp=0.2, mouthShrugUpper=0.2),
    "TH": _pose(jawOpen=0.16, tongueOut=0.35, mouthLowerDown=0.12, mouthStretch=0.1),
    "DD": _pose(jawOpen=0.16, mouthLowerDown=0.12, mouthStretch=0.12),
    "kk": _pose(jawOpen=0.22, mouthLowerDown=0.1, mouthStretch=0.12),
    "CH": _pose(jawOpen=0.14, mouthFunnel=0.45, mouthPucker=0.2, mouthUpperUp=0.25, mouthLowerDown=0.2),
    "SS": _pose(jawOpen=0.07, mouthStretch=0.3, mouthSmile=0.12, mouthUpperUp=0.1),
    "nn": _pose(jawOpen=0.14, mouthLowerDown=0.1, mouthStretch=0.08),
    "RR": _pose(jawOpen=0.14, mouthFunnel=0.3, mouthPucker=0.3),
    "aa": _pose(jawOpen=0.58, mouthLowerDown=0.3, mouthUpperUp=0.1),
    "E": _pose(jawOpen=0.34, mouthStretch=0.28, mouthSmile=0.18, mouthLowerDown=0.22),
    "ih": _pose(jawOpen=0.18, mouthSmile=0.3, mouthStretch=0.3, mouthUpperUp=0.08),
    "oh": _pose(jawOpen=0.42, mouthFunnel=0.5, mouthPucker=0.22),
    "ou": _pose(jawOpen=0.12, mouthPucker=0.7, mouthFunnel=0.3),
    "schwa": _pose(jawOpen=0.26, mouthLowerDown=0.12),
}

# (jaw dominance, lip dominance): how strongly a phone holds its own shape. Lip closure
# for p/b/m and lip-teeth contact for f/v must happen, so they outweigh their neighbours.
DOMINANCE = {
    "sil": (0.8, 0.8), "PP": (2.0, 3.0), "FF": (1.0, 2.0), "TH": (0.5, 0.3), "DD": (0.4, 0.15),
    "kk": (0.3, 0.1), "CH": (0.5, 0.8), "SS": (0.6, 0.4), "nn": (0.3, 0.15), "RR": (0.4, 0.6),
    "aa": (0.9, 0.5), "E": (0.8, 0.5), "ih": (0.7, 0.5), "oh": (0.8, 0.8), "ou": (0.6, 0.9),
    "schwa": (0.5, 0.3),
}
# (ahead, behind) in seconds: how far a phone's influence reaches. Strong closures are brief.
REACH = {"PP": (0.05, 0.04), "FF": (0.05, 0.04)}
DEFAULT_REACH = (0.08, 0.06)
_JAW = np.array([INDEX["jawOpen"], INDEX["mouthLowerDownLeft"], INDEX["mouthLowerDownRight"], INDEX["tongueOut"]])
MOUTH_CHANNELS = np.array(sorted({i for t in VISEME_TARGETS.values() for i in np.nonzero(t)[0]}))
UPPER_FACE_CHANNELS = np.array(sorted({INDEX[n] for pose in EMOTION_POSES.values() for n in pose}))

EMOTIONS = tuple(EMOTION_POSES)  # the model's emotion input, one-hot in this order


@dataclass(frozen=True)
class Phone:
    phone: str
    start: float
    end: float

    @property
    def viseme(self) -> str:
        return phone_viseme(self.phone)


def phone_viseme(phone: str) -> str:
    key = phone.lower().rstrip("012")
    if key.startswith("+") or key not in PHONE_TO_VISEME:
        return "sil"  # fillers and noise markers from the aligner
    return PHONE_TO_VISEME[key]


def viseme_track(phones: list[Phone], times: np.ndarray) -> np.ndarray:
    """Index of the viseme being spoken at each time (the classification label)."""
    labels = np.full(len(times), VISEME_INDEX["sil"], np.int64)
    for p in phones:
        labels[(times >= p.start) & (times < p.end)] = VISEME_INDEX[p.viseme]
    return labels


def coarticulated_curves(phones: list[Phone], times: np.ndarray, loudness: np.ndarray | None = None) -> np.ndarray:
    """[len(times), 52] mouth weights. loudness (0..1 per phone) scales how wide a phone opens."""
    if not phones:
        return np.zeros((len(times), COUNT), np.float32)
    jaw_mask = np.zeros(COUNT, bool)
    jaw_mask[_JAW] = True
    num = np.zeros((len(times), COUNT), np.float64)
    den = np.zeros((len(times), COUNT), np.float64)
    for i, p in enumerate(phones):
        vis = p.viseme
        target = VISEME_TARGETS[vis].astype(np.float64)
        if loudness is not None and vis not in ("sil", "PP"):
            target = target * (0.7 + 0.5 * float(loudness[i]))
        centre = 0.5 * (p.start + p.end)
        half = max(0.5 * (p.end - p.start), 0.02)
        dist = np.maximum(np.abs(times - centre) - half, 0.0)
        # Anticipation reaches further ahead (lips prepare) than carry-over lingers.
        ahead, behind = REACH.get(vis, DEFAULT_REACH)
        reach = np.where(times < centre, ahead, behind)
        shape = np.exp(-((dist / reach) ** 1.5))
        jaw_dom, lip_dom = DOMINANCE[vis]
        if vis == "sil" and p.end - p.start < 0.15:
            jaw_dom, lip_dom = 0.2, 0.2  # short pauses do not close the mouth fully
        dom = np.where(jaw_mask, jaw_dom, lip_dom)[None, :] * shape[:, None]
        num += dom * target[None, :]
        den += dom
    curves = np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)
    return np.clip(curves, 0.0, 1.0).astype(np.float32)


# Speakers drop the jaw and part their lips as they breathe in before a phrase: in the GRID videos the
# mouth opens 0.2-0.5 s before the first sound. A phrase starts after a pause of at least INHALE_PAUSE_S.
# The breath hands over to the first phone's own shape over INHALE_HANDOVER_S (lips close for a /b/ in time).
INHALE_S, INHALE_PAUSE_S, INHALE_HANDOVER_S = 0.4, 0.3, 0.08
INHALE_POSE = _pose(jawOpen=0.3, mouthLowerDown=0.1)


def inhale_before_speech(phones: list[Phone], times: np.ndarray) -> np.ndarray:
    """[len(times), 52]: the in-breath before each phrase, rising over INHALE_S, then handing over to its first phone."""
    spoken = [p for p in phones if p.viseme != "sil"]
    onsets = [p.start for i, p in enumerate(spoken) if i == 0 or p.start - spoken[i - 1].end >= INHALE_PAUSE_S]
    breath = np.zeros(len(times), np.float32)
    for onset in onsets:
        rise = np.clip((times - (onset - INHALE_S)) / (INHALE_S - INHALE_HANDOVER_S), 0.0, 1.0)
        handover = np.clip((onset - times) / INHALE_HANDOVER_S, 0.0, 1.0)
        breath = np.maximum(breath, np.minimum(rise, handover))
    return breath[:, None] * INHALE_POSE[None, :]
