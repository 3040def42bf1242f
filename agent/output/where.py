"""Where a call's face is drawn: the tenant's `render.where` and what the page said it can do (its offer)."""
from __future__ import annotations

from dataclasses import dataclass

from ..logs import printable

SERVER, BROWSER = "server", "browser"


@dataclass(frozen=True)
class RenderChoice:
    where: str  # SERVER or BROWSER
    reason: str  # why, in words for the page and the logs


def choose_render(where: str, page: dict | None, offers_video: bool) -> RenderChoice:
    """Where the face is drawn for this call: the tenant's `render.where` and what the page said it can do."""
    page = page if isinstance(page, dict) else {}
    can = page.get("webgl2") is True and page.get("avatar") is True
    if where == SERVER:
        return RenderChoice(SERVER, "this site shows the avatar as video")
    if can:
        return RenderChoice(BROWSER, "the page draws the avatar")
    missing = "WebGL2" if page.get("webgl2") is not True else f"the avatar ({printable(page.get('error') or 'not loaded', 120)})"
    if not offers_video:
        raise ValueError(f"the page cannot draw the avatar (no {missing}) and asked for no video")
    return RenderChoice(SERVER, f"the page cannot draw the avatar (no {missing}): video from the server instead")
