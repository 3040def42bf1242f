"""Typed configuration, loaded from one YAML file and validated at start-up.

Everything a user edits lives in `configs/agent.yaml`; relative paths in it are
resolved against the folder of that file so the server can be started from
anywhere.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator

from .answer.encoders import ENCODERS
from .avatars.library import is_built_in

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "agent.yaml"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _resolved(value: Path | str, info: ValidationInfo) -> Path:
    """Relative paths in the file are relative to the file (`load_config` passes its folder as the context)."""
    value = Path(value).expanduser()
    return value if value.is_absolute() else (Path((info.context or {}).get("folder", ".")) / value).resolve()


def _existing(value: Path | str, info: ValidationInfo) -> Path:
    found = _resolved(value, info)
    if not found.exists():
        raise ValueError(f"file does not exist: {found}")
    return found


def _avatar(value: str | None, info: ValidationInfo) -> str | None:
    """A built-in head's name, or a glTF/GLB file that exists."""
    return value if value is None or is_built_in(value) else str(_existing(value, info))


class IceServer(StrictModel):
    """A STUN or TURN server handed to every browser as it is (a static TURN password is seen by anyone: prefer server.turn)."""

    urls: list[str] = Field(description="stun:host:port or turn:host:port?transport=udp addresses")
    username: str | None = Field(None, description="a static TURN user name (none for STUN)")
    credential: str | None = Field(None, description="a static TURN password (none for STUN)")


class TurnConfig(StrictModel):
    """A TURN server that shares a secret with the agent (coturn's use-auth-secret): every call is handed its own
    user name and password, valid for ttl_s (the TURN REST scheme: name = expiry:call, password = base64 HMAC-SHA1)."""

    urls: list[str] = Field(min_length=1, description="the TURN server's addresses, e.g. turn:turn.example.com:3478?transport=udp "
                                                       "and turns:turn.example.com:5349?transport=tcp")
    secret_env: str = Field(description="environment variable holding the secret shared with coturn (static-auth-secret)")
    ttl_s: int = Field(3600, ge=60, le=86400, description="how long a call's TURN credentials stay valid")


class CallLimits(StrictModel):
    """What one call, one client address and one page may take: what keeps a stranger from filling or blocking the box."""

    connect_s: float = Field(15, ge=2, le=120, description="a call whose media has not connected this long after its offer "
                                                            "is closed and frees its place (no render process starts before)")
    max_call_s: float = Field(3600, ge=10, le=86400, description="the longest call; the customer is told, then it ends")
    idle_s: float = Field(300, ge=10, le=86400, description="a call with no speech and no typed message this long ends")
    calls_per_address: int = Field(3, ge=1, le=1000, description="calls in progress from one client address at once")
    offers_per_minute: int = Field(12, ge=1, le=10000, description="offers one client address may send a minute")
    media_sections: int = Field(4, ge=1, le=16, description="media sections (m= lines) an offer may have")
    message_bytes: int = Field(4096, ge=256, le=262144, description="the largest message a page may send on a data channel")
    messages_per_s: float = Field(4, gt=0, le=1000, description="messages a page may send a second, on average (bursts of "
                                                                 "twice that); more are dropped with one error event")
    send_buffer_bytes: int = Field(262144, ge=16384, le=16777216,
                                   description="events waiting for a page that does not read them; past this they are dropped")


PacketMs = Literal[20, 40, 60]


class PacketTimes(StrictModel):
    """Opus per packet, by where the call's face is drawn. One number in the config sets both."""
    server: PacketMs = Field(20, description="calls with server video: 20, 40 or 60 ms")
    browser: PacketMs = Field(60, description="calls whose page draws the face: each packet costs the agent's one event "
                                               "loop the same, so 60 holds more calls than 20")

    def for_render(self, where: str) -> int:
        return self.browser if where == "browser" else self.server


