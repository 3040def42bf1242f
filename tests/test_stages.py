"""Unit tests, one stage at a time."""
from __future__ import annotations

import numpy as np
import pytest

from models.arkit import ARKIT_NAMES, INDEX
from agent.output.composer import EXPRESSION_CHANNELS, FaceComposer, IdleMotion
from models.arkit import emotion_pose
from agent.answer.faq import FaqError, load_faq
from models.audio import resample
from agent.config import ConfigError, load_config
from agent.hear.turns import SpeechStarted, TurnDetector, TurnEnded, TurnPaused
from agent.messages import FRAME_SAMPLES, OUTPUT_RATE
from agent.output.playout import Playout
from agent.messages import AnimatedSpeech
from agent.speak.sentences import split_sentences

from .conftest import espeak, read_wav


# --- config -------------------------------------------------------------------
def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "agent.yaml"
    bad.write_text("answer:\n  faq_path: faq.csv\nserver:\n  port: 99999\n  colour: blue\n")
    (tmp_path / "faq.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "server.port" in str(err.value) and "server.colour" in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("server: [unclosed")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(tmp_path / "broken.yaml")


# --- FAQ ----------------------------------------------------------------------
def test_faq_csv_and_jsonl_load(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text('question,answer,paraphrases,emotion\nHi?,"Hello, there",Hey|Yo,happy\n')
    [entry] = load_faq(csv)
    assert entry.paraphrases == ("Hey", "Yo") and entry.emotion == "happy"
    jsonl = tmp_path / "f.jsonl"
    jsonl.write_text('{"question": "Q1", "answer": "A1", "paraphrases": ["q one"]}\n\n{"question": "Q2", "answer": "A2"}\n')
    assert [e.question for e in load_faq(jsonl)] == ["Q1", "Q2"]


def test_broken_faq_lists_every_problem_with_line_numbers(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("question,answer,emotion\nQ1,A1,neutral\n,A2,neutral\nQ1,A3,angry\n")
    with pytest.raises(FaqError) as err:
        load_faq(csv)
    text = str(err.value)
    assert "f.csv:3: empty question" in text
    assert "f.csv:4: unknown emotion 'angry'" in text
    assert "f.csv:4: duplicate question (first on line 2)" in text
    jsonl = tmp_path / "f.jsonl"
    jsonl.write_text('{"question": "Q", "answer": "A"}\n{broken\n')
    with pytest.raises(FaqError, match="f.jsonl:2: invalid JSON"):
        load_faq(jsonl)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(FaqError, match="unsupported"):
        load_faq(tmp_path / "f.txt")


def test_answerer_matches_paraphrase_and_hands_off_when_unsure(engines):
    answerer = engines.answerers.get("demo")
    hours = answerer.answer("when do you open on saturday")
    assert hours.matched_question == "What are your opening hours?" and not hours.handoff
    assert answerer.answer("where is my parcel").matched_question == "How can I track my order?"
    unsure = answerer.answer("what is the capital of mongolia")
    assert unsure.handoff and unsure.matched_question is None and unsure.confidence < answerer.threshold
    human = answerer.answer("I want to talk to a real person")
    assert human.handoff and human.matched_question is not None
    assert answerer.answer("thanks a lot").emotion == "happy"


def test_follow_up_questions_use_the_previous_question_but_only_when_they_lean_on_it(engines):
    answerer = engines.answerers.get("demo")
    assert answerer.answer("and on sunday?").handoff, "alone it means nothing"
    follow_up = answerer.answer("and on sunday?", previous="What are your opening hours?")
    assert not follow_up.handoff and follow_up.matched_question == "What are your opening hours?"
    assert answerer.answer("and the weather?", previous="What are your opening hours?").handoff, "context must not make up an answer"
    assert answerer.answer("tell me a joke", previous="What are your opening hours?").handoff


# --- hear ---------------------------------------------------------------------
def test_turn_detector_finds_one_turn_in_speech_and_none_in_silence_or_noise(speech_dir):
    audio, rate = read_wav(espeak("Where is my order?", speech_dir / "order.wav"))
    assert rate == 16000
    detector = TurnDetector(end_of_turn_ms=450)
    events = []
    for i in range(0, len(audio), 480):
        events += detector.feed(audio[i : i + 480], now=i / 16000)
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnEnded]
    paused, turn = events[1], events[2]
    assert paused.speech_windows == turn.speech_windows, "nothing said after the pause: the early transcript is valid"
    assert np.array_equal(turn.audio[: len(paused.audio)], paused.audio)
    assert 0.8 < len(turn.audio) / 16000 < len(audio) / 16000
    quiet = TurnDetector()
    rng = np.random.default_rng(1)
    assert quiet.feed(np.zeros(32000, np.float32)) == []
    assert quiet.feed((rng.standard_normal(32000) * 0.1).astype(np.float32)) == []


def test_speaking_again_after_a_pause_invalidates_the_early_transcript(speech_dir):
    first, _ = read_wav(espeak("Where is my order?", speech_dir / "order1.wav", lead_s=0.3, tail_s=0.3))
    second, _ = read_wav(espeak("It was due on Monday.", speech_dir / "order2.wav", lead_s=0.0, tail_s=1.0))
    detector = TurnDetector(end_of_turn_ms=700)
    events = []
    audio = np.concatenate([first, second])
    for i in range(0, len(audio), 480):
        events += detector.feed(audio[i : i + 480], now=i / 16000)
    pauses = [e for e in events if isinstance(e, TurnPaused)]
    ends = [e for e in events if isinstance(e, TurnEnded)]
    assert len(ends) == 1 and len(pauses) >= 2
    assert pauses[0].speech_windows < ends[0].speech_windows == pauses[-1].speech_windows


def test_transcriber_hears_real_speech(engines):
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "en_jfk_inaugural.wav"
    if not shared.exists():
        pytest.skip("../shared is not present")
    audio, rate = read_wav(shared)
    text = engines.transcriber.transcribe(resample(audio, rate, 16000)).lower()
    assert "ask not what your country can do for you" in text
    assert engines.transcriber.transcribe(np.zeros(16000, np.float32)) == ""


# --- speak --------------------------------------------------------------------
def test_sentences_split_for_streaming():
    assert split_sentences("Hello! Our shop opens at 9 a.m. on Monday. Bye.") == ["Hello!", "Our shop opens at 9 a.m. on Monday.", "Bye."]
    first, *_ = split_sentences("Click on forgot password on the sign in page, enter your email address, and we will mail you.")
    assert first == "Click on forgot password on the sign in page,"
    assert split_sentences("   ") == []


def test_voice_speaks_text_that_whisper_understands(engines, config):
    voice = engines.voice_for(config.tenant("demo"))
    audio = voice.synthesize("Your parcel will arrive on Tuesday.")
    assert voice.sample_rate == 22050
    assert 1.0 < len(audio) / voice.sample_rate < 5.0
    assert np.abs(audio).max() > 0.1
    heard = engines.transcriber.transcribe(resample(audio, voice.sample_rate, 16000)).lower()
    assert "parcel" in heard and "tuesday" in heard
    assert voice.synthesize("...").size == 0


# --- animate ------------------------------------------------------------------
def test_lipsync_opens_jaw_with_speech_and_closes_in_silence(engines, config):
    from models.audio2face.data.visemes import INHALE_S

    face_model = engines.face_model  # our model, at the video frame rate
    speech = engines.voice_for(config.tenant("demo")).synthesize("Hello, how are you today?")
    audio = np.concatenate([np.zeros(22050, np.float32), speech, np.zeros(22050, np.float32)])
    weights = face_model.animate(audio, 22050)
    assert weights.shape == (int(np.ceil(len(audio) / (22050 / 25))), 52)
    jaw = weights[:, INDEX["jawOpen"]]
    assert jaw[: int((1.0 - INHALE_S) * 25)].max() < 0.05, "silence before speech keeps the mouth shut, until the breath before it"
    assert jaw[-15:].max() < 0.05
    speaking = jaw[25 : 25 + int(len(speech) / 22050 * 25)]
    assert speaking.max() > 0.3 and speaking.std() > 0.05, "jaw should open and close with syllables"
    assert ((weights >= 0) & (weights <= 1)).all()


def test_face_composer_eases_expression_but_not_the_mouth():
    face = FaceComposer(seed=1)
    happy = emotion_pose("happy")
    happy[INDEX["jawOpen"]] = 0.6
    first, _ = face.compose(happy, True, 0.0)
    assert first[INDEX["jawOpen"]] == pytest.approx(0.6, abs=1e-6), "articulation is not delayed"
    assert first[INDEX["mouthSmileLeft"]] < 0.2, "a new emotion blends in"
    for i in range(1, 40):
        settled, _ = face.compose(happy, True, i / 25)
    assert np.allclose(settled[EXPRESSION_CHANNELS], happy[EXPRESSION_CHANNELS], atol=0.01)
    for i in range(40, 80):
        rest, _ = face.compose(np.zeros(52, np.float32), False, i / 25)
    assert rest[INDEX["mouthSmileLeft"]] == pytest.approx(emotion_pose("neutral")[INDEX["mouthSmileLeft"]], abs=0.01)


def test_idle_motion_blinks_and_emotions_differ():
    idle = IdleMotion(seed=3)
    blinks = [idle.step(t / 25)[0][INDEX["eyeBlinkLeft"]] for t in range(25 * 10)]
    assert max(blinks) > 0.9 and np.mean(np.array(blinks) > 0.5) < 0.1
    assert emotion_pose("happy")[INDEX["mouthSmileLeft"]] > emotion_pose("neutral")[INDEX["mouthSmileLeft"]]
    assert emotion_pose("concerned")[INDEX["browInnerUp"]] > 0.3


def test_playout_hands_out_audio_with_matching_pose_and_flushes():
    events = []
    playout = Playout(events.append)
    seconds = 0.5
    audio = np.full(int(OUTPUT_RATE * seconds), 0.5, np.float32)
    weights = np.zeros((int(25 * seconds), 52), np.float32)
    weights[:, INDEX["jawOpen"]] = np.linspace(0, 1, len(weights))
    playout.enqueue(AnimatedSpeech(1, "hi", audio, OUTPUT_RATE, weights, 25, "happy", is_last=True))
    first = playout.next_audio_frame()
    assert first.shape == (FRAME_SAMPLES,) and first.max() > 16000
    assert events[0].kind == "started" and events[0].text == "hi"
    for _ in range(11):
        playout.next_audio_frame()
    # 12 frames = 0.24 s handed out -> pose of video frame 6
    assert playout.pose()[INDEX["jawOpen"]] == pytest.approx(weights[6, INDEX["jawOpen"]])
    assert playout.flush() == 1 and not playout.speaking
    assert playout.next_audio_frame().max() == 0
    assert [e.kind for e in events] == ["started", "flushed"]


def test_speech_cache_speaks_each_sentence_once_and_stays_bounded():
    from agent.speak.cache import CachedVoice

    class CountingVoice:
        sample_rate = 16000

        def __init__(self) -> None:
            self.spoken: list[str] = []

        def synthesize(self, text: str) -> np.ndarray:
            self.spoken.append(text)
            return np.full(1000 * len(text), 0.25, np.float32)

    inner = CountingVoice()
    voice = CachedVoice(inner, max_bytes=2 * 2 * 1000 * len("We open at nine."))  # room for two such sentences (int16)
    first = voice.synthesize("We open at nine.")
    again = voice.synthesize("We  open at nine.")  # the same words, other spacing
    assert inner.spoken == ["We open at nine."]
    assert np.allclose(first, again, atol=1e-4)
    assert voice.warm(["We open at nine.", "We close at six.", "Bye, see you now"]) == 1, "warming stops when full"
    assert inner.spoken == ["We open at nine.", "We close at six."]
    voice.synthesize("We close at six.")
    voice.synthesize("Bye, see you now")  # said in a call: it is kept, the least recently used goes
    assert "Bye, see you now" in voice and "We close at six." in voice and "We open at nine." not in voice


def test_model_work_runs_below_the_event_loop_in_the_os_priority(engines, config):
    """The event loop sends every call's audio on time; the models' threads yield a core to it when both want one."""
    import os
    import threading

    assert config.models_nice > 0
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    there = engines.executor.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert there == min(19, here + config.models_nice)
