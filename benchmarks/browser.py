"""Glass to glass, as the customer feels it: real headless-Chromium calls to `avatar-agent serve`.

Chromium's fake microphone plays a recorded conversation (espeak-ng questions,
pauses for the answers, and interruptions spoken over long answers). The page
measures everything on its own clock (performance.now()):
- the microphone's level (what the customer says) and the level of the audio
  received from the agent, every 10 ms, with WebAudio analysers;
- the mouth region of every received video frame (requestVideoFrameCallback), or of every frame the page
  draws itself (--where browser: the page as customers get it, read back as it draws).
From these: end of customer speech -> first answer audio heard, -> first frame
with the mouth moving, and for each interruption, the customer's first sound ->
the avatar's audio silent and its mouth at rest.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.audio import write_wav
from benchmarks.latency import QUESTIONS, pct
from benchmarks.speech_sets import spoken

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "artifacts"
RATE = 48_000
TICK_MS = 10
ANSWER_WAIT_S = 14.0  # room for the whole answer after each question
LONG_QUESTION = "How do I reset my password?"  # its answer runs several seconds: room to interrupt it
INTERRUPTION = "Sorry, wait a moment please."
INTERRUPT_AFTER_S = 4.5  # after the end of the question: inside the answer's long second sentence on any machine we measured

# Runs in the page before the widget: keeps the microphone stream, and once the agent's stream
# arrives, samples both levels every 10 ms and the mouth region of every video frame.
PROBE_JS = """
(() => {
  window.probe = { mic: [], remote: [], mouth: [] };
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    window.probe.micStream = stream;
    return stream;
  };
  const ctx = new AudioContext();
  function level(stream, into) {
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      into.push([performance.now(), Math.sqrt(sum / buf.length)]);
    }, %(tick)d);
  }
  const waitForCall = setInterval(() => {
    const video = document.getElementById('avatar-video');
    const remote = video && video.srcObject;
    if (!window.probe.micStream || !remote || remote.getAudioTracks().length === 0) return;
    clearInterval(waitForCall);
    ctx.resume();
    level(window.probe.micStream, window.probe.mic);
    level(new MediaStream(remote.getAudioTracks()), window.probe.remote);
    const canvas = document.createElement('canvas');
    canvas.width = 48; canvas.height = 32;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    const sampleMouth = (source, width, height, at) => {
      g.drawImage(source, width * 0.35, height * 0.58, width * 0.3, height * 0.2, 0, 0, 48, 32);
      const px = g.getImageData(0, 0, 48, 32).data;
      const grey = new Array(48 * 32);
      for (let i = 0; i < grey.length; i++) grey[i] = (px[4 * i] + px[4 * i + 1] + px[4 * i + 2]) / 3;
      window.probe.mouth.push([at, grey]);
    };
    const onFrame = (now, meta) => {
      if (video.videoWidth) sampleMouth(video, video.videoWidth, video.videoHeight, meta.presentationTime || now);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    // A page that draws the avatar itself: its canvas, read right after each drawing (the page as customers get it:
    // the drawing buffer is not kept for reading back, so it is read in the same task).
    const waitForFace = setInterval(() => {
      const face = window.avatarFace;
      if (!face) return;
      clearInterval(waitForFace);
      const drawn = document.getElementById('avatar-canvas');
      const draw = face.draw.bind(face);
      face.draw = () => {
        draw();
        sampleMouth(drawn, drawn.width, drawn.height, performance.now());
      };
    }, 50);
  }, 50);
})();
""" % {"tick": TICK_MS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServedAgent:
    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def agent_server(log_name: str, *extra_args: str):
    """`avatar-agent serve` in a subprocess (its log in tests/artifacts/); yields it once /healthz answers."""
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / log_name, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "serve", "--port", str(port), *extra_args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            assert proc.poll() is None, (LOGS / log_name).read_text()
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        yield ServedAgent(url, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM drains: at once with no call left, else up to server.drain_s
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def chromium_args(fake_audio=None) -> list[str]:
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
    return args + ([f"--use-file-for-fake-audio-capture={fake_audio}"] if fake_audio else [])


def conversation_wav(path: Path, turns: int) -> float:
    """Greeting pause, then `turns` questions each followed by a pause for the answer, then interruptions over long answers."""
    silence = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
    parts = [silence(6.0)]
    for i in range(turns):
        parts += [spoken(QUESTIONS[i % len(QUESTIONS)], RATE), silence(ANSWER_WAIT_S)]
    for _ in range(max(3, turns // 3)):
        parts += [spoken(LONG_QUESTION, RATE), silence(INTERRUPT_AFTER_S), spoken(INTERRUPTION, RATE), silence(ANSWER_WAIT_S)]
    talk = sum(len(part) for part in parts) / RATE
    parts.append(silence(30.0))  # Chromium loops the file: never start again within the run
    write_wav(path, np.concatenate(parts), RATE)
    return talk


def _segments(series: np.ndarray, threshold: float, min_gap_ms: float) -> list[tuple[float, float]]:
    """(start, end) times where the level is above threshold, joining gaps shorter than min_gap_ms."""
    loud = series[:, 1] > threshold
    out: list[list[float]] = []
    for t, on in zip(series[:, 0], loud):
        if not on:
            continue
        if out and t - out[-1][1] <= min_gap_ms:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]


def analyse(probe: dict, turns: int) -> dict:
    mic, remote = np.array(probe["mic"]), np.array(probe["remote"])
    times = np.array([t for t, _ in probe["mouth"]])
    mouths = np.array([g for _, g in probe["mouth"]], np.float32)
    # Articulation changes the mouth region from frame to frame (syllables come at 4-5 Hz); idle life
    # (head sway, breathing) changes it slowly. A frame is "moving" when it and the next both change.
    change = np.r_[0.0, np.abs(np.diff(mouths, axis=0)).mean(axis=1)]
    quiet = np.interp(times, remote[:, 0], remote[:, 1]) < 0.003
    threshold = max(1.5, 2 * float(np.percentile(change[quiet], 90))) if quiet.sum() > 25 else 1.5
    moving = (change > threshold) & (np.r_[change[1:], 0.0] > threshold)

    speech = _segments(mic, 0.01, 500)
    questions, interruptions = speech[:turns], speech[turns:]
    answers = _segments(remote, 0.01, 400)
    audio_latency, mouth_latency = [], []
    for _, end in questions:
        first_audio = next((a for a, _ in answers if a > end), None)
        first_mouth = next((t for t, m in zip(times, moving) if m and t > end), None)
        if first_audio is not None:
            audio_latency.append(first_audio - end)
        if first_mouth is not None:
            mouth_latency.append(first_mouth - end)
    barge_audio, barge_mouth = [], []
    for i in range(0, len(interruptions) - 1, 2):  # pairs: the long question, then the interruption
        onset = interruptions[i + 1][0]
        playing = next(((a, b) for a, b in answers if a < onset < b + 100), None)
        if playing is None:
            continue  # the avatar was not speaking when the customer cut in: nothing to measure
        barge_audio.append(playing[1] - onset)
        later = [(t, m) for t, m in zip(times, moving) if t > onset]
        rest_at = next((t for k, (t, m) in enumerate(later) if not any(mm for _, mm in later[k : k + 5])), None)
        if rest_at is not None:
            barge_mouth.append(rest_at - onset)
    return {"audio": audio_latency, "mouth": mouth_latency, "barge_audio": barge_audio, "barge_mouth": barge_mouth,
            "offsets": mouth_offsets(remote, times, _openness(times, mouths, remote), answers),
            "drawn_offsets": mouth_offsets(remote, np.array([t for t, _ in probe.get("drawn", [])]),
                                           np.array([jaw for _, jaw in probe.get("drawn", [])]), answers) if probe.get("drawn") else [],
            "fps": (len(times) - 1) / ((times[-1] - times[0]) / 1000) if len(times) > 1 else 0.0}


MIN_CORRELATION = 0.3
PEAK_PROMINENCE = 0.2


def _openness(times: np.ndarray, mouths: np.ndarray, remote: np.ndarray) -> np.ndarray:
    """How far the mouth region of each frame is from the mouth at rest (its median while the avatar is silent),
    whichever way the pixels go (the inside darker, the teeth and lips lighter)."""
    quiet = np.interp(times, remote[:, 0], remote[:, 1]) < 0.003
    rest = np.median(mouths[quiet], axis=0) if quiet.sum() > 10 else np.median(mouths, axis=0)
    return np.abs(mouths - rest).mean(axis=1)


def mouth_offsets(remote: np.ndarray, times: np.ndarray, openness: np.ndarray, answers: list[tuple[float, float]],
                  max_lag_ms: int = 300) -> list[float]:
    """Per answer: the lag (ms, + = the mouth later than the sound) at which the mouth's openness best follows the
    loudness of the audio heard, both on a 10 ms grid (cross-correlation of the two, normalised)."""
    offsets = []
    for start, end in answers:
        if end - start < 1500:
            continue
        grid = np.arange(start, end, TICK_MS)
        loud = np.interp(grid, remote[:, 0], remote[:, 1])
        loud = np.convolve(loud, np.ones(4) / 4, mode="same")  # syllables, not single 10 ms ticks
        shown = np.interp(grid, times, openness)
        if shown.std() < 1e-6 or loud.std() < 1e-6:
            continue
        loud, shown = (loud - loud.mean()) / loud.std(), (shown - shown.mean()) / shown.std()
        lags = range(-max_lag_ms // TICK_MS, max_lag_ms // TICK_MS + 1)
        scores = [np.mean(loud[max(0, -k) : len(loud) - max(0, k)] * shown[max(0, k) : len(shown) - max(0, -k)]) for k in lags]
        best = int(np.argmax(scores))
        around = scores[max(0, best - 10) : best + 11]
        # No reading where the mouth followed this stretch of sound at no one lag: a weak peak, or a slope
        # with no peak (syllables come every 200-250 ms, so a real peak stands clear of its 100 ms neighbours).
        if scores[best] >= MIN_CORRELATION and scores[best] - min(around) > PEAK_PROMINENCE:
            offsets.append(float(list(lags)[best] * TICK_MS))
    return offsets


def config_for(where: str, config: str | None, folder: Path) -> Path:
    """The agent's config (or `config`), with the face drawn `where`."""
    import yaml

    from agent.config import DEFAULT_CONFIG

    source = Path(config or DEFAULT_CONFIG).resolve()
    raw = yaml.safe_load(source.read_text())
    raw["answer"]["faq_path"] = str((source.parent / raw["answer"]["faq_path"]).resolve())
    raw["answer"].pop("versions_dir", None)
    raw.setdefault("render", {})["where"] = where
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _call(chromium: str, args: list[str], url: str, seconds: float, env: dict | None = None, stats: bool = False) -> dict:
    """One call from the page at `url` (the widget's Call button), recorded for `seconds`: the probe's samples, and
    with `stats` the candidate pair the call's media used (probe["transport"])."""
    from playwright.sync_api import sync_playwright

    from benchmarks.deploy import CALL_STATS_JS, KEEP_PEERS_JS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args, **({"env": env} if env else {}))
        page = browser.new_page()
        if stats:
            page.add_init_script(KEEP_PEERS_JS)
        page.add_init_script(PROBE_JS)
        page.goto(url)
        page.click("#call")
        page.wait_for_timeout(int(seconds * 1000))
        probe = page.evaluate("({ mic: window.probe.mic, remote: window.probe.remote, mouth: window.probe.mouth, "
                              "drawn: window.avatarFace ? window.avatarFace.log : [], render: window.avatarRender })")
        if stats:
            probe["transport"] = page.evaluate(CALL_STATS_JS)
        if os.environ.get("BENCHMARK_PROBE_DUMP"):
            import json

            Path(os.environ["BENCHMARK_PROBE_DUMP"]).write_text(json.dumps(probe))
        page.click("#hangup")
        browser.close()
    return probe


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (make test installs it)")
    return chromium