class ServerConfig(StrictModel):
    """The web server: where it listens, how many calls it takes, what a browser is told about ICE, and its limits."""

    host: str = Field("127.0.0.1", description="address to listen on: 127.0.0.1 behind a reverse proxy on this machine, "
                                               "0.0.0.0 for every interface")
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the web client, signalling, operator API and metrics")
    max_sessions: int = Field(3, ge=1, description="calls with server video at once (the server draws and encodes every frame); "
                                                   "one more gets a clear busy answer. About 1.5 per CPU core")
    max_browser_sessions: int = Field(16, ge=1, description="calls whose page draws the face (render.where browser or auto) at once: "
                                                            "each takes 1/max_browser_sessions of the room, a video call "
                                                            "1/max_sessions; both kinds share it")
    audio_packet_ms: PacketTimes = Field(
        default_factory=PacketTimes, description="the avatar's voice and the customer's microphone (asked of the browser), "
                                                 "this many ms of Opus a packet, for each kind of call")
    max_offer_bytes: int = Field(64_000, ge=1_000, description="larger signalling bodies are refused with 413")
    ice_servers: list[IceServer] = Field(default_factory=list, description="STUN (and static TURN) servers handed to every "
                                                                           "browser and used by the agent")
    turn: TurnConfig | None = Field(None, description="a TURN server with a shared secret: each call gets its own short-lived "
                                                      "credentials from /api/ice-servers (deploy/coturn)")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses or networks (CIDR) of reverse proxies in "
                                                                         "front of the agent: only through them is a client's "
                                                                         "address read from X-Forwarded-For")
    limits: CallLimits = Field(default_factory=CallLimits, description="what one call, address and page may take")
    drain_s: float = Field(120, ge=0, le=3600, description="on SIGTERM: new calls are refused (503, Retry-After) and calls "
                                                            "in progress may go on this long before the process exits")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network like 10.0.0.0/8") from None
        return values

    @field_validator("audio_packet_ms", mode="before")
    @classmethod
    def _one_packet_time_for_both(cls, value):
        return {"server": value, "browser": value} if isinstance(value, int) and not isinstance(value, bool) else value


class HearConfig(StrictModel):
    """Hearing the customer: voice activity, the end of a turn, and speech recognition (Whisper)."""

    asr_model: str = Field("tiny.en", description="Whisper model: tiny.en, base, or a CTranslate2 model folder")
    language: str = Field("en", description="the customer's language, a Whisper language code (en, de, fr, ...); the "
                                            "turn model knows some languages, the fixed rule ends turns in the others")
    asr_threads: int = Field(2, ge=1, description="CPU threads for Whisper")
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="speech probability (0-1, exclusive) above which a frame is "
                                                              "speech; higher ignores more noise and quiet speech")
    turn_model: Literal["smart-turn", "none"] = Field(
        "smart-turn", description="what ends a turn: smart-turn (Pipecat's Smart Turn v3.2 hears whether the customer is done, "
                                  "at each short pause) or none (a fixed silence, end_of_turn_ms)")
    turn_pause_ms: int = Field(300, ge=100, le=1000, description="with the turn model: the pause at which it is first asked "
                                                                 "(100-1000 ms; longer: fewer cut-offs, later answers)")
    turn_recheck_ms: int = Field(300, ge=50, le=2000, description="with the turn model: asked again after every this much more "
                                                                 "of the same pause (a longer pause makes it surer)")
    turn_wait_ms: int = Field(1600, ge=300, le=5000, description="with the turn model: the longest silence before a turn it "
                                                                  "judged unfinished ends anyway")
    end_of_turn_ms: int = Field(450, ge=100, le=3000, description="the fixed rule: this much silence ends a turn (turn_model: none, "
                                                                  "and languages the model was not trained on)")
    min_speech_ms: int = Field(250, ge=50, description="shorter bursts of speech (coughs, clicks) are ignored")
    max_turn_s: float = Field(20.0, gt=1, description="a turn that goes on this long is ended and answered")
    barge_in: bool = Field(True, description="the customer's speech interrupts the avatar; false: the avatar talks on "
                                             "over it")
    echo_cancellation: Literal["auto", "always", "never"] = Field(
        "auto", description="remove the avatar's own voice from the mic on the server too (WebRTC AEC3): auto (only for a "
                            "microphone whose page does not say its browser cancels echo), always, never (true/false: always/never)")

    @field_validator("echo_cancellation", mode="before")
    @classmethod
    def _echo_switch(cls, value):
        return {True: "always", False: "never"}.get(value, value) if isinstance(value, bool) else value


