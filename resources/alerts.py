"""Post run-failure alerts to a Slack-compatible incoming webhook (JSON with a `text` field).

The webhook URL holds a token (Slack's do), so it is read from ALERT_WEBHOOK_URL at run time and
never logged; a failed post is reported without the URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

ALERT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REASON_CHARS = 500


class AlertError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunFailure:
    job: str
    run_id: str
    connection: str | None
    reasons: tuple[str, ...]
    ui_url: str | None = None


def alert_payload(failure: RunFailure) -> dict:
    """Slack-compatible message: the connection, why it failed (with the fix), and the run link."""
    subject = "a run"
    if failure.connection:
        names = failure.connection.split(", ")
        subject = ("connection " if len(names) == 1 else "connections ") + ", ".join(
            f"`{name}`" for name in names
        )
    reasons = [reason[:MAX_REASON_CHARS] for reason in failure.reasons] or ["no step failed"]
    lines = [f":rotating_light: tiktok-crm-sync: {subject} failed in job `{failure.job}`"]
    lines += [f"• {reason}" for reason in reasons]
    link = f"{failure.ui_url.rstrip('/')}/runs/{failure.run_id}" if failure.ui_url else None
    lines.append(f"run: {link or failure.run_id}")
    return {
        "text": "\n".join(lines),
        "connection": failure.connection,
        "job": failure.job,
        "run_id": failure.run_id,
    }


def post_alert(webhook_url: str, payload: dict, http: httpx.Client | None = None) -> None:
    client = http or httpx.Client(timeout=ALERT_TIMEOUT)
    try:
        response = client.post(webhook_url, json=payload)
    except httpx.TransportError as err:
        raise AlertError(f"alert webhook unreachable ({type(err).__name__})") from None
    finally:
        if http is None:
            client.close()
    if response.status_code >= 400:
        raise AlertError(f"alert webhook answered HTTP {response.status_code}")