def _analysed(probe: dict, turns: int, where: str) -> dict:
    chosen = (probe.get("render") or {}).get("where")
    if chosen != where:  # e.g. a page that could not load three.js gets video: its numbers would be another mode's
        raise SystemExit(f"asked for the face drawn in the {where}, the call drew it in the {chosen}: {probe.get('render')}")
    result = analyse(probe, turns)
    result["where"] = where
    return result


def run(turns: int, config: str | None, where: str = "server") -> dict:
    chromium = _chromium()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "conversation.wav"
        seconds = conversation_wav(wav, turns) + 3.0
        with agent_server("benchmark-browser-server.log", "--config", str(config_for(where, config, Path(tmp)))) as server:
            probe = _call(chromium, chromium_args(wav), server.url, seconds)
    return _analysed(probe, turns, where)


def run_relay(turns: int) -> dict[str, dict]:
    """The deployment of docs/deploy.md (benchmarks/deploy.py: Caddy, coturn, deploy/agent.yaml) and calls to its one
    agent, one after the other: a first call that is not reported (it fills the speech cache with the answers, as a
    box's first calls do), then `direct` from a page on the agent's machine (plain HTTP on 127.0.0.1, media straight
    to the agent), then `relay` from the customer's side (the widget on the company's https page through Caddy,
    media only through coturn)."""
    from benchmarks.deploy import TENANT, deployment, missing, widget_page

    reason = missing()
    if reason:
        raise SystemExit(f"--relay {reason}")
    _chromium()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "conversation.wav"
        seconds = conversation_wav(wav, turns) + 3.0
        with deployment(Path(tmp) / "deploy", name="benchmark-deploy") as d:
            direct_url = f"{d.agent_url}/?tenant={TENANT}"
            _call(d.chromium(d.server_ns), chromium_args(wav), direct_url, seconds)
            direct = _call(d.chromium(d.server_ns), chromium_args(wav), direct_url, seconds, stats=True)
            relay = _call(d.chromium(), chromium_args(wav) + d.resolver_args(), d.write_page("benchmark.html", widget_page("relay")),
                          seconds, env=d.chromium_env(), stats=True)
    results = {"direct": _analysed(direct, turns, "server"), "relay": _analysed(relay, turns, "server")}
    for name, probe in (("direct", direct), ("relay", relay)):
        results[name]["transport"] = probe["transport"]
    return results


