"""Operator API: upload a tenant's FAQ, fine-tune it, list versions, activate or roll back, live; the questions the
avatar missed (for tenants that keep them), grouped, assigned to entries as paraphrases or dismissed; the calls in
progress and those waiting for a person, and taking one over through the avatar (`operator_leg.py`).

Every route needs `Authorization: Bearer <token>`, where the token is the one in
the environment variable named by `tenants.<id>.operator_token_env`:
no or unknown token -> 401, a token of another tenant -> 403.
Fine-tuning runs as a separate process (`avatar-agent finetune-faq`), here or
as a Ray task on a cluster node, so calls in progress keep their CPU time and a
crash cannot take the server down.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from .. import metrics
from ..answer.faq import FaqEntry, FaqError, load_faq
from ..answer.questions import QuestionStore, faq_csv, group, with_paraphrases
from ..answer.registry import BASE, VersionError, saved_versions
from ..config import AgentConfig, ConfigError
from ..calls.contract import NoSuchCall
from ..calls.jobs import JobRunner, write_job_status
from ..people.desk import PersonTaken
from .limits import SignInBackoff
from .shared import CALLS, CLIENT, CONFIG, json_error

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 512_000
UPLOAD_TYPES = {"text/csv": ".csv", "application/jsonl": ".jsonl", "application/x-ndjson": ".jsonl"}
JOBS = web.AppKey("operator_jobs", dict)  # job id -> (tenant, Job)
JOB_RUNNER = web.AppKey("job_runner", object)
CONSOLE = Path(__file__).resolve().parents[2] / "web_client" / "operator.html"
CONSOLE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'", "X-Frame-Options": "DENY",
                   "Referrer-Policy": "no-referrer"}
MIN_TOKEN_CHARS = 24
MAKE_A_TOKEN = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


def _tokens(config: AgentConfig) -> dict[str, bytes]:
    """Each tenant's operator token, as bytes (any text compares without error), from its environment variable."""
    tokens = {}
    for tenant, settings in config.tenants.items():
        value = os.environ.get(settings.operator_token_env or "", "")
        if len(value) >= MIN_TOKEN_CHARS:  # a weak one never opens anything (start-up refuses it: check_operator_tokens)
            tokens[tenant] = value.encode("utf-8", "surrogateescape")
    return tokens


def check_operator_tokens(config: AgentConfig) -> None:
    """Refuses to start with a token anyone could guess, or one that two tenants share (either could manage the other)."""
    seen: dict[str, str] = {}
    for tenant, settings in config.tenants.items():
        value = os.environ.get(settings.operator_token_env or "", "")
        if not value:
            continue
        if len(value) < MIN_TOKEN_CHARS:
            raise ConfigError(f"tenants.{tenant}.operator_token_env: the token in {settings.operator_token_env} has "
                              f"{len(value)} characters; use at least {MIN_TOKEN_CHARS}, e.g. from: {MAKE_A_TOKEN}")
        if value in seen:
            raise ConfigError(f"tenants.{tenant} and tenants.{seen[value]} have the same operator token: give each tenant its "
                              f"own ({MAKE_A_TOKEN})")
        seen[value] = tenant


SIGN_IN = web.AppKey("operator_sign_in", SignInBackoff)


def _authorise(request: web.Request) -> str | web.Response:
    """The tenant in the path if the bearer token belongs to it, else the error response. The token is checked first,
    so a valid one is never held back by someone else's failures; failures back off per client address."""
    config = request.app[CONFIG]
    tenant = request.match_info["tenant"]
    backoff, address = request.app[SIGN_IN], request[CLIENT]
    header = request.headers.get("Authorization", "")
    token = (header[7:].strip() if header.lower().startswith("bearer ") else "").encode("utf-8", "surrogateescape")
    owner = next((t for t, value in _tokens(config).items() if token and hmac.compare_digest(value, token)), None)
    if owner is None:
        wait = backoff.wait_s(address)
        if wait > 0:
            return web.json_response({"error": "too many failed sign-ins from this address: wait and try again"}, status=429,
                                     headers={"Retry-After": str(max(1, round(wait)))})
        backoff.failed(address)
        metrics.SIGN_IN_FAILURES.inc()
        log.warning("operator request with a missing or unknown token from %s (%s %s)", address, request.method, request.path)
        return json_error(401, "missing or unknown operator token (Authorization: Bearer <token>)")
    backoff.succeeded(address)
    if tenant not in config.tenants:
        return json_error(404, f"unknown tenant {tenant!r}")
    if owner != tenant:
        return json_error(403, f"this token is not allowed to manage tenant {tenant!r}")
    return tenant


