"""`civic alerts ...`: the action queue from a terminal: list, acknowledge, assign, resolve, silence, watch,
and the rules that raise it.

`civic alerts --tenant T` alone still lists, as it did before the subcommands existed. `--by` is who
does it, recorded with the change; it becomes the signed-in user once authentication exists.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc
from services.cli.common import console, friendly_errors, stub
from services.common import enum_names
from services.common.settings import get_settings

app = typer.Typer(
    help="The agency's alerts: list, ack, assign, resolve, silence, watch; and its rules.", invoke_without_command=True
)

Tenant = Annotated[str, typer.Option("--tenant", "-t", help="The agency whose alerts these are.")]
By = Annotated[str, typer.Option("--by", help="Who does this (recorded with the change).")]
AlertId = Annotated[str, typer.Argument(help="The alert id, as `civic alerts list` shows it.")]
STATES = {"firing": alerting_pb2.ALERT_STATE_FIRING, "resolved": alerting_pb2.ALERT_STATE_RESOLVED}
# `name=value`, `name!=value`, `name=~regex`, `name!~regex`, as in Alertmanager's amtool.
MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$")
OPERATORS = {
    "=": alerting_pb2.MATCH_OPERATOR_EQUAL, "!=": alerting_pb2.MATCH_OPERATOR_NOT_EQUAL,
    "=~": alerting_pb2.MATCH_OPERATOR_REGEX, "!~": alerting_pb2.MATCH_OPERATOR_NOT_REGEX,
}
DURATION = re.compile(r"^(\d+)([smhd])$")
# How each kind's threshold reads (the Rule.threshold comment of the contract).
THRESHOLD_UNITS = {
    "query_match": " posts", "volume_spike": "x baseline", "volume_drop": "x below baseline",
    "negative_share": "% negative", "sentiment_shift": " points more negative", "new_term": " posts",
    "high_reach": " followers or interactions", "cardinality": " authors", "anger_surge": " points more anger",
}
# Priority factors shown per alert in the listing (the largest contributions first).
WHY_FACTORS = 3
# Factors shown with their reason whenever they count: a person must see which posts raised them.
ALWAYS_EXPLAINED = frozenset({"abuse"})
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _stub() -> alerting_pb2_grpc.AlertingServiceStub:
    return stub(alerting_pb2_grpc.AlertingServiceStub, get_settings().alerting_target)


def why(alert: alerting_pb2.Alert, shown: int = WHY_FACTORS) -> str:
    """The factors that add most to the priority, with their points; abuse always with its reason."""
    ranked = sorted(alert.priority_factors, key=lambda f: -f.value * f.weight)
    parts: list[str] = []
    for factor in ranked:
        if factor.value <= 0 or (len(parts) >= shown and factor.name not in ALWAYS_EXPLAINED):
            continue
        points = f"{factor.name} +{100 * factor.value * factor.weight:.0f}"
        parts.append(f"{points} ({factor.reason})" if factor.name in ALWAYS_EXPLAINED and factor.reason else points)
    return ", ".join(parts)


def _table(tenant: str, alerts: list[alerting_pb2.Alert]) -> None:
    if not alerts:
        console.print(f"No alerts for {tenant}.")
        return
    table = Table(title=f"Action queue of {tenant} (highest priority first)")
    columns = ("id", "priority", "severity", "state", "rule", "window (UTC)", "posts", "who", "summary", "why")
    for column in columns:
        table.add_column(column, overflow="fold")
    for alert in alerts:
        who = ", ".join(filter(None, [
            f"ack {alert.acknowledged_by}" if alert.acknowledged_by else "",
            f"-> {alert.assignee}" if alert.assignee else "",
            "silenced" if alert.silenced_by else "",
            "escalated" if alert.HasField("escalated_at") else "",
        ]))
        table.add_row(
            alert.id, f"{alert.priority:.0f}", enum_names.word(alerting_pb2.Severity, alert.severity),
            enum_names.word(alerting_pb2.AlertState, alert.state), alert.rule_name,
            alert.window_start.ToDatetime().strftime("%Y-%m-%d %H:%M"), str(alert.post_count), who, alert.summary,
            why(alert),
        )
    console.print(table)


def _list(tenant: str, limit: int, state: str | None) -> None:
    if state is not None and state not in STATES:
        raise ValueError(f"--state must be firing or resolved, not {state!r}")
    request = alerting_pb2.ListAlertsRequest(tenant=tenant, limit=limit, state=STATES.get(state or "", 0))  # type: ignore[arg-type]
    _table(tenant, list(_stub().ListAlerts(request, timeout=get_settings().rpc_timeout_s).alerts))


@app.callback()
@friendly_errors
def alerts(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="List this agency's alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """The agency's action queue: alerts, highest priority first (`civic alerts --tenant T`)."""
    if ctx.invoked_subcommand is not None:
        return
    if tenant is None:
        raise ValueError("give --tenant, or a command: list, ack, assign, resolve, silence, watch, rules")
    _list(tenant, limit, None)


