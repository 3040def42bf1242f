"""Command line: `avatar-agent <job> --help` for each job."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import DEFAULT_CONFIG, ConfigError, load_config


class _SessionDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session"):
            record.session = "-"
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_SessionDefault())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(session)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aioice", "aiortc", "faster_whisper", "httpx", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _serve(args) -> int:
    from aiohttp import web

    from .engines import Engines
    from .transport.server import create_app

    config = load_config(args.config)
    if args.port:
        config.server.port = args.port
    if args.host:
        config.server.host = args.host
    engines = Engines.load(config)
    app = create_app(config, engines)
    logging.getLogger("agent").info("serving on http://%s:%d", config.server.host, config.server.port)
    web.run_app(app, host=config.server.host, port=config.server.port, print=None)
    engines.close()
    return 0


def _check(args) -> int:
    from .answer.faq import load_faq

    config = load_config(args.config)
    entries = load_faq(config.answer.faq_path)
    print(f"config OK: {args.config}\nFAQ OK: {len(entries)} entries in {config.answer.faq_path}")
    return 0


def _benchmark(args) -> int:
    from benchmarks.latency import main as latency_main

    return latency_main(["--config", str(args.config), "--runs", str(args.runs)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-agent", description="Real-time talking-avatar agent for customer service.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")

    serve = jobs.add_parser("serve", help="run the agent: web client, WebRTC calls, metrics", description="Serve browsers over WebRTC.")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(run=_serve)

    check = jobs.add_parser("check", help="validate the config and FAQ, then exit", description="Validate config and FAQ files.")
    check.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    check.set_defaults(run=_check)

    bench = jobs.add_parser("benchmark", help="measure end-of-speech to first-audio latency and render fps", description="Latency and render benchmark on recorded questions.")
    bench.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config (default: %(default)s)")
    bench.add_argument("--runs", type=int, default=5, help="questions to time (default: %(default)s)")
    bench.set_defaults(run=_benchmark)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # FAQ or model problems at start-up: say what, not a traceback
        from .answer.faq import FaqError
        from .hear.transcriber import AsrModelMissing
        from .speak.piper_voice import VoiceUnavailable

        if isinstance(exc, (FaqError, AsrModelMissing, VoiceUnavailable)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
