"""IPA from the espeak-ng program: a separate process, so no GPL code is linked into this package."""
from __future__ import annotations

import re
import shutil
import subprocess


class VoiceUnavailable(RuntimeError):
    pass


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise VoiceUnavailable("the espeak-ng program is needed for phonemes (apt-get install espeak-ng)")


def espeak_ipa(text: str, voice: str = "en-us") -> str:
    """IPA for `text`; espeak drops punctuation, so clause and sentence marks are put back."""
    clauses = [c for c in re.split(r"(?<=[,;:.!?])\s+", text.strip()) if c]
    out = []
    for clause in clauses:
        ipa = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", voice, "--", clause], capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        ipa = " ".join(line.strip() for line in ipa.splitlines() if line.strip())
        mark = clause[-1] if clause[-1] in ",;:.!?" else ""
        out.append(ipa + mark)
    return " ".join(out)