@app.command("list")
@friendly_errors
def list_alerts(
    tenant: Tenant,
    state: Annotated[str | None, typer.Option(help="firing or resolved; default both.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Alerts with their ids, highest priority first."""
    _list(tenant, limit, state)


def threshold_words(rule: alerting_pb2.Rule) -> str:
    """The threshold in the unit of the rule's kind."""
    unit = THRESHOLD_UNITS.get(enum_names.word(alerting_pb2.RuleKind, rule.kind), "")
    return f"{rule.threshold:g}{unit}"


@app.command()
@friendly_errors
def rules(tenant: Tenant) -> None:
    """The agency's alert rules: what each watches for (kind), on which posts, from what threshold."""
    listed = _stub().ListRules(alerting_pb2.ListRulesRequest(tenant=tenant), timeout=get_settings().rpc_timeout_s)
    if not listed.rules:
        console.print(f"No rules for {tenant}.")
        return
    table = Table(title=f"Alert rules of {tenant}")
    for column in ("id", "kind", "query", "threshold", "window", "min posts", "severity", "name"):
        table.add_column(column, overflow="fold")
    for rule in listed.rules:
        table.add_row(
            rule.id, enum_names.word(alerting_pb2.RuleKind, rule.kind), rule.query or "(every post)",
            threshold_words(rule), f"{rule.window_seconds // 60} min", str(rule.min_posts),
            enum_names.word(alerting_pb2.Severity, rule.severity), rule.name,
        )
    console.print(table)


def _changed(alert: alerting_pb2.Alert, what: str) -> None:
    console.print(f"{alert.id} {what} ({enum_names.word(alerting_pb2.AlertState, alert.state)}): "
                  f"{alert.rule_name}", highlight=False)


@app.command()
@friendly_errors
def ack(alert_id: AlertId, tenant: Tenant, by: By) -> None:
    """Acknowledge an alert: someone is on it, and it will not escalate."""
    request = alerting_pb2.AcknowledgeAlertRequest(tenant=tenant, alert_id=alert_id, by=by)
    _changed(_stub().AcknowledgeAlert(request, timeout=get_settings().rpc_timeout_s).alert, f"acknowledged by {by}")


@app.command()
@friendly_errors
def assign(
    alert_id: AlertId, assignee: Annotated[str, typer.Argument(help="Person or team.")], tenant: Tenant, by: By
) -> None:
    """Assign an alert to a person or team."""
    request = alerting_pb2.AssignAlertRequest(tenant=tenant, alert_id=alert_id, assignee=assignee, by=by)
    _changed(_stub().AssignAlert(request, timeout=get_settings().rpc_timeout_s).alert, f"assigned to {assignee}")


@app.command()
@friendly_errors
def resolve(alert_id: AlertId, tenant: Tenant, by: By) -> None:
    """Resolve an alert by hand."""
    request = alerting_pb2.ResolveAlertRequest(tenant=tenant, alert_id=alert_id, by=by)
    _changed(_stub().ResolveAlert(request, timeout=get_settings().rpc_timeout_s).alert, f"resolved by {by}")


def parse_matcher(text: str) -> alerting_pb2.Matcher:
    found = MATCHER.match(text)
    if found is None:
        raise ValueError(f"--match {text!r}: write name=value, name!=value, name=~regex or name!~regex")
    name, operator, value = found.groups()
    return alerting_pb2.Matcher(name=name, value=value.strip().strip('"'), operator=OPERATORS[operator])  # type: ignore[arg-type]


def parse_duration(text: str) -> timedelta:
    found = DURATION.match(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"--for {text!r}: write a duration like 30m, 2h or 1d")
    return timedelta(seconds=int(found.group(1)) * UNIT_S[found.group(2)])


@app.command()
@friendly_errors
def silence(
    tenant: Tenant,
    by: By,
    match: Annotated[list[str], typer.Option("--match", "-m", help="Label matcher, e.g. team=roads; repeatable.")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h.")] = "2h",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    expire: Annotated[str | None, typer.Option(help="End this silence id now instead.")] = None,
) -> None:
    """Hold notifications of matching alerts for a while (or end a silence with --expire ID)."""
    settings = get_settings()
    if expire is not None:
        request = alerting_pb2.ExpireSilenceRequest(tenant=tenant, id=expire)
        ended = _stub().ExpireSilence(request, timeout=settings.rpc_timeout_s).silence
        console.print(f"silence {ended.id} ended at {ended.ends_at.ToDatetime():%Y-%m-%d %H:%M} UTC")
        return
    made = alerting_pb2.Silence(
        tenant=tenant, matchers=[parse_matcher(m) for m in match], created_by=by, comment=comment
    )
    made.ends_at.FromDatetime(datetime.now(UTC) + parse_duration(duration))
    stored = _stub().CreateSilence(alerting_pb2.CreateSilenceRequest(silence=made), timeout=settings.rpc_timeout_s)
    console.print(f"silence {stored.silence.id} until {stored.silence.ends_at.ToDatetime():%Y-%m-%d %H:%M} UTC")


@app.command()
@friendly_errors
def watch(
    tenant: Tenant,
    after: Annotated[int, typer.Option(min=0, help="Resume after this sequence (printed first on each line).")] = 0,
) -> None:
    """Print the agency's alert events as they happen, one line each; Ctrl-C to stop."""
    stream = _stub().WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant=tenant, after_sequence=after))
    try:
        for reply in stream:
            event = reply.event
            console.print(
                f"{event.sequence} {event.at.ToDatetime():%Y-%m-%d %H:%M:%S} "
                f"{enum_names.word(alerting_pb2.AlertEventKind, event.kind)} {event.alert.id} "
                f"{event.alert.rule_name}: {event.alert.summary}",
                highlight=False, soft_wrap=True,
            )
            console.file.flush()  # a pipe (`| grep`) sees each event as it happens
    except KeyboardInterrupt:
        stream.cancel()
