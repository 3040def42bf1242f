"""The docs agree with the code: the configuration reference is the models' own, every key says what it does, the
shipped config file sets the code's defaults, and what README.md and docs/*.md name in code (commands, flags,
files, config keys) exists.

Run `python -m tests.test_docs` to list every docs error at once.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from agent.cli import build_parser, main
from agent.config import DEFAULT_CONFIG, AgentConfig, TenantConfig, load_config
from agent.config_reference import REGENERATE, keys, models, reference_markdown, resolve_key

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"


# --- the reference page ---------------------------------------------------------------------------------------


def test_the_configuration_page_is_the_reference_command_s_output(capsys):
    assert main(["config", "--reference"]) == 0
    printed = capsys.readouterr().out
    assert printed == reference_markdown()
    assert PAGE.exists(), f"docs/configuration.md is missing: run `{REGENERATE}`"
    assert PAGE.read_text() == printed, f"docs/configuration.md does not match the config models: run `{REGENERATE}`"


def test_the_reference_names_every_key_with_its_type_default_and_description():
    page = reference_markdown()
    assert page.startswith("# Configuration reference\n") and "avatar-agent config --reference" in page.splitlines()[2]
    assert page.rstrip().endswith("[the README](../README.md) and [the other guides in docs/](./).")
    rows = {line.split("|")[1].strip().strip("`"): line for line in page.splitlines() if line.startswith("| `")}
    for key in keys():
        if "." in key.path:
            assert key.path in rows, f"{key.path} is not in the reference"
        else:  # a section of the file is a heading, a top-level value a row
            assert key.path in rows or re.search(rf"^## `{re.escape(key.path)}(\.<id>)?`$", page, re.M), key.path
    assert "server.limits.connect_s" in rows and "tenants.<id>.allowed_origins" in rows and "threads" in rows
    assert "| `server.max_sessions` | integer (at least 1) | `3` |" in rows["server.max_sessions"]
    assert "| `server.port` | integer (1 to 65535) | `8080` |" in rows["server.port"]
    assert "| required |" in rows["answer.faq_path"]


def test_the_config_job_without_a_flag_says_what_to_ask_for(capsys):
    assert main(["config"]) == 2
    assert "--reference" in capsys.readouterr().err


@pytest.mark.parametrize("model", models(), ids=lambda m: m.__name__)
def test_every_key_has_a_description(model):
    missing = [name for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"{model.__name__}: give these fields a description in agent/config.py: {', '.join(missing)}"


def test_every_model_is_reached_from_the_config():
    names = {m.__name__ for m in models()}
    assert names >= {"AgentConfig", "ServerConfig", "PacketTimes", "CallLimits", "TurnConfig", "IceServer", "HearConfig",
                     "AnswerConfig", "SpeakConfig", "AnimateConfig", "RenderConfig", "BackdropConfig", "LoadLimit",
                     "HandoffConfig", "ClusterConfig", "TenantConfig"}


def test_dotted_keys_resolve_in_the_models():
    for good in ["server.limits.connect_s", "tenants.<id>.allowed_origins", "tenants.demo.backdrop.top", "threads",
                 "server.ice_servers[].urls", "server.turn.ttl_s", "cluster.admission", "render.where", "tenants"]:
        assert resolve_key(good) is not None, good
    for bad in ["server.limit.connect_s", "render.colour", "tenants.<id>.nope", "server.port.x", "hear.asr_threads[]"]:
        assert resolve_key(bad) is None, bad


# --- the shipped config file and the code's defaults --------------------------------------------------------

DEPLOYMENT_SPECIFIC = {"answer.faq_path", "tenants"}  # what every deployment sets for itself
DEMO_TENANT_OWN = {"allowed_origins", "operator_token_env"}


def _disagreements(raw: dict, model, prefix: str, skip: set[str]) -> list[str]:
    """Keys set in the file whose value is not the model's default."""
    from agent.config_reference import _nested

    found = []
    for name, value in raw.items():
        path = prefix + name
        if path in skip:
            continue
        field = model.model_fields[name]
        sub, how = _nested(field.annotation)
        if sub is not None and how == "" and isinstance(value, dict):
            found += _disagreements(value, sub, path + ".", skip)
            continue
        adapter = TypeAdapter(field.annotation)
        default = adapter.dump_python(field.get_default(call_default_factory=True), mode="json")
        if field.is_required() or adapter.dump_python(adapter.validate_python(value), mode="json") != default:
            found.append(f"{path}: the file says {value!r}, the code's default is {default!r}")
    return found


def test_the_shipped_config_loads():
    config = load_config(DEFAULT_CONFIG)
    assert config.answer.faq_path.exists() and "demo" in config.tenants


def test_the_shipped_config_sets_the_code_s_defaults():
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    wrong = _disagreements(raw, AgentConfig, "", DEPLOYMENT_SPECIFIC)
    wrong += _disagreements(raw["tenants"]["demo"], TenantConfig, "tenants.demo.", {f"tenants.demo.{k}" for k in DEMO_TENANT_OWN})
    assert not wrong, "configs/agent.yaml and agent/config.py disagree (change one of them):\n" + "\n".join(wrong)