def _print(r: dict, turns: int, title: str) -> None:
    shown = "video received" if r["where"] == "server" else "the page drew the avatar"
    print(f"\n{title}, {len(r['audio'])} of {turns} questions answered ({shown} at {r['fps']:.1f} fps):")
    for label, key in (("end of speech -> first answer audio heard", "audio"), ("end of speech -> first moving-mouth frame", "mouth"),
                       ("barge-in: customer's first sound -> avatar audio silent", "barge_audio"),
                       ("barge-in: customer's first sound -> mouth at rest", "barge_mouth"),
                       ("audio-to-mouth offset, pixels of the mouth (+ = mouth late)", "offsets"),
                       ("audio-to-mouth offset, jawOpen of each drawn pose", "drawn_offsets")):
        values = r[key]
        if values and key.endswith("offsets"):  # signed: its middle, and how far out it goes either way
            print(f"  {label:<58} p50 {statistics.median(values):5.0f} ms   p95 of |offset| {pct([abs(v) for v in values], 95):4.0f} ms   n={len(values)}")
        elif values:
            print(f"  {label:<58} p50 {statistics.median(values):5.0f} ms   p95 {pct(values, 95):5.0f} ms   n={len(values)}")
        else:
            print(f"  {label:<58} no samples")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.browser", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10, help="questions to time (default: %(default)s)")
    parser.add_argument("--config", help="agent config (default: configs/agent.yaml)")
    parser.add_argument("--where", choices=["server", "browser"], default="server", help="where the face is drawn (default: %(default)s)")
    parser.add_argument("--relay", action="store_true",
                        help="docs/deploy.md's deployment (root, caddy, coturn): one call direct, one through Caddy's TLS "
                             "and coturn's relay only, to the same agent in the same run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.relay:
        if args.config or args.where != "server":
            parser.error("--relay runs deploy/agent.yaml with server video; --config and --where do not apply")
        results = run_relay(args.turns)
        print(f"\n({time.perf_counter() - started:.0f} s in all: a first call to warm the agent, not reported, then the two)")
        _print(results["direct"], args.turns, "glass to glass, headless Chromium, direct: page on the agent's machine, media to the agent")
        _print(results["relay"], args.turns, "glass to glass, headless Chromium, relay: the widget over HTTPS through Caddy, media only through coturn")
        for name in ("direct", "relay"):
            t = results[name]["transport"]
            local, remote = t.get("local") or {}, t.get("remote") or {}
            print(f"  {name}: media {local.get('type')}{'/' + local['relayProtocol'] if local.get('relayProtocol') else ''} "
                  f"{local.get('address')} -> {remote.get('type')} {remote.get('address')}:{remote.get('port')} (iceTransportPolicy {t.get('policy')})")
        for label, key in (("first audio", "audio"), ("first moving mouth", "mouth")):
            a, b = results["direct"][key], results["relay"][key]
            if a and b:
                print(f"  relay - direct, {label:<20} p50 {statistics.median(b) - statistics.median(a):+5.0f} ms")
        return 0
    r = run(args.turns, args.config, args.where)
    _print(r, args.turns, f"glass to glass, headless Chromium, face drawn in the {r['where']} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
