"""Prometheus metrics, scraped from GET /metrics."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

SESSIONS_ACTIVE = Gauge("avatar_sessions_active", "Calls in progress", registry=REGISTRY)
SESSIONS_TOTAL = Counter("avatar_sessions_total", "Calls started", registry=REGISTRY)
SESSIONS_REJECTED = Counter("avatar_sessions_rejected_total", "Calls refused", ["reason"], registry=REGISTRY)
TURNS_TOTAL = Counter("avatar_turns_total", "Customer turns answered", ["outcome"], registry=REGISTRY)
STAGE_SECONDS = Histogram(
    "avatar_stage_seconds", "Time spent per pipeline stage", ["stage"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0),
)
RESPONSE_SECONDS = Histogram(
    "avatar_response_seconds", "End of customer speech to first avatar audio", registry=REGISTRY,
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0),
)
VIDEO_FRAMES = Counter("avatar_video_frames_total", "Video frames sent", registry=REGISTRY)
RENDER_SECONDS = Histogram(
    "avatar_render_seconds", "Time to render one video frame", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.2),
)
# No series is labelled with a call's id: /metrics is readable by whoever reaches it, and an id is a handle on a call.
VIDEO_FPS_MIN = Gauge("avatar_video_fps_min", "The slowest server-video call's frames per second over its last second "
                      "(0 without one)", registry=REGISTRY)
CALLS_LIMITED = Counter("avatar_calls_limited_total", "Calls the agent ended by a limit (not_connected, too_long, idle, "
                        "draining)", ["reason"], registry=REGISTRY)
MESSAGES_DROPPED = Counter("avatar_page_messages_dropped_total", "Data-channel messages from pages dropped (too_large, "
                           "too_fast)", ["reason"], registry=REGISTRY)
EVENTS_DROPPED = Counter("avatar_events_dropped_total", "Events not sent to a page whose channel had send_buffer_bytes "
                         "waiting (it was not reading)", registry=REGISTRY)
SIGN_IN_FAILURES = Counter("avatar_operator_sign_in_failures_total", "Operator requests with a missing or unknown token",
                           registry=REGISTRY)
TURNS_ENDED = Counter("avatar_turns_ended_total", "Customer turns ended, by what ended them (model, silence)", ["by"], registry=REGISTRY)
TURN_QUESTIONS = Counter("avatar_end_of_turn_questions_total", "Pauses the end-of-turn model was to judge, by what came of it "
                         "(asked; busy: the last answer was still to come, so it waited for it, the latest only; over: "
                         "the pause had ended before its turn in the model queue came)", ["outcome"], registry=REGISTRY)
INTERRUPTIONS = Counter("avatar_interruptions_total", "Replies cut short by the customer speaking (barge-in)", registry=REGISTRY)
ERRORS = Counter("avatar_errors_total", "Errors by kind", ["kind"], registry=REGISTRY)
AUDIO_LATE = Counter("avatar_audio_late_total", "Voice packets sent more than 100 ms later after the one before than that one "
                     "lasted (the event loop fell behind: the page's jitter buffer may have run dry)", registry=REGISTRY)
POSES_DROPPED = Counter("avatar_poses_dropped_total", "Poses not sent to a page that was not reading them", registry=REGISTRY)
SPEECH_CACHE = Counter("avatar_speech_cache_total", "Sentences spoken from the speech cache (hit) or synthesised (miss)", ["result"], registry=REGISTRY)

# The cluster front's own (agent/cluster/front.py); each node's stage metrics are at /metrics/nodes/<node>.
CLUSTER_NODES = Gauge("avatar_cluster_nodes", "Nodes ready to host calls", registry=REGISTRY)
CLUSTER_NODE_CALLS = Gauge("avatar_cluster_node_calls", "Calls in progress per node", ["node"], registry=REGISTRY)
CLUSTER_ADMISSIONS = Counter("avatar_cluster_admissions_total", "Calls placed, per node", ["node"], registry=REGISTRY)
CLUSTER_REFUSALS = Counter("avatar_cluster_refusals_total", "Calls a node refused (full or too loaded), per node", ["node"], registry=REGISTRY)
CLUSTER_NODE_LOSSES = Counter("avatar_cluster_node_losses_total", "Nodes lost (process killed, machine gone)", registry=REGISTRY)
CLUSTER_CALLS_DROPPED = Counter("avatar_cluster_calls_dropped_total", "Calls that ended because their node was lost", registry=REGISTRY)
