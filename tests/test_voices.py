"""Voices per tenant: Piper joe (the fast default) and Kokoro's natural voices."""
from __future__ import annotations

import pytest

from agent.config import ConfigError, load_config
from agent.speak.voices import make_voice
from agent.speak.kokoro_voice import KokoroVoice, kokoro_voices
from agent.speak.phonemes import VoiceUnavailable
from models.audio import resample


@pytest.fixture(scope="module")
def transcriber(engines):
    return engines.transcriber


def test_kokoro_is_installed_with_english_women_and_men_voices():
    names = kokoro_voices()
    assert len(names) >= 20 and any(n.startswith("af_") for n in names) and any(n.startswith("am_") for n in names)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kokoro:af_heart", "kokoro:bm_george"])
def test_kokoro_voices_say_the_sentence(name, transcriber):
    voice = make_voice(name, 1, 1.0)
    audio = voice.synthesize("Your order shipped yesterday and should arrive on Monday.")
    assert voice.sample_rate == 24000 and 2.0 < len(audio) / voice.sample_rate < 6.0
    heard = transcriber.transcribe(resample(audio, voice.sample_rate, 16000)).lower()
    assert "order" in heard and "monday" in heard, heard
    assert len(voice.synthesize("...")) == 0
    slower = make_voice(name, 1, 1.3).synthesize("Your order shipped yesterday and should arrive on Monday.")
    assert len(slower) > 1.15 * len(audio), "length_scale > 1 speaks slower, as with Piper"


def test_voice_settings_are_checked(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer\nq?,a\n")
    config = tmp_path / "agent.yaml"
    config.write_text("answer:\n  faq_path: faq.csv\nspeak:\n  voice: kokoro:am_michael\ntenants:\n  demo:\n    voice: kokoro:af_heart\n")
    loaded = load_config(config)
    assert loaded.tenant("demo").voice == "kokoro:af_heart" and loaded.speak.voice == "kokoro:am_michael"
    config.write_text("answer:\n  faq_path: faq.csv\nspeak:\n  voice: alexa\n")
    with pytest.raises(ConfigError, match="speak.voice"):
        load_config(config)
    with pytest.raises(VoiceUnavailable, match="installed: af_alloy"):
        KokoroVoice("af_nobody")