# --- the docs walker ----------------------------------------------------------------------------------------

SECTIONS = ("server", "hear", "answer", "speak", "animate", "render", "cluster", "handoff", "tenants")
TOP_KEYS = ("threads", "models_nice")
KEY = re.compile(rf"^(?:{'|'.join(SECTIONS)})\.[\w<>\[\]*.-]*$")
# a path with a slash is checked when it starts in one of these folders or ends in one of these extensions
TOP_FOLDERS = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} | {"deploy", "docs"}
EXTENSIONS = {"py", "yaml", "yml", "md", "csv", "jsonl", "json", "sh", "js", "mjs", "html", "css", "toml", "txt", "onnx",
              "glb", "gltf", "cfg", "ini", "conf", "service", "frag", "vert"}
BARE_EXTENSIONS = {"py", "yaml", "yml", "md", "csv", "jsonl", "sh", "js", "mjs", "html", "css", "toml"}  # a name alone
GENERATED = (".venv/", "build/", "tests/artifacts/", "node_modules/", "../")  # made by setup, tests or jobs
PLACEHOLDER = re.compile(r"[<>{}*$~?%\[\]]|\.\.\.|…")
PRUNE = {".git", ".venv", "node_modules", "__pycache__", "build", ".pytest_cache", "artifacts"}


def _tree() -> set[str]:
    """Every file and folder of the working tree, as paths relative to its root, and every file's name alone."""
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in PRUNE]
        here = Path(folder).relative_to(ROOT).as_posix()
        for name in dirs + files:
            found.add(name if here == "." else f"{here}/{name}")
        found.update(files)
    return found


def _in_tree(path: str, doc: Path, tree: set[str]) -> bool:
    """From the root, from the doc's folder, or the tail of a longer path (`output/sinks.py` in a paragraph
    about agent/, `faq/demo.csv` in a row about configs/)."""
    path = path.rstrip("/")
    return (ROOT / path).exists() or (doc.parent / path).exists() or path in tree or any(p.endswith("/" + path) for p in tree)


def _code(text: str):
    """(line number, code, in a fenced block) for every fenced block's lines and every inline code span."""
    fence = None
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is None and re.match(r"^(```|~~~)", stripped):
            fence = stripped[:3]
            continue
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
                yield from _joined(block)
                block = []
            else:
                block.append((number, line))
            continue
        for match in re.finditer(r"(`+)(.+?)\1", line):
            yield number, match.group(2).strip(), False
    yield from _joined(block)


def _joined(block: list[tuple[int, str]]):
    """A fenced block's lines, with shell continuations (a trailing backslash) joined."""
    pending, start = "", 0
    for number, line in block:
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line, True
        pending = ""
    if pending:
        yield start, pending, True


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _placeholder(token: str) -> bool:
    return bool(PLACEHOLDER.search(token)) or token.isupper() or token in ("JOB", "...")


def _command_errors(code: str, parser: argparse.ArgumentParser) -> list[str]:
    errors = []
    for match in re.finditer(r"(?:^|(?<=[\s/(]))avatar-agent(?=\s|$)", code):
        rest = re.split(r"\s(?:\||&&|\|\||;|>|2>|#)\s?|\)$", code[match.end():] + " ", maxsplit=1)[0]
        try:
            tokens = shlex.split(rest, comments=False)
        except ValueError:
            tokens = rest.split()
        for i, token in enumerate(tokens):  # prose around it: `(avatar-agent serve, cluster.engine: ray)`
            if token.endswith((",", ";", ")")) or token.endswith(".") and not token.startswith("-"):
                tokens = tokens[:i] + [token.rstrip(",;).")]
                break
        errors += _tokens_errors(tokens, parser, "avatar-agent")
    return errors


def _tokens_errors(tokens: list[str], parser: argparse.ArgumentParser, name: str) -> list[str]:
    subparsers = _subparsers(parser)
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    skip_next = False
    for i, token in enumerate(tokens):
        token = token.strip("[]")  # usage lines: `benchmark [--sessions N] [--cold]`
        if not token:
            continue
        if skip_next:
            skip_next = False
            continue
        if token.startswith("-") and token != "-":
            flag = token.split("=", 1)[0]
            if _placeholder(flag):
                continue
            action = parser._option_string_actions.get(flag)
            if action is None:
                return [f"`{name}` has no option {flag}"]
            skip_next = "=" not in token and _takes_value(action)
            continue
        if _placeholder(token):
            return []  # `avatar-agent <job> --help`: nothing more to check
        if subparsers is not None:
            if token not in subparsers.choices:
                return [f"`{name}` has no job {token!r} (jobs: {', '.join(subparsers.choices)})"]
            return _tokens_errors(tokens[i + 1:], subparsers.choices[token], f"{name} {token}")
        if positionals:
            positional = positionals.pop(0)
            if positional.choices and token not in positional.choices:
                return [f"`{name}` {positional.dest} is one of {', '.join(positional.choices)}, not {token!r}"]
    return []


