"""The project's own contracts: one set of page events everywhere, dependencies pointing one way, stages behind protocols."""
from __future__ import annotations

import ast
import dataclasses
import re
import typing

from agent import events
from agent.events import PAGE_EVENT_TYPES

from .conftest import ROOT


def test_page_events_are_one_set_in_code_widget_and_docs():
    defined = {cls.__dataclass_fields__["type"].default for cls in typing.get_args(events.PageEvent)}
    assert defined == set(PAGE_EVENT_TYPES)
    widget = (ROOT / "web_client" / "avatar-widget.js").read_text()
    assert set(re.findall(r'event\.type === "(\w+)"', widget)) == defined, "the widget handles every event, and no other"
    documented = [p for p in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))) if "### Events on the data channel" in p.read_text()]
    assert documented, "a page (docs/embedding.md) lists the events under '### Events on the data channel'"
    text = documented[0].read_text()
    section = text[text.index("### Events on the data channel"):]
    table = section[: section.index("\n\n", section.index("| `type` |"))]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)) - {"type"}  # the header
    assert listed == defined, f"{documented[0].name}'s table of events is the code's list"


def test_events_go_on_the_wire_as_flat_json():
    assert events.to_json(events.StateChanged(events.AgentState.THINKING)) == {"type": "state", "state": "thinking"}
    assert events.to_json(events.HandedOff(3, "requested")) == {"type": "handoff", "turn": 3, "reason": "requested"}
    assert all(dataclasses.is_dataclass(cls) for cls in typing.get_args(events.PageEvent))


def test_the_conversation_knows_stages_only_by_their_contracts():
    source = (ROOT / "agent" / "conversation.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"engines", ".engines", "answer.answerer", "hear.transcriber", "speak.piper_voice", "animate.lipsync"}
    assert "engines" not in source
