"""The pose channel's wire format (binary, little-endian), read by `web_client/avatar-face.js`.

- pose  `P` | take u8 | pts u32 | 52 weights u8 (0..255 = 0..1, ARKit order) | head pitch, yaw, roll i16 (1e-4 rad): 64 bytes
- clear `C` | take u8 | pts u32: drop every pose from this point of the clock on (barge-in)
- clock `K` | 0 | offset u32: the RTP timestamp of the avatar's audio at clock 0 (pts + offset = RTP timestamp, mod 2^32)

A message holds one record or several back to back (poses go four to a message: each SCTP message costs the
server's pure-Python stack far more than its bytes do).

Poses are sent ahead of their audio, so what is sent can be overtaken: a sentence that starts sooner than the
look-ahead, or barge-in. Then the sender starts a new `take` (mod 256) and sends again from now: the page drops
its queued poses from the first pose of a newer take on, and ignores poses of older takes (the channel is unordered).

At 25 poses a second a call sends about 1.6 kB/s of poses in about 6 messages (before SCTP/DTLS framing).
"""
from __future__ import annotations

import struct

import numpy as np

from models.arkit import COUNT

POSE, CLEAR, CLOCK = b"P", b"C", b"K"
HEAD_SCALE = 10_000
_POSE = struct.Struct(f"<cBI{COUNT}B3h")
_POINT = struct.Struct("<cBI")
POSE_BYTES = _POSE.size


def pose_message(poses, take: int) -> bytes:
    """One message of pose records (`Pose`s of one take, in clock order)."""
    out = []
    for pose in poses:
        weights = np.clip(np.rint(np.asarray(pose.weights, np.float32) * 255), 0, 255).astype(np.uint8)
        head = np.clip(np.rint(np.asarray(pose.head, np.float32) * HEAD_SCALE), -32767, 32767).astype(np.int16)
        out.append(_POSE.pack(POSE, take % 256, pose.pts % 2**32, *weights.tolist(), *head.tolist()))
    return b"".join(out)


def clear_message(pts: int, take: int) -> bytes:
    return _POINT.pack(CLEAR, take % 256, pts % 2**32)


def clock_message(offset: int) -> bytes:
    return _POINT.pack(CLOCK, 0, offset % 2**32)


def read_message(data: bytes) -> list[tuple[str, int, np.ndarray | None, np.ndarray | None]]:
    """Each record's (kind, pts or offset, weights, head): what the page reads, for tests and the benchmark's clients."""
    records, at = [], 0
    while at < len(data):
        kind = data[at : at + 1]
        if kind == POSE:
            fields = _POSE.unpack_from(data, at)
            records.append(("pose", fields[2], np.array(fields[3 : 3 + COUNT], np.float32) / 255, np.array(fields[3 + COUNT :], np.float32) / HEAD_SCALE))
            at += _POSE.size
        elif kind in (CLEAR, CLOCK):
            _, _, value = _POINT.unpack_from(data, at)
            records.append((("clear" if kind == CLEAR else "clock"), value, None, None))
            at += _POINT.size
        else:
            raise ValueError(f"unknown pose record {kind!r}")
    return records
