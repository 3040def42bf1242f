"""The agent's voices by name: `joe` (Piper), `kokoro:<name>` or `espeak:<voice>`."""
from __future__ import annotations

from .espeak_voice import EspeakVoice
from .kokoro_voice import KokoroVoice
from .piper_voice import PiperVoice


def make_voice(name: str, threads: int = 1, length_scale: float = 1.0):
    if name.startswith("kokoro:"):
        return KokoroVoice(name.split(":", 1)[1], threads, length_scale)
    if name.startswith("espeak:"):
        return EspeakVoice(name.split(":", 1)[1], round(150 / length_scale))
    if name != "joe":
        raise ValueError(f"unknown voice {name!r} (joe, kokoro:<name> or espeak:<voice>)")
    return PiperVoice.joe(threads, length_scale)