class AnswerConfig(StrictModel):
    """Answering: which FAQ entry a turn asks about, and when to offer a person instead."""

    faq_path: Path = Field(description="the FAQ (.csv or .jsonl: question, answer, paraphrases), relative to the config "
                                       "file; required")
    versions_dir: Path = Field(Path("../build/faq-versions"), description="where fine-tuned FAQ versions are kept, per tenant")
    confidence_threshold: float | Literal["auto"] = Field(
        "auto", description="hand-off below this score; auto calibrates it on made phrasings of the FAQ and off-topic questions")
    encoders: list[Literal[ENCODERS]] = Field(
        list(ENCODERS), min_length=1,
        description="sentence encoders whose scores are averaged, each at most once; all-MiniLM-L6-v2 alone answers "
                    "sooner and gives more wrong answers")
    handoff_text: str = Field("I'm not sure about that one. Let me connect you to a person who can help.",
                              description="said when no FAQ entry scores above the threshold")
    greeting: str = Field("Hi, I'm your support assistant. How can I help you today?",
                          description="said when a call connects (a tenant's greeting overrides it)")

    @field_validator("faq_path")
    @classmethod
    def _faq_exists(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing(value, info)

    @field_validator("versions_dir")
    @classmethod
    def _versions_resolved(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolved(value, info)

    @field_validator("encoders")
    @classmethod
    def _each_encoder_once(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("lists an encoder twice")
        return value

    @field_validator("confidence_threshold")
    @classmethod
    def _threshold_between_0_and_1(cls, value):
        if value != "auto" and not 0 < value < 1:
            raise ValueError("must be 'auto' or a number between 0 and 1")
        return value


VOICE_PATTERN = r"joe|kokoro:[ab][fm]_[a-z]+|espeak:[a-z][a-z0-9+_-]*"


class SpeakConfig(StrictModel):
    """The avatar's voice."""

    voice: str = Field("joe", pattern=VOICE_PATTERN,
                       description="joe (Piper, fast), kokoro:<name> (natural, ~real time per CPU core; e.g. kokoro:af_heart) "
                                   "or espeak:<voice> (robotic, instant, many languages; e.g. espeak:cmn)")
    length_scale: float = Field(1.0, gt=0.3, lt=3.0, description="speaking rate, between 0.3 and 3 (exclusive): "
                                                                  ">1 speaks slower, <1 faster")


class AnimateConfig(StrictModel):
    """The audio-to-face model that turns the avatar's speech into mouth and face poses."""

    model_dir: Path | None = Field(None, description="folder with audio2face.onnx + audio2face.json; default: the shipped model")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the model runs: auto (CUDA when onnxruntime-gpu "
                                                                      "finds a GPU, else the CPU), cpu or cuda")

    @field_validator("model_dir")
    @classmethod
    def _trained_model(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        folder = _resolved(value, info)
        if not (folder / "audio2face.onnx").exists():
            raise ValueError(f"has no audio2face.onnx: {folder}")
        return folder


HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"


class BackdropConfig(StrictModel):
    """Behind the avatar: a vertical gradient with a soft glow behind the head (both sinks draw the same)."""

    top: str = Field("#ccd6e0", pattern=HEX_COLOUR, description="colour at the top, like #ccd6e0")
    bottom: str = Field("#758493", pattern=HEX_COLOUR, description="colour at the bottom")
    glow: str = Field("#f2ede2", pattern=HEX_COLOUR, description="the soft light behind the head")

    def colours(self) -> tuple[tuple[float, float, float], ...]:
        """(top, bottom, glow) as sRGB 0..1 triples, what `render.view.Backdrop` takes."""
        return tuple(tuple(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)) for c in (self.top, self.bottom, self.glow))


class RenderConfig(StrictModel):
    """The avatar's face: which head, where it is drawn, and how."""

    avatar: str = Field("default", description="'default' (MakeHuman head, preset kenji), a preset (ava, amara, kenji, walter), "
                                               "'stylised' (the old cartoon head) or a .glb/.gltf file with ARKit morph targets")
    where: Literal["server", "browser", "auto"] = Field(
        "server", description="where the face is drawn: server (video from here), browser (the page draws the same avatar from poses "
                              "this server sends: far less CPU here), auto (browser when the page can, video otherwise)")
    width: int = Field(512, ge=64, le=2048, description="video width in pixels, even, 64-2048")
    height: int = Field(512, ge=64, le=2048, description="video height in pixels, even, 64-2048")
    fps: int = Field(25, ge=5, le=60, description="frames a second drawn for each call, 5-60")
    backend: Literal["auto", "osmesa", "egl"] = Field("auto", description="OpenGL platform: egl (a GPU, or Mesa's "
                                                                         "software EGL), osmesa (software); auto: EGL on an "
                                                                         "NVIDIA GPU, OSMesa otherwise")
    shading: Literal["lean", "pbr"] = Field("lean", description="lean: our shaders (fast on CPU); pbr: pyrender's PBR scene (for a GPU)")
    lighting: Literal["auto", "vertex", "pixel"] = Field(
        "auto", description="lean shading's light: per pixel (on a GPU) or per vertex with per-pixel textures (2-3x faster on "
                            "software GL); auto: per pixel with EGL, per vertex with OSMesa")
    backdrop: BackdropConfig = Field(default_factory=BackdropConfig, description="behind the avatar, in both sinks")
    video_kbps: int = Field(1500, ge=100, le=20000, description="the video encoder's target bitrate (VP8 or H.264) for server video")
    msaa: Literal[0, 2, 4, 8] = Field(0, description="multisampling for lean shading; 4 is cheap on a GPU, costly on CPU")
    isolation: Literal["process", "thread"] = Field("process", description="render each call in a lower-priority process, or a thread")
    nice: int = Field(10, ge=0, le=19, description="OS priority of render processes below the agent's (0-19)")

    @field_validator("avatar")
    @classmethod
    def _avatar_spec(cls, value: str, info: ValidationInfo) -> str:
        return _avatar(value, info)

    @field_validator("width", "height")
    @classmethod
    def even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (video encoders need even sizes)")
        return v


class LoadLimit(StrictModel):
    """When a cluster node stops taking calls, besides server.max_sessions (like LiveKit's worker load_threshold)."""

    min_fps_ratio: float = Field(0.96, gt=0, le=1, description="refuse while a call in progress renders below this share of render.fps")
    max_cpu_percent: float = Field(85, gt=0, le=100, description="refuse while the node's machine is busier than this")


class HandoffConfig(StrictModel):
    """After the avatar offers a person: the call waits in the operator console (/operator) for one to take it over."""

    to_people: bool = Field(True, description="hand-offs wait for a person in the console; false: the offer is all that happens")
    wait_s: float = Field(120, ge=1, le=3600, description="how long a hand-off waits for a person before the customer is told nobody is free")
    waiting_message: str = Field("Please stay with me while I find a person for you. It usually takes less than {minutes}.",
                                 description="said when a hand-off starts waiting; {minutes} is wait_s in words")
    none_free_message: str = Field("I'm sorry, nobody is free right now. You can leave your e-mail address on this page and a "
                                   "person will get back to you. In the meantime, I'm happy to keep helping.",
                                   description="said, and shown on the page, when nobody took the call in time")
    back_message: str = Field("You're back with the assistant. What else can I help you with?",
                              description="said when the person hands the call back to the avatar")
    lost_message: str = Field("The person's connection dropped. I'm back with you, and a person can join again.",
                              description="said when the person's console connection drops during a takeover")


class ClusterConfig(StrictModel):
    """Calls spread over several machines. Off (engine: none) is one box, no Ray."""

    engine: Literal["none", "ray"] = Field("none", description="none: calls run on this machine; ray: this process is the "
                                                              "front and places calls on the Ray cluster's nodes")
    address: str = Field("auto", description="the Ray cluster to join: 'auto' (a `ray start` on this machine) or host:port")
    node_resource: str = Field("avatar_node", description="custom Ray resource marking nodes that host calls: ray start --resources='{\"avatar_node\": 1}'")
    admission: LoadLimit = Field(default_factory=LoadLimit, description="when a node stops taking calls, besides "
                                                                         "server.max_sessions (which is per node)")
    poll_s: float = Field(2.0, ge=0.2, le=30, description="how often the front reads each node's load and notices lost nodes")
    node_start_timeout_s: float = Field(180, ge=10, description="how long a node may take to load its models")


class TenantConfig(StrictModel):
    """One website that embeds the widget (its script tag names the tenant: data-tenant); a key it leaves unset takes
    the global setting its description names."""

    allowed_origins: list[str] = Field(default_factory=list, description="origins (scheme://host[:port]) whose pages may use this tenant; '*' for any")
    greeting: str | None = Field(None, description="overrides answer.greeting for this tenant")
    operator_token_env: str | None = Field(None, description="environment variable holding this tenant's operator API token; unset = API closed")
    faq_path: Path | None = Field(None, description="this tenant's FAQ before its first fine-tuned version (default: answer.faq_path)")
    avatar: str | None = Field(None, description="a built-in head or a .glb/.gltf (default: render.avatar)")
    length_scale: float | None = Field(None, gt=0.3, lt=3.0, description="speaking rate of the voice, >1 slower (default: speak.length_scale)")
    voice: str | None = Field(None, pattern=VOICE_PATTERN, description="this tenant's voice (default: speak.voice)")
    render_where: Literal["server", "browser", "auto"] | None = Field(None, description="where this tenant's face is drawn (default: render.where)")
    backdrop: BackdropConfig | None = Field(None, description="behind this tenant's avatar (default: render.backdrop)")
    keep_questions: bool = Field(False, description="keep the questions the avatar handed off, asked about or nearly missed "
                                                    "(masked), for the operator to turn into paraphrases; off: nothing is kept")
    keep_questions_days: int = Field(30, ge=1, le=365, description="kept questions older than this are deleted")
    keep_questions_max: int = Field(10_000, ge=10, le=1_000_000, description="kept questions beyond this many: the oldest go first")
    log_transcripts: bool = Field(False, description="write what the customer said into the agent's log, masked as kept "
                                                     "questions are; off: the log says how long a turn was, never its words")
    max_calls: int | None = Field(None, ge=1, description="calls of this tenant in progress at once (default: no cap of its own)")
    contact_message: str | None = Field(None, description="how this site's customers can be contacted when nobody is free (default: handoff.none_free_message)")

    @field_validator("avatar")
    @classmethod
    def _avatar_spec(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _avatar(value, info)

    @field_validator("faq_path")
    @classmethod
    def _faq_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _existing(value, info)

    @field_validator("allowed_origins")
    @classmethod
    def origins(cls, values: list[str]) -> list[str]:
        for origin in values:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com (scheme and host, no path)")
        return [o.rstrip("/") for o in values]


DEMO_TENANT = "demo"  # the tenant of the shipped config and of pages that name none


@dataclass(frozen=True)
class TenantSettings:
    """Everything about one tenant, its own settings or the global defaults: the one place that fallback is made."""

    id: str
    allowed_origins: tuple[str, ...]
    greeting: str
    operator_token_env: str | None
    faq_path: Path
    avatar: str
    length_scale: float
    voice: str
    render_where: str
    backdrop: BackdropConfig
    questions_path: Path | None  # where its missed questions are kept; None: the tenant has not opted in
    keep_questions_days: int
    keep_questions_max: int
    log_transcripts: bool
    max_calls: int | None
    handoff: HandoffConfig  # with the tenant's own contact message, if it has one


class AgentConfig(StrictModel):
    """The whole file, configs/agent.yaml: every section is optional except answer (its faq_path)."""

    server: ServerConfig = Field(default_factory=ServerConfig, description="the web server, call limits and ICE")
    hear: HearConfig = Field(default_factory=HearConfig, description="hearing the customer: voice activity, turns, Whisper")
    answer: AnswerConfig = Field(description="the FAQ and how a turn is matched to it; required")
    speak: SpeakConfig = Field(default_factory=SpeakConfig, description="the avatar's voice")
    animate: AnimateConfig = Field(default_factory=AnimateConfig, description="the audio-to-face model")
    render: RenderConfig = Field(default_factory=RenderConfig, description="the avatar's face and where it is drawn")
    tenants: dict[str, TenantConfig] = Field(default_factory=lambda: {DEMO_TENANT: TenantConfig()},
                                             description="websites that embed the widget, by tenant id (lower-case letters, "
                                                         "digits, - and _); at least one. Pages that name none get demo, "
                                                         "else the first")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="calls spread over several machines with Ray")
    handoff: HandoffConfig = Field(default_factory=HandoffConfig, description="what happens after the avatar offers a person")
    threads: int = Field(1, ge=1, description="torch / onnxruntime threads per model (1 or more)")
    models_nice: int = Field(5, ge=0, le=19, description="OS priority of the model threads below the event loop's, which "
                                                          "paces every call's audio (0: the same)")
    _source: Path | None = PrivateAttr(None)  # the file it was loaded from, handed to helper processes

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def default_tenant(self) -> str:
        """The tenant of requests that name none."""
        return DEMO_TENANT if DEMO_TENANT in self.tenants else next(iter(self.tenants))

    def tenant(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings with the global defaults filled in; KeyError for an unknown tenant."""
        own = self.tenants[tenant_id]
        return TenantSettings(
            id=tenant_id,
            allowed_origins=tuple(own.allowed_origins),
            greeting=own.greeting or self.answer.greeting,
            operator_token_env=own.operator_token_env,
            faq_path=own.faq_path or self.answer.faq_path,
            avatar=own.avatar or self.render.avatar,
            length_scale=own.length_scale or self.speak.length_scale,
            voice=own.voice or self.speak.voice,
            render_where=own.render_where or self.render.where,
            backdrop=own.backdrop or self.render.backdrop,
            questions_path=self.answer.versions_dir / tenant_id / "questions.jsonl" if own.keep_questions else None,
            keep_questions_days=own.keep_questions_days,
            keep_questions_max=own.keep_questions_max,
            log_transcripts=own.log_transcripts,
            max_calls=own.max_calls,
            handoff=self.handoff.model_copy(update={"none_free_message": own.contact_message}) if own.contact_message else self.handoff,
        )


    @field_validator("tenants")
    @classmethod
    def tenant_ids(cls, tenants: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
        if not tenants:
            raise ValueError("at least one tenant is needed")
        for name in tenants:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
                raise ValueError(f"tenant id {name!r}: use lower-case letters, digits, '-' and '_'")
        return tenants


class ConfigError(Exception):
    """A config file that cannot be used; the message says where and why."""


def load_config(path: Path | str = DEFAULT_CONFIG) -> AgentConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = AgentConfig.model_validate(raw, context={"folder": path.parent})
    except ValidationError as exc:
        lines = [f"{path}: invalid configuration"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    config._source = path.resolve()
    return config
