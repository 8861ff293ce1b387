"""Alert on every failed run: which connection, why, and the command that fixes it."""

import os

import dagster as dg

from resources.alerts import AlertError, RunFailure, alert_payload, post_alert


def _reasons(context: dg.RunFailureSensorContext) -> tuple[str, ...]:
    """One sentence per failed connection (a batch's step lists them in its metadata)."""
    reasons = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        sentences = user.metadata.get("failure_sentences") if user else None
        if sentences is not None and isinstance(sentences.value, dict):
            reasons += [str(sentence) for sentence in sentences.value.values()]
        elif user and user.description:
            reasons.append(user.description)
        elif data.error:
            reasons.append(data.error.message.strip().splitlines()[-1])
    return tuple(dict.fromkeys(reasons))  # one line per distinct reason, in order


def _failed_connections(context: dg.RunFailureSensorContext) -> str | None:
    """The connections a batched (backfill) run failed for, from its steps' failure metadata."""
    names: list[str] = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data.user_failure_data
        if data is not None and "failed_connections" in data.metadata:
            names += str(data.metadata["failed_connections"].value).split(", ")
    return ", ".join(dict.fromkeys(names)) or None


@dg.run_failure_sensor(
    name="tiktok_run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed runs to ALERT_WEBHOOK_URL (Slack-compatible JSON), if set.",
)
def tiktok_run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    webhook_url = os.environ.get("ALERT_WEBHOOK_URL")
    if not webhook_url:
        context.log.info("ALERT_WEBHOOK_URL is not set: run failure not posted")
        return
    run = context.dagster_run
    failure = RunFailure(
        job=run.job_name,
        run_id=run.run_id,
        connection=run.tags.get("dagster/partition") or _failed_connections(context),
        reasons=_reasons(context),
        ui_url=os.environ.get("DAGSTER_UI_URL"),
    )
    try:
        post_alert(webhook_url, alert_payload(failure))
    except AlertError as err:
        context.log.warning("run failure alert not delivered: %s", err)
