"""Logs that say what happened per call: every line carries its session id; text for people, JSON for collectors."""
from __future__ import annotations

import json
import logging

NOISY = ("aioice", "aiortc", "faster_whisper", "httpx", "sentence_transformers")


def printable(text: str, limit: int = 200) -> str:
    """Text from outside (a header, what a page says of itself) as a log line may show it: no control characters, so
    no forged lines, and bounded."""
    return "".join(c if c.isprintable() else "?" for c in str(text)[:limit])


class _SessionDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session"):
            record.session = "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, session, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "session": record.session,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configures this process's root logger (each entry point calls it once: the CLI, a cluster node)."""
    handler = logging.StreamHandler()
    handler.addFilter(_SessionDefault())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s [%(session)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
