"""Removing secrets from any text before it is stored, logged or shown.

Secrets are known values (the configured API key and secret, and the credentials inside report URLs) plus
patterns that look like secrets whatever their value (Authorization headers, user:password@ in URLs, query
parameters named like keys or tokens).
"""

from __future__ import annotations

import re
import threading

MASK = "[redacted]"

_PATTERNS = [
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(basic|bearer|token)?\s*[A-Za-z0-9+/=._~-]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]*@"), r"\1" + MASK + "@"),
    (
        re.compile(
            r"(?i)([?&](?:api[_-]?key|api[_-]?secret|secret|token|password|passwd|auth|key|sig|signature)=)[^&\s'\"]+"
        ),
        r"\1" + MASK,
    ),
    (
        re.compile(r"(?i)(\"?(?:password|secret|api_secret|apikey|api_key|token)\"?\s*[:=]\s*\"?)[^\s\",}]+"),
        r"\1" + MASK,
    ),
]

_lock = threading.Lock()
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` masks it wherever it appears. Short values are ignored
    (masking every 'a' in a message would destroy it and protect nothing)."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def redact(text) -> str:
    """Return `text` as a string with every known secret and secret-shaped fragment masked, and control
    characters (a NUL cannot even be stored in PostgreSQL) shown as escapes."""
    if text is None:
        return ""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
