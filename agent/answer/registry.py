"""Which FAQ answerer each tenant uses right now, and live swapping between fine-tuned versions.

Swapping replaces one dictionary entry after the new version is fully loaded,
so a call in progress finishes its current turn with the old version and uses
the new one from its next turn. The active version per tenant is written to
`<versions_dir>/<tenant>/active.json`, so a restart keeps it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .answerer import FaqAnswerer, FastGate
from .encoders import TUNABLE, load_encoder
from .faq import FaqError, load_faq
from .head import IntentHead

log = logging.getLogger(__name__)
BASE = "base"  # the un-tuned model with the configured FAQ


class VersionError(FaqError):
    pass


def mark_active(versions_dir: Path, tenant: str, version: str) -> None:
    """Records the tenant's active version, for the next start."""
    folder = Path(versions_dir) / tenant
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "active.json").write_text(json.dumps({"version": version}))


def marked_active(versions_dir: Path, tenant: str) -> str:
    """The tenant's recorded active version (BASE when none was activated)."""
    marker = Path(versions_dir) / tenant / "active.json"
    return json.loads(marker.read_text()).get("version", BASE) if marker.exists() else BASE


def saved_versions(versions_dir: Path, tenant: str) -> list[dict]:
    """The manifests of the tenant's fine-tuned versions, oldest first."""
    folder = Path(versions_dir) / tenant
    paths = sorted(folder.glob("v*/manifest.json"), key=lambda p: int(p.parent.name[1:]) if p.parent.name[1:].isdigit() else 0)
    return [json.loads(path.read_text()) for path in paths]


def version_encoders(manifest: dict) -> list[str]:
    """The encoders a version was calibrated with (versions made before there was a choice used the tuned one alone)."""
    return list(manifest.get("encoders", [TUNABLE]))


def load_version(entries, folder: Path, manifest: dict, handoff_text: str, shared: dict | None = None) -> FaqAnswerer:
    """A saved version's answerer: its FAQ with its fine-tuned encoder and the un-tuned ones it was calibrated with.

    `shared`: encoders already loaded by name (un-tuned), used rather than loading another copy.
    """
    shared = shared or {}
    encoders = [load_encoder(name, folder / "model") if name == TUNABLE else shared[name] if name in shared else load_encoder(name)
                for name in version_encoders(manifest)]
    gate = FastGate(**manifest["fast_gate"]) if manifest.get("fast_gate") else None  # versions made before the gate read every encoder
    heads = None
    if manifest.get("decides_with") == "head":  # versions made before the heads decide by averaged cosines
        fast = folder / "fast_head.npz"
        heads = (IntentHead.load(folder / "head.npz"), IntentHead.load(fast) if fast.exists() else None)
    return FaqAnswerer(entries, encoders, manifest["threshold"], handoff_text, gate=gate, heads=heads)


class AnswererRegistry:
    """`load_answerer(entries, folder, manifest, handoff_text)` builds a saved version (tests hand in a fake); by default
    `load_version` with the un-tuned encoders in `shared`."""

    def __init__(self, base: FaqAnswerer, versions_dir: Path, handoff_text: str = "",
                 base_by_tenant: dict[str, FaqAnswerer] | None = None, load_answerer=None, shared: dict | None = None) -> None:
        self._load_answerer = load_answerer or (lambda entries, folder, manifest, handoff: load_version(
            entries, folder, manifest, handoff, shared))
        self.base = base  # the un-tuned model with answer.faq_path
        self.base_by_tenant = base_by_tenant or {}  # tenants with a FAQ of their own
        self.versions_dir = Path(versions_dir)
        self.handoff_text = handoff_text
        self._active: dict[str, tuple[str, FaqAnswerer]] = {}

    def get(self, tenant: str) -> FaqAnswerer:
        return self._active[tenant][1] if tenant in self._active else self.base_for(tenant)

    def for_tenant(self, tenant: str) -> "TenantAnswerer":
        """The tenant's answerer for a call: whichever version is active when each turn is answered."""
        return TenantAnswerer(self, tenant)

    def base_for(self, tenant: str) -> FaqAnswerer:
        return self.base_by_tenant.get(tenant, self.base)

    def active_version(self, tenant: str) -> str:
        return self._active[tenant][0] if tenant in self._active else BASE

    def load(self, tenant: str, version: str) -> FaqAnswerer:
        """Builds the answerer of a saved version (slow: run it off the event loop)."""
        if version == BASE:
            return self.base_for(tenant)
        folder = self.versions_dir / tenant / version
        if not (folder / "manifest.json").exists():
            raise VersionError(f"tenant {tenant!r} has no version {version!r}")
        manifest = json.loads((folder / "manifest.json").read_text())
        faq = next(folder.glob("faq.*"))
        return self._load_answerer(load_faq(faq), folder, manifest, self.handoff_text)

    def activate(self, tenant: str, version: str, answerer: FaqAnswerer) -> None:
        self._active[tenant] = (version, answerer)
        mark_active(self.versions_dir, tenant, version)
        log.info("tenant %s now answers with FAQ version %s", tenant, version)

    def restore(self, tenants: list[str]) -> None:
        """Re-activates the versions that were active before a restart."""
        for tenant in tenants:
            version = marked_active(self.versions_dir, tenant)
            if version != BASE:
                try:
                    self._active[tenant] = (version, self.load(tenant, version))
                except (FaqError, OSError) as exc:
                    log.error("tenant %s: could not restore FAQ version %s (%s); using the base model", tenant, version, exc)


class TenantAnswerer:
    """Answers with the tenant's active version at the moment of each turn (a live swap applies from the next turn)."""

    def __init__(self, registry: AnswererRegistry, tenant: str) -> None:
        self.registry, self.tenant = registry, tenant

    def answer(self, text: str, previous: str | None = None):
        return self.registry.get(self.tenant).answer(text, previous)
