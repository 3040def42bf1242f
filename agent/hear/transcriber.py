"""Speech to text with faster-whisper; the model comes inside a PyPI package, never from a hub."""
from __future__ import annotations

import logging

import numpy as np

from models.devices import ctranslate2_device
from models.whisper import resolve_model_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# Whisper is trained on 30 s windows and faster-whisper always pads to that; CTranslate2's encoder
# takes shorter input. A customer's turn padded to 8 s (or its length + 1 s) encoded 3x faster and
# transcribed our test questions and the JFK/TIMIT clips at least as well; much less silence
# than that made the decoder repeat itself.
WINDOW_S = 8.0
TRAILING_SILENCE_S = 1.0
NO_SPEECH_PROB = 0.6  # above this the window is taken as no speech
MIN_AVG_LOGPROB = -1.2  # below this the text is taken as a guess


class Transcriber:
    """faster-whisper's model and features, run on a window sized to the turn (see WINDOW_S)."""

    def __init__(self, model: str = "tiny.en", language: str = "en", threads: int = 1, device: str = "auto") -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        device = ctranslate2_device(device)
        compute_type = "float16" if device == "cuda" else "int8"
        self.language = language
        self._whisper = WhisperModel(str(resolve_model_dir(model)), device=device, compute_type=compute_type, cpu_threads=threads)
        multilingual = self._whisper.model.is_multilingual
        tokenizer = Tokenizer(self._whisper.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None)
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._tokenizer = tokenizer
        log.info("ASR model %s on %s (%s)", model, device, compute_type)

    def transcribe(self, audio: np.ndarray) -> str:
        """16 kHz mono float32 -> text; '' when nothing was said."""
        import ctranslate2

        if audio.size == 0:
            return ""
        audio = np.asarray(audio, np.float32)
        total = max(int(WINDOW_S * SAMPLE_RATE), len(audio) + int(TRAILING_SILENCE_S * SAMPLE_RATE))
        features = self._whisper.feature_extractor(np.concatenate([audio, np.zeros(total - len(audio), np.float32)]))
        features = features[:, : min(features.shape[1] - features.shape[1] % 2, 3000)]  # the encoder halves the frames; 30 s at most
        encoded = self._whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])), to_cpu=False)
        [result] = self._whisper.model.generate(encoded, [self._prompt], beam_size=1, max_length=224,
                                                return_scores=True, return_no_speech_prob=True)
        if result.no_speech_prob > NO_SPEECH_PROB or result.scores[0] < MIN_AVG_LOGPROB:
            return ""
        return self._tokenizer.decode([t for t in result.sequences_ids[0] if t < self._tokenizer.eot]).strip()