def _path_errors(code: str, doc: Path, tree: set[str]) -> list[str]:
    errors = []
    if KEY.match(re.split(r"[\s:=,]", code.strip(), maxsplit=1)[0]):
        return []  # `render.avatar: heads/me.glb`: a value in someone's config file
    for token in code.split():
        token = token.strip("\"'(),;").removeprefix("./")
        token = re.sub(r":\d+(-\d+)?$", "", token).rstrip(".:")
        if not token or "://" in token or "=" in token or ":" in token or token.startswith(("/", "-", "@")) \
                or _placeholder(token) or token.startswith(GENERATED):
            continue
        extension = token.rsplit(".", 1)[-1] if "." in token.rsplit("/", 1)[-1] else ""
        if "/" in token:
            if not (token.split("/", 1)[0] in TOP_FOLDERS or extension in EXTENSIONS):
                continue  # text/plain, audio/opus, ...
            if not _in_tree(token, doc, tree):
                errors.append(f"`{token}` does not exist")
        elif extension in BARE_EXTENSIONS and re.fullmatch(r"[\w.-]+", token) is not None:
            if token not in tree:
                errors.append(f"`{token}` is not a file in the tree")
    return errors


def _key_errors(code: str) -> list[str]:
    token = re.split(r"[\s:=,]", code.strip(), maxsplit=1)[0].rstrip(".")
    if token in TOP_KEYS or not KEY.match(token):
        return []
    if token.rsplit(".", 1)[-1] in EXTENSIONS:
        return []  # a file name such as server.py
    token = re.sub(r"\.\*$", "", token)
    return [] if resolve_key(token) is not None else [f"`{token}` is not a config key (docs/configuration.md lists them)"]


def _link_errors(line: str, doc: Path) -> list[str]:
    errors = []
    for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
        target = target.split("#", 1)[0]
        if target and not re.match(r"^[a-z]+:", target) and not (doc.parent / target).exists():
            errors.append(f"link to {target} does not exist")
    return errors


def doc_errors(doc: Path) -> list[str]:
    """Everything in one Markdown file that names a command, option, file or config key that does not exist."""
    parser, tree = build_parser(), _tree()
    text = doc.read_text()
    errors = []
    for number, code, in_block in _code(text):
        found = _command_errors(code, parser)
        if not in_block:
            found += _path_errors(code, doc, tree) + _key_errors(code)
        errors += [f"{doc.relative_to(ROOT)}:{number}: {e}" for e in found]
    for number, line in enumerate(text.splitlines(), 1):
        errors += [f"{doc.relative_to(ROOT)}:{number}: {e}" for e in _link_errors(line, doc)]
    return errors


def docs() -> list[Path]:
    return [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if p.exists()]


@pytest.mark.parametrize("doc", docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_what_the_docs_name_exists(doc):
    errors = doc_errors(doc)
    assert not errors, f"{len(errors)} things in {doc.name} that the code does not have:\n" + "\n".join(errors)


def test_the_docs_walker_catches_what_it_should(tmp_path):
    parser = build_parser()
    assert _command_errors("avatar-agent serve --port 8080 --config configs/agent.yaml", parser) == []
    assert _command_errors(".venv/bin/avatar-agent --log-level DEBUG benchmark calls --sessions 3 --where browser", parser) == []
    assert _command_errors("avatar-agent avatar build --help | less", parser) == []
    assert _command_errors("avatar-agent <job> --help", parser) == []
    assert _command_errors("avatar-agent config --reference > docs/configuration.md", parser) == []
    assert _command_errors("avatar-agent benchmark calls [--where browser] [--nodes 2]", parser) == []
    assert _command_errors("avatar-agent benchmark [--sessions N] [--colt]", parser)
    assert _command_errors("avatar-agent serv", parser) and _command_errors("avatar-agent serve --prot 1", parser)
    assert _command_errors("avatar-agent benchmark nope", parser) and _command_errors("avatar-agent avatar paint", parser)
    doc = ROOT / "README.md"
    tree = _tree()
    assert _path_errors("agent/config.py", doc, tree) == [] and _path_errors("text/plain", doc, tree) == []
    assert _path_errors("deploy/nowhere.conf", doc, tree) and _path_errors("agent/nothing_here.py", doc, tree)
    assert _path_errors("tenants/<id>/questions.jsonl", doc, tree) == [] and _path_errors("agent.yaml", doc, tree) == []
    assert _path_errors("output/sinks.py", doc, tree) == [] and _path_errors("nothing_here.py", doc, tree)
    assert _path_errors("render.avatar: heads/me.glb", doc, tree) == []
    assert _command_errors("front (avatar-agent serve, cluster.engine: ray)", parser) == []
    assert _key_errors("server.limits.connect_s: 30") == [] and _key_errors("tenants.<id>.voice") == []
    assert _key_errors("render.wher") and _key_errors("server.py") == [] and _key_errors("threads") == []


if __name__ == "__main__":
    problems = [e for doc in docs() for e in doc_errors(doc)]
    print("\n".join(problems) or "no docs errors")
    raise SystemExit(1 if problems else 0)
