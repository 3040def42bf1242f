"""The configuration reference, generated from the pydantic models in `agent/config.py`.

`avatar-agent config --reference` prints it, and `docs/configuration.md` is that output
(tests/test_docs.py checks they agree). The same walk over the models answers whether a dotted
key such as `server.limits.connect_s` or `tenants.<id>.voice` exists (`resolve_key`).
"""
from __future__ import annotations

import enum
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import AgentConfig

REGENERATE = "avatar-agent config --reference > docs/configuration.md"
LIST = "[]"  # a list of models: `server.ice_servers[].urls`
ANY_ID = "<id>"  # a dict of models: `tenants.<id>.voice`


@dataclass(frozen=True)
class Key:
    """One key of the config file: its dotted path, and the field that defines it."""

    path: str
    field: FieldInfo
    model: type[BaseModel]  # the model the field belongs to
    sub: type[BaseModel] | None  # the model its value (or each of its items) is, if any

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def _optional_inner(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (annotation, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field's value holds, and how its keys are reached: '' (a model), '[]' (a list of them),
    '<id>' (a dict of them by name)."""
    inner, _ = _optional_inner(annotation)
    if _is_model(inner):
        return inner, ""
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is list and args and _is_model(args[0]):
        return args[0], LIST
    if origin is dict and len(args) == 2 and _is_model(args[1]):
        return args[1], ANY_ID
    return None, ""


def keys(model: type[BaseModel] = AgentConfig, prefix: str = "") -> Iterator[Key]:
    """Every key under `model`, depth first in the models' order."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        sub, how = _nested(field.annotation)
        yield Key(path, field, model, sub)
        if sub is not None:
            yield from keys(sub, f"{path}{'.' + how if how == ANY_ID else how}.")


def models(model: type[BaseModel] = AgentConfig) -> list[type[BaseModel]]:
    """The config model and every model nested in it, each once."""
    found = [model]
    for key in keys(model):
        if key.sub is not None and key.sub not in found:
            found.append(key.sub)
    return found


def resolve_key(dotted: str) -> Key | None:
    """The key a dotted path names, or None. Tenant ids may be written as `<id>` or as a name (`tenants.demo.voice`),
    list items as `[]`, `[0]` or nothing (`server.ice_servers[].urls`, `server.ice_servers.urls`)."""
    model: type[BaseModel] | None = AgentConfig
    found: Key | None = None
    parts = dotted.strip(".").split(".")
    i = 0
    while i < len(parts):
        part = parts[i]
        list_item = part.endswith("]") and "[" in part
        name = part[:part.index("[")] if list_item else part
        if model is None or name not in model.model_fields:
            return None
        field = model.model_fields[name]
        sub, how = _nested(field.annotation)
        found = Key(".".join(parts[:i + 1]), field, model, sub)
        if list_item and how != LIST:
            return None
        if how == ANY_ID:
            i += 1  # the next part is a tenant's id, any name
            if i == len(parts):
                return found
        model = sub
        i += 1
    return found


# --- rendering -----------------------------------------------------------------------------------------------


def _yaml(value: Any) -> str:
    """A value as it would be written in the YAML file."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        plain = value and value == value.strip() and not value[0] in "#!&*[]{}|>'\"%@`-?:,"
        plain = plain and ": " not in value and " #" not in value and value not in ("null", "true", "false", "~")
        return value if plain and not _looks_numeric(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _type_name(annotation: Any) -> str:
    inner, optional = _optional_inner(annotation)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is Literal:
        name = _choices(args) if len(args) == 1 else f"one of {_choices(args)}"
    elif origin in (typing.Union, types.UnionType):
        name = " or ".join(_type_name(a) for a in args)
    elif origin is list and args and typing.get_origin(args[0]) is Literal:
        name = f"list of {_choices(typing.get_args(args[0]))}"
    elif origin is list and args and _is_model(args[0]):
        name = "list of sections"
    elif origin is list:
        name = f"list of {_type_name(args[0])}" if args else "list"
    elif origin is dict:
        name = f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    elif _is_model(inner):
        name = "section"
    else:
        name = {str: "text", int: "integer", float: "number", bool: "true or false", Path: "path"}.get(inner, getattr(inner, "__name__", str(inner)))
    return f"{name}, or null" if optional else name


def _choices(values: tuple) -> str:
    names = [_yaml(v) for v in values]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _bounds(field: FieldInfo) -> str:
    """The range pydantic enforces: '1 to 65535', 'above 0, at most 1', 'at least 1 item'."""
    low = high = length = pattern = None
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            low = f"at least {meta.ge}"
        elif isinstance(meta, annotated_types.Gt):
            low = f"above {meta.gt}"
        elif isinstance(meta, annotated_types.Le):
            high = f"at most {meta.le}"
        elif isinstance(meta, annotated_types.Lt):
            high = f"below {meta.lt}"
        elif isinstance(meta, annotated_types.MinLen):
            length = f"at least {meta.min_length} item{'s' if meta.min_length != 1 else ''}"
        elif getattr(meta, "pattern", None):
            pattern = f"matches `{meta.pattern}`"
    if low and high and low.startswith("at least") and high.startswith("at most"):
        span = f"{low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    else:
        span = ", ".join(p for p in (low, high) if p)
    return "; ".join(p for p in (span, length, pattern) if p)


def default_text(key: Key) -> str:
    field = key.field
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if key.sub is not None and isinstance(value, BaseModel) and value == key.sub():
        return "(its keys' defaults)"
    if isinstance(value, dict) and all(isinstance(v, BaseModel) for v in value.values()):
        return "{" + ", ".join(f"{k}: {{}}" for k in value) + "}"  # e.g. tenants: {demo: {}}
    return f"`{_yaml(value)}`"


def _cell(text: str) -> str:
    """Table-cell text: pipes escaped, and '<' outside code spans (`kokoro:<name>` would be read as an HTML tag)."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _type_cell(key: Key) -> str:
    type_name = _type_name(key.field.annotation)
    bounds = _bounds(key.field)
    return f"{type_name} ({bounds})" if bounds else type_name


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def _section_path(key: Key) -> str:
    """The path a nested model's keys hang from: `server.limits`, `server.ice_servers[]`, `tenants.<id>`."""
    _, how = _nested(key.field.annotation)
    return key.path + ("." + ANY_ID if how == ANY_ID else how)


def _direct_keys(model: type[BaseModel], prefix: str) -> list[Key]:
    return [Key(f"{prefix}{name}", field, model, _nested(field.annotation)[0]) for name, field in model.model_fields.items()]


def _table(rows: list[Key]) -> list[str]:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for key in rows:
        description = key.field.description or ""
        if key.sub is not None:
            description += f" (section `{_section_path(key)}` below)"
        lines.append(f"| `{key.path}` | {_cell(_type_cell(key))} | {_cell(default_text(key))} | {_cell(description)} |")
    return lines


def _section(key: Key, level: int) -> list[str]:
    """A nested model's table under a heading named by its path; the models nested in it follow as their own sections."""
    path = _section_path(key)
    lines = [f"{'#' * level} `{path}`", ""]
    own = _sentence(_doc(key.sub))  # what the section is; the field's description says the same, shorter
    intro = " ".join(p for p in (_sentence(key.field.description), own) if p) if _nested(key.field.annotation)[1] == ANY_ID \
        else own or _sentence(key.field.description)
    if intro:
        lines += [intro, ""]
    direct = _direct_keys(key.sub, path + ".")
    lines += _table(direct) + [""]
    for sub in direct:
        if sub.sub is not None:
            lines += _section(sub, min(level + 1, 4))
    return lines


def _sentence(text: str | None) -> str:
    text = " ".join((text or "").split())
    return "" if not text else text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?", ")")) else ".")


def reference_markdown() -> str:
    """The Markdown page: one section per top-level section of the file (nested sections under it), then the
    top-level keys."""
    top = _direct_keys(AgentConfig, "")
    sections = [k for k in top if k.sub is not None]
    lines = [
        "# Configuration reference",
        "",
        "Every key of the agent's config file (`configs/agent.yaml`): its type, its default and what it does. "
        "This page is generated from the models in `agent/config.py` by `avatar-agent config --reference`; do not edit "
        f"it by hand: after changing a model, run `{REGENERATE}`.",
        "",
        "Every section and key may be left out except `answer.faq_path`: a key the file does not set takes the default "
        "below. Relative paths are relative to the config file's folder. Unknown keys are refused at start-up; "
        "`avatar-agent check --config FILE` validates a file and its FAQ without serving.",
        "",
        "Sections: " + ", ".join(f"[`{_section_path(k)}`](#{_anchor(_section_path(k))})" for k in sections)
        + ", [top-level keys](#top-level-keys).",
        "",
    ]
    for key in sections:
        lines += _section(key, 2)
    lines += ["## Top-level keys", ""] + _table([k for k in top if k.sub is None]) + [""]
    lines += ["---", "", "See also: [the README](../README.md) and [the other guides in docs/](./)."]
    return "\n".join(lines) + "\n"
