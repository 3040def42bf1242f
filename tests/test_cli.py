import subprocess
import sys

import pytest

from agent.cli import build_parser, main


JOBS = ["serve", "check", "config", "drain-node", "benchmark", "render", "finetune-faq", "prepare-data", "train", "evaluate", "avatar"]


def test_the_parser_has_exactly_these_jobs():
    jobs = next(a for a in build_parser()._actions if a.dest == "job")
    assert sorted(jobs.choices) == sorted(JOBS)


@pytest.mark.parametrize("job", JOBS)
def test_every_job_has_help(job, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([job, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: avatar-agent {job}") and len(out.splitlines()) > 4


@pytest.mark.parametrize("job", ["build", "sheet"])
def test_every_avatar_job_has_help(job, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["avatar", job, "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: avatar-agent avatar {job}")


def test_check_reports_broken_faq_without_traceback(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer\n,missing question\n")
    (tmp_path / "agent.yaml").write_text("answer:\n  faq_path: faq.csv\n")
    result = subprocess.run([sys.executable, "-m", "agent.cli", "check", "--config", str(tmp_path / "agent.yaml")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "faq.csv:2: empty question" in result.stderr and "Traceback" not in result.stderr


def test_check_accepts_the_shipped_config(capsys):
    assert main(["check"]) == 0
    assert "FAQ OK: 8 entries" in capsys.readouterr().out


def test_json_logs_carry_the_session(capsys):
    import json
    import logging

    from agent.cli import setup_logging

    setup_logging("INFO", "json")
    logging.LoggerAdapter(logging.getLogger("agent.test"), {"session": "abc123"}).info("turn %d heard %r", 1, "hello")
    logging.getLogger("agent.test").warning("no session here")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["session"] == "abc123" and lines[0]["message"] == "turn 1 heard 'hello'" and lines[0]["level"] == "INFO"
    assert lines[1]["session"] == "-"
    setup_logging("INFO", "text")
