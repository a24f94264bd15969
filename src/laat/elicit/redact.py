"""The one redaction of credentials in URLs, applied wherever a setting or message is stored.

A ``base_url`` may carry a key (``http://user:KEY@host/v1`` or ``...?api_key=KEY``); MLflow
params and tags, the elicitation record, logs and error messages all go through `redact`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
# ``scheme://userinfo@``: everything between the scheme and the last ``@`` of the authority.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\s'\"]+@")
# Query or fragment parameters whose name says they hold a secret (api_key, token, sig, ...).
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;#](?:[\w.-]*(?:key|token|secret|passw(?:or)?d|pwd|auth|sig|signature|credential)[\w.-]*)=)"
    r"[^&;#\s'\"]*",
    re.IGNORECASE,
)


def redact(value: Any) -> Any:
    """``value`` with URL credentials masked; strings inside dicts, lists and tuples too."""
    if isinstance(value, str):
        return _SECRET_PARAM.sub(rf"\g<name>{MASK}", _USERINFO.sub(rf"\g<scheme>{MASK}@", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Masks credentials in a log record's final message (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_logger(name: str) -> None:
    """Attach one `RedactingFilter` to the logger ``name`` (idempotent)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
