"""Remove secrets that a server echoed into an error message before the message goes anywhere.

A careless or hostile server may repeat what it was sent (an `Authorization` header, the OAuth
form with the client secret, a token) in its error body; the clients quote error bodies in their
messages, which end up in Dagster's event log, the compute logs and the rejection tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import httpx

REDACTED = "[redacted]"
# Shorter values are not secrets, and replacing them would mangle ordinary words.
MIN_SECRET_CHARS = 8


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, raw or URL-encoded, replaced by [redacted].

    Messages quote error bodies cut to a few hundred characters, so a secret may also appear cut
    short: its longest beginning found in the text (at least MIN_SECRET_CHARS) is redacted too.
    """
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote_plus(secret))):
            text = text.replace(form, REDACTED)
            for cut in range(len(form) - 1, MIN_SECRET_CHARS - 1, -1):
                if form[:cut] in text:
                    text = text.replace(form[:cut], REDACTED)
                    break
    return text


class RequestUrlFilter(logging.Filter):
    """httpx logs every request's URL at INFO; a webhook's path or a key in a query string is a
    secret, so the logged URL keeps only its scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 1:
            url = record.args[1]
            if isinstance(url, httpx.URL | str):
                parsed = httpx.URL(str(url))
                shown = f"{parsed.scheme}://{parsed.netloc.decode()}/{REDACTED}"
                record.args = (record.args[0], shown, *record.args[2:])
        return True


def redact_request_logs() -> None:
    """Install `RequestUrlFilter` on httpx's logger, once per process."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RequestUrlFilter) for f in logger.filters):
        logger.addFilter(RequestUrlFilter())
