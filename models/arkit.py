"""The face vocabulary shared by our model and the agent: the 52 ARKit blendshape names in Apple's order
(every weight vector uses it), and the expression of each emotion."""
from __future__ import annotations

import numpy as np

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
INDEX = {name: i for i, name in enumerate(ARKIT_NAMES)}
COUNT = len(ARKIT_NAMES)

MOUTH_NAMES = tuple(n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth", "tongue")))


EMOTION_POSES: dict[str, dict[str, float]] = {
    "neutral": {"mouthSmileLeft": 0.08, "mouthSmileRight": 0.08},
    "happy": {"mouthSmileLeft": 0.35, "mouthSmileRight": 0.35, "cheekSquintLeft": 0.2, "cheekSquintRight": 0.2, "browOuterUpLeft": 0.1, "browOuterUpRight": 0.1},
    "concerned": {"browInnerUp": 0.45, "mouthFrownLeft": 0.15, "mouthFrownRight": 0.15},
    "apologetic": {"browInnerUp": 0.35, "mouthPressLeft": 0.15, "mouthPressRight": 0.15, "mouthFrownLeft": 0.1, "mouthFrownRight": 0.1},
    "surprised": {"browOuterUpLeft": 0.4, "browOuterUpRight": 0.4, "browInnerUp": 0.3, "eyeWideLeft": 0.35, "eyeWideRight": 0.35},
}


def emotion_pose(emotion: str) -> np.ndarray:
    w = np.zeros(COUNT, np.float32)
    for name, value in EMOTION_POSES.get(emotion, EMOTION_POSES["neutral"]).items():
        w[INDEX[name]] = value
    return w
