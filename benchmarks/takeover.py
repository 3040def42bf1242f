"""A person speaking through the avatar: the operator's speech onset -> the customer hears it, and lips against sound.

The operator's microphone is a person's recorded words (espeak-ng and the shipped voices, one phrase at a time with
pauses between), fed in 20 ms chunks on the audio's own clock to a call's conversation in takeover, with the real
face model; the avatar's audio is pulled from the output port every 20 ms, as the call's audio track does. For each
phrase: from the first voiced 20 ms going in to the first voiced 20 ms coming out (the network and the browser's
jitter buffer add to this in a call: tens of ms on a LAN). Lips against sound: the jaw opening of the pose handed
out with each 20 ms of audio, cross-correlated with that audio's loudness (positive: the mouth lags the sound).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics

import numpy as np

from benchmarks.latency import pct
from benchmarks.speech_sets import speaker
from models.audio import SPEECH_RATE

PHRASES = ("Hello, this is Sam from the support team.", "I can see your order here, give me a second.",
           "The parcel left our warehouse yesterday.", "Is there anything else I can help you with today?")
VOICES = ("espeak:en-us", "espeak:en-us+f3", "joe")
PAUSE_S = 1.5
CHUNK = 320  # 20 ms at 16 kHz
VOICED = 0.02


def _onsets(loudness: np.ndarray, min_gap: int = 25) -> list[int]:
    """Frames where a voiced stretch begins after at least `min_gap` quiet frames."""
    onsets, quiet = [], min_gap
    for i, level in enumerate(loudness):
        if level > VOICED:
            if quiet >= min_gap:
                onsets.append(i)
            quiet = 0
        else:
            quiet += 1
    return onsets


def lag_frames(audio_level: np.ndarray, mouth: np.ndarray, most: int = 10) -> int:
    """The lag (frames) at which the mouth best follows the sound's loudness; positive: the mouth comes later."""
    a = (audio_level - audio_level.mean()) / (audio_level.std() + 1e-9)
    m = (mouth - mouth.mean()) / (mouth.std() + 1e-9)
    scores = {lag: float(np.mean(a[: len(a) - lag] * m[lag:])) if lag >= 0 else float(np.mean(a[-lag:] * m[: len(m) + lag]))
              for lag in range(-most, most + 1)}
    return max(scores, key=scores.get)


async def one_voice(engines, config, voice: str) -> tuple[list[float], int]:
    from agent.conversation import Conversation
    from models.arkit import INDEX

    say = speaker(voice)
    parts = [np.zeros(int(0.5 * SPEECH_RATE), np.float32)]
    for phrase in PHRASES:
        parts += [say(phrase).astype(np.float32), np.zeros(int(PAUSE_S * SPEECH_RATE), np.float32)]
    audio = np.concatenate(parts)
    conversation = Conversation("takeover", engines.stages_for(config.tenant(config.default_tenant)), config.hear, lambda event: None,
                                config.render.fps)
    conversation.person_joins()
    loop = asyncio.get_running_loop()
    start = loop.time()
    levels_in, levels_out, mouth = [], [], []
    tail = int(2.0 * SPEECH_RATE / CHUNK)
    for i in range(len(audio) // CHUNK + tail):
        chunk = audio[i * CHUNK : (i + 1) * CHUNK] if i * CHUNK < len(audio) else np.zeros(CHUNK, np.float32)
        conversation.person_speaks(chunk)
        levels_in.append(float(np.abs(chunk).max()) if chunk.size else 0.0)
        out = conversation.output.next_audio_frame().astype(np.float32) / 32768
        levels_out.append(float(np.sqrt(np.mean(out ** 2))) * 4)
        mouth.append(float(conversation.output.playout.pose()[INDEX["jawOpen"]]))  # the face model's own, before idle life
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
    await conversation.close()
    ins, outs = _onsets(np.array(levels_in)), _onsets(np.array(levels_out))
    delays = []
    for onset in ins:
        later = [o for o in outs if o >= onset]
        if later:
            delays.append(20.0 * (later[0] - onset))
    voiced = np.array(levels_out) > 0
    return delays, lag_frames(np.array(levels_out)[voiced], np.array(mouth)[voiced])


def block_error(face_model, audio: np.ndarray, lookahead_s: float) -> tuple[float, float]:
    """How far the live blocks' poses are from the face model hearing each phrase whole (its usual way, a sentence at
    a time): mean absolute difference of the mouth's weights over voiced frames, and the jaw's correlation."""
    from agent.animate.live import LiveSpeech
    from models.arkit import ARKIT_NAMES, INDEX

    live = LiveSpeech(face_model, 0, lookahead_s)
    whole = face_model.animate(audio, SPEECH_RATE)
    padded = np.concatenate([audio, np.zeros(SPEECH_RATE, np.float32)])
    blocks = [live.animate(window) for window in live.feed(padded)]
    frames = int(round(0.32 * face_model.fps))
    got = np.concatenate([b.weights if b is not None else np.zeros((frames, whole.shape[1]), np.float32) for b in blocks])[: len(whole)]
    voiced = np.array([b is not None for b in blocks for _ in range(frames)])[: len(got)]
    mouth = [i for i, name in enumerate(ARKIT_NAMES) if name.startswith(("jaw", "mouth"))]
    error = float(np.abs(got[voiced][:, mouth] - whole[: len(got)][voiced][:, mouth]).mean())
    jaw = float(np.corrcoef(got[voiced, INDEX["jawOpen"]], whole[: len(got)][voiced, INDEX["jawOpen"]])[0, 1])
    return error, jaw


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG, load_config
    from agent.engines import Engines
    from models.devices import use_models_offline

    parser = argparse.ArgumentParser(prog="avatar-agent benchmark takeover", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    args = parser.parse_args(argv)
    config = load_config(args.config)
    use_models_offline(config.threads)
    engines = Engines.load(config)
    delays, lags = [], []
    for voice in VOICES:
        found, lag = asyncio.run(one_voice(engines, config, voice))
        delays += found
        lags.append(lag * 20)
        print(f"{voice}: {len(found)} phrases, onset -> heard {statistics.median(found):.0f} ms median; mouth lags the sound {lag * 20} ms",
              flush=True)
    print(f"the person's speech onset -> the customer hears it (output port, before the network): median {statistics.median(delays):.0f} ms, "
          f"p95 {pct(delays, 95):.0f} ms, over {len(delays)} phrases")
    print(f"lips against sound (positive: the mouth later): {', '.join(f'{lag:+d} ms' for lag in lags)} per voice, at 20 ms steps")
    from agent.animate.live import LOOKAHEAD_S

    print("| look-ahead held | mouth weights vs the phrase heard whole, mean abs difference | jaw correlation |\n|---|---|---|")
    for lookahead in (0.0, 0.16, LOOKAHEAD_S, 0.64):
        scores = [block_error(engines.face_model, speaker(voice)(phrase).astype(np.float32), lookahead) for voice in VOICES for phrase in PHRASES]
        print(f"| {int(lookahead * 1000)} ms{' (default)' if lookahead == LOOKAHEAD_S else ''} | {np.mean([e for e, _ in scores]):.3f} | "
              f"{np.mean([j for _, j in scores]):.2f} |", flush=True)
    engines.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