def _uploads(config: AgentConfig, tenant: str) -> Path:
    return config.answer.versions_dir / tenant / "uploads"


async def upload_faq(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    suffix = UPLOAD_TYPES.get(request.content_type)
    if suffix is None:
        return json_error(415, f"send the FAQ as one of {', '.join(UPLOAD_TYPES)}")
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
        return json_error(413, f"FAQ larger than {MAX_UPLOAD_BYTES} bytes")
    body = await _read_at_most(request, MAX_UPLOAD_BYTES)
    if body is None:
        return json_error(413, f"FAQ larger than {MAX_UPLOAD_BYTES} bytes")
    digest = hashlib.sha256(body).hexdigest()
    folder = _uploads(request.app[CONFIG], tenant)
    entries = _validated(body, suffix, "upload")
    if isinstance(entries, web.Response):
        return entries
    path = _save_upload(folder, body, suffix)
    return web.json_response({"tenant": tenant, "entries": len(entries), "sha256": digest, "file": path.name})


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The whole body (a chunked one too: `read(n)` alone may stop at a chunk's end), or None past `limit` bytes."""
    parts, size = [], 0
    while True:
        part = await request.content.read(65_536)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > limit:
            return None
        parts.append(part)


def _validated(body: bytes, suffix: str, label: str) -> list[FaqEntry] | web.Response:
    """The FAQ's entries if `body` reads as one (checked whole in a scratch folder), else the 400 saying why."""
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / f"faq{suffix}"
        candidate.write_bytes(body)
        try:
            return load_faq(candidate)
        except FaqError as exc:  # refused whole: nothing is stored
            return json_error(400, str(exc).replace(str(candidate), label))


def _save_upload(folder: Path, body: bytes, suffix: str) -> Path:
    """Keeps a validated FAQ as the tenant's working one: what the next fine-tune reads."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"faq-{hashlib.sha256(body).hexdigest()[:16]}{suffix}"
    path.write_bytes(body)
    (folder / "latest").write_text(path.name)
    return path


def _working_faq(config: AgentConfig, tenant: str) -> Path:
    """The FAQ the next fine-tune reads: the latest upload, else the tenant's own."""
    folder = _uploads(config, tenant)
    return folder / (folder / "latest").read_text() if (folder / "latest").exists() else config.tenant(tenant).faq_path


async def start_finetune(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    config = request.app[CONFIG]
    running = [job for job, (owner, running_job) in request.app[JOBS].items() if owner == tenant and running_job.returncode is None]
    if running:  # one at a time per tenant: fine-tuning is CPU-heavy and calls come first
        return json_error(409, f"a fine-tune is already running for tenant {tenant!r} (job {running[0]})")
    faq = _working_faq(config, tenant)
    try:
        options = await request.json() if request.can_read_body else {}
        steps = int(options.get("steps", 120))
    except (ValueError, TypeError, AttributeError, OverflowError):  # OverflowError: {"steps": Infinity}
        return json_error(400, 'optional body: {"steps": <number>}')
    if not 1 <= steps <= 5000:
        return json_error(400, "steps must be between 1 and 5000")
    job = uuid.uuid4().hex[:10]
    progress = _jobs_dir(config, tenant) / f"{job}.json"
    progress.parent.mkdir(parents=True, exist_ok=True)
    write_job_status(progress, {"job": job, "state": "starting"})
    running_job = await request.app[JOB_RUNNER].start(
        ["--log-level", "WARNING", "finetune-faq", "--faq", str(faq), "--tenant", tenant,
         *(["--config", str(config.source)] if config.source else []),
         "--versions-dir", str(config.answer.versions_dir), "--steps", str(steps), "--progress-file", str(progress)],
        progress.with_suffix(".log"))
    request.app[JOBS][job] = (tenant, running_job)
    log.info("tenant %s: fine-tune job %s started on %s (%d steps)", tenant, job, faq.name, steps)
    return web.json_response({"job": job, "faq": faq.name, "steps": steps}, status=202)


async def job_status(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    job = request.match_info["job"]
    progress = _jobs_dir(request.app[CONFIG], tenant) / f"{job}.json"
    if not job.isalnum() or not progress.exists():
        return json_error(404, "no such job")
    status = json.loads(progress.read_text())
    running_job = request.app[JOBS].get(job, (None, None))[1]
    if running_job is not None and running_job.returncode not in (None, 0) and status.get("state") != "failed":
        status = {**status, "state": "failed", "error": _last_error_line(progress.with_suffix(".log")) or f"exit code {running_job.returncode}"}
    return web.json_response(status)


def _jobs_dir(config: AgentConfig, tenant: str) -> Path:
    return config.answer.versions_dir / tenant / "jobs"


def _last_error_line(log_path: Path) -> str:
    """The job log's last line that is not a progress bar redraw."""
    try:
        text = log_path.read_bytes()[-8192:].decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line and "step/s" not in line and "s/step" not in line]
    return lines[-1] if lines else ""


def _mark_failed(progress: Path, reason: str) -> None:
    status = json.loads(progress.read_text()) if progress.exists() else {"job": progress.stem}
    if status.get("state") not in ("done", "failed"):
        write_job_status(progress, {**status, "state": "failed", "error": reason})


async def list_versions(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    versions = saved_versions(request.app[CONFIG].answer.versions_dir, tenant)
    return web.json_response({"tenant": tenant, "active": await request.app[CALLS].active_faq_version(tenant), "versions": versions})


async def activate_version(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    version = request.match_info["version"]
    if version != BASE and not (version.startswith("v") and version[1:].isdigit()):
        return json_error(404, f"no version {version!r}")
    try:
        previous = await request.app[CALLS].activate_faq(tenant, version)
    except VersionError as exc:
        return json_error(404, str(exc))
    except FaqError as exc:  # the version exists but cannot be loaded here (an encoder it needs is not installed)
        return json_error(409, str(exc))
    return web.json_response({"tenant": tenant, "active": version, "previous": previous})


def _store(config: AgentConfig, tenant: str) -> QuestionStore | None:
    settings = config.tenant(tenant)
    return (QuestionStore(settings.questions_path, settings.keep_questions_days, settings.keep_questions_max)
            if settings.questions_path is not None else None)


async def list_questions(request: web.Request) -> web.Response:
    """The questions the avatar missed, masked, in groups of similar ones (largest first); empty for a tenant not keeping them."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    store = _store(request.app[CONFIG], tenant)
    if store is None:
        return web.json_response({"tenant": tenant, "keeping": False, "groups": []})
    questions = await asyncio.get_running_loop().run_in_executor(None, store.all)
    groups = [{"size": len(members), "questions": [asdict(q) for q in members]} for members in group(questions)]
    return web.json_response({"tenant": tenant, "keeping": True, "retention_days": request.app[CONFIG].tenant(tenant).keep_questions_days,
                              "groups": groups})


async def _kept_and_asked(request: web.Request) -> tuple[str, QuestionStore, dict, list[str]] | web.Response:
    """For the routes that act on kept questions: the tenant, its store (409 if it keeps none), the body and its texts."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    store = _store(request.app[CONFIG], tenant)
    if store is None:
        return json_error(409, f"tenant {tenant!r} does not keep questions (tenants.{tenant}.keep_questions)")
    try:
        body = await request.json()
        texts = [str(t) for t in body["texts"]][:200]
    except (ValueError, KeyError, TypeError):
        return json_error(400, 'send {"texts": ["...", ...], ...}')
    if not texts or any(not t.strip() or len(t) > 500 for t in texts):
        return json_error(400, "texts: one to 200 questions of at most 500 characters")
    return tenant, store, body, texts


async def assign_questions(request: web.Request) -> web.Response:
    """A group of missed questions to an entry (`{"texts", "entry": its question}`) or to a new entry (`{"texts", "question",
    "answer"}`): the wordings become paraphrases in the working FAQ, which the next fine-tune reads; they leave the store."""
    parsed = await _kept_and_asked(request)
    if isinstance(parsed, web.Response):
        return parsed
    tenant, store, body, texts = parsed
    config = request.app[CONFIG]
    entries = load_faq(_working_faq(config, tenant))
    if body.get("entry"):
        if not any(e.question == body["entry"] for e in entries):
            return json_error(404, f"no entry asking {body['entry']!r} in the working FAQ")
        entries, added = with_paraphrases(entries, str(body["entry"]), texts)
    elif body.get("question") and body.get("answer"):
        if any(e.question == body["question"] for e in entries):
            return json_error(409, f"an entry already asks {body['question']!r}: assign the questions to it")
        entries = [*entries, FaqEntry(str(body["question"]).strip(), str(body["answer"]).strip())]
        entries, added = with_paraphrases(entries, entries[-1].question, texts)
    else:
        return json_error(400, 'name an entry ({"entry": "<its question>"}) or a new one ({"question": ..., "answer": ...})')
    body_bytes = faq_csv(entries).encode()
    checked = _validated(body_bytes, ".csv", "FAQ")  # before it replaces the working FAQ, never after
    if isinstance(checked, web.Response):
        return checked
    path = _save_upload(_uploads(config, tenant), body_bytes, ".csv")
    removed = store.remove(texts)
    log.info("tenant %s: %d missed questions assigned (%d new paraphrases) -> %s", tenant, removed, added, path.name)
    return web.json_response({"tenant": tenant, "added": added, "removed": removed, "file": path.name, "entries": len(entries)})


async def edit_entry(request: web.Request) -> web.Response:
    """One entry of the working FAQ changed in place (`{"was": its question, "question", "answer", "paraphrases": [...]}`)
    or added (`was` left out); the FAQ is validated whole, as an upload is, and becomes the working one."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    config = request.app[CONFIG]
    try:
        body = await request.json()
        question, answer = str(body["question"]).strip(), str(body["answer"]).strip()
        paraphrases = tuple(dict.fromkeys(str(p).replace("|", " ").strip() for p in body.get("paraphrases", []) if str(p).strip()))
        was = body.get("was")
    except (ValueError, KeyError, TypeError, AttributeError):
        return json_error(400, 'send {"was": "<the question it had>", "question": ..., "answer": ..., "paraphrases": [...]}')
    if not question or not answer or len(question) > 500 or len(answer) > 4000 or len(paraphrases) > 100:
        return json_error(400, "an entry needs a question (at most 500 characters) and an answer (at most 4000); at most 100 paraphrases")
    entries = load_faq(_working_faq(config, tenant))
    index = next((i for i, e in enumerate(entries) if e.question == was), None)
    if was is not None and index is None:
        return json_error(404, f"no entry asking {was!r} in the working FAQ")
    if any(e.question.lower() == question.lower() for i, e in enumerate(entries) if i != index):
        return json_error(409, f"another entry already asks {question!r}")
    old = entries[index] if index is not None else None
    entry = FaqEntry(question, answer, paraphrases, old.emotion if old else "neutral", old.tags if old else ())
    entries = [*entries[:index], entry, *entries[index + 1 :]] if index is not None else [*entries, entry]
    body_bytes = faq_csv(entries).encode()
    checked = _validated(body_bytes, ".csv", "entry")  # validated whole before it replaces the working FAQ
    if isinstance(checked, web.Response):
        return checked
    path = _save_upload(_uploads(config, tenant), body_bytes, ".csv")
    log.info("tenant %s: FAQ entry %r %s -> %s", tenant, question, "changed" if old else "added", path.name)
    return web.json_response({"tenant": tenant, "file": path.name, "entries": len(entries)})


async def dismiss_questions(request: web.Request) -> web.Response:
    parsed = await _kept_and_asked(request)
    if isinstance(parsed, web.Response):
        return parsed
    tenant, store, _, texts = parsed
    return web.json_response({"tenant": tenant, "removed": store.remove(texts)})


async def _stop_jobs(app: web.Application) -> None:
    """A server going down takes its fine-tune processes with it; their versions are staged, never half-written."""
    for job, (tenant, running_job) in app[JOBS].items():
        if running_job.returncode is None:
            await running_job.stop()
            _mark_failed(_jobs_dir(app[CONFIG], tenant) / f"{job}.json", "the server stopped while this job ran; start it again")


async def _fail_orphaned_jobs(app: web.Application) -> None:
    """Jobs left running by a server that died (killed, crashed) are reported failed, not 'training' for ever."""
    config = app[CONFIG]
    for tenant in config.tenants:
        for progress in sorted(_jobs_dir(config, tenant).glob("*.json")):
            try:
                _mark_failed(progress, "the server restarted while this job ran; start it again")
            except (OSError, ValueError) as exc:
                log.warning("tenant %s: unreadable job file %s (%s)", tenant, progress.name, exc)


async def working_faq(request: web.Request) -> web.Response:
    """The FAQ the next fine-tune reads (the latest upload, else the tenant's own), entry by entry."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    path = _working_faq(request.app[CONFIG], tenant)
    try:
        entries = load_faq(path)
    except FaqError as exc:
        return json_error(409, str(exc))
    return web.json_response({"tenant": tenant, "file": path.name, "entries": [
        {"question": e.question, "answer": e.answer, "paraphrases": list(e.paraphrases), "emotion": e.emotion} for e in entries]})


async def live_calls(request: web.Request) -> web.Response:
    """The tenant's calls in progress, the hand-offs waiting for a person (oldest first) and the last hour's turns."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    return web.json_response(await request.app[CALLS].live(tenant))


async def join_call(request: web.Request) -> web.Response:
    """An operator takes a call over: `{"sdp", "type": "offer"}` from the console's own WebRTC connection -> the answer.
    404 for a call that is not this tenant's, has ended or never was; 409 when a person is already on it."""
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    session = request.match_info["session"]
    if request.content_length is not None and request.content_length > request.app[CONFIG].server.max_offer_bytes:
        return json_error(413, "offer too large")
    try:
        body = await request.json()
        sdp = body["sdp"]
        if body.get("type", "offer") != "offer" or not isinstance(sdp, str):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return json_error(400, 'send {"sdp": "<offer>", "type": "offer"}')
    who = f"an operator of {tenant} ({request[CLIENT]})"
    try:
        answer_sdp, kind = await request.app[CALLS].take_over(session, tenant, sdp, who)
    except NoSuchCall as exc:
        return json_error(404, str(exc))
    except PersonTaken as exc:
        return json_error(409, str(exc))
    except Exception as exc:  # aiortc's errors for an offer it cannot use
        log.warning("tenant %s: operator offer for call %s refused: %r", tenant, session, exc)
        return json_error(400, f"could not use the offer SDP: {exc or type(exc).__name__}")
    log.info("tenant %s: %s joined call %s", tenant, who, session)
    return web.json_response({"sdp": answer_sdp, "type": kind})


async def hand_back_call(request: web.Request) -> web.Response:
    tenant = _authorise(request)
    if isinstance(tenant, web.Response):
        return tenant
    session = request.match_info["session"]
    if not await request.app[CALLS].hand_back(session, tenant):
        return json_error(404, f"no call {session!r} of tenant {tenant!r} with a person on it")
    log.info("tenant %s: call %s handed back to the assistant", tenant, session)
    return web.json_response({"session": session, "person": "assistant"})


async def console(request: web.Request) -> web.FileResponse:
    """The operator's console: a static page; everything it shows comes from the routes above, with the token."""
    return web.FileResponse(CONSOLE, headers=CONSOLE_HEADERS)


PURGE_EVERY_S = 3600.0
PURGER = web.AppKey("question_purger", asyncio.Task)


async def _purge_kept_questions(app: web.Application) -> None:
    """Kept questions past their tenant's retention go every hour, whether or not anyone reads or keeps one."""
    config = app[CONFIG]
    while True:
        for tenant in config.tenants:
            store = _store(config, tenant)
            if store is None:
                continue
            try:
                gone = await asyncio.get_running_loop().run_in_executor(None, store.purge)
            except OSError as exc:
                log.warning("tenant %s: could not purge kept questions (%s)", tenant, exc)
                continue
            if gone:
                log.info("tenant %s: %d kept questions past %d days deleted", tenant, gone, config.tenant(tenant).keep_questions_days)
        await asyncio.sleep(PURGE_EVERY_S)


async def _start_purging(app: web.Application) -> None:
    app[PURGER] = asyncio.get_running_loop().create_task(_purge_kept_questions(app), name="purge-questions")


async def _stop_purging(app: web.Application) -> None:
    app[PURGER].cancel()


def add_operator_routes(app: web.Application, jobs: JobRunner) -> None:
    check_operator_tokens(app[CONFIG])
    app[JOBS] = {}
    app[SIGN_IN] = SignInBackoff()
    app.on_startup.append(_start_purging)
    app.on_cleanup.append(_stop_purging)
    app.router.add_get("/operator", console)
    app.router.add_get("/operator/{tenant}/faq", working_faq)
    app[JOB_RUNNER] = jobs
    app.on_startup.append(_fail_orphaned_jobs)
    app.on_shutdown.append(_stop_jobs)
    app.router.add_put("/operator/{tenant}/faq", upload_faq)
    app.router.add_post("/operator/{tenant}/faq/entry", edit_entry)
    app.router.add_post("/operator/{tenant}/finetune", start_finetune)
    app.router.add_get("/operator/{tenant}/jobs/{job}", job_status)
    app.router.add_get("/operator/{tenant}/versions", list_versions)
    app.router.add_post("/operator/{tenant}/versions/{version}/activate", activate_version)
    app.router.add_get("/operator/{tenant}/questions", list_questions)
    app.router.add_post("/operator/{tenant}/questions/assign", assign_questions)
    app.router.add_post("/operator/{tenant}/questions/dismiss", dismiss_questions)
    app.router.add_get("/operator/{tenant}/live", live_calls)
    app.router.add_post("/operator/{tenant}/calls/{session}/join", join_call)
    app.router.add_post("/operator/{tenant}/calls/{session}/hand-back", hand_back_call)
