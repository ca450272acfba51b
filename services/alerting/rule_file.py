"""Reading the start-up rules file: a YAML list of rules with the proto's fields.

`kind` and `severity` are written as lower-case words (`volume_spike`, `critical`) because that is
what an operator types; every error names the entry and field, e.g. `rules_file[2].kind`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import validate_rule
from services.common.errors import InvalidArgument

FIELD = "rules_file"
TEXT_FIELDS = ("id", "tenant", "name", "query")
NUMBER_FIELDS = {
    "threshold": float, "window_seconds": int, "min_posts": int, "sensitivity": float, "escalate_after_seconds": int,
}


def _enum_value(enum: Any, prefix: str, word: Any, field: str) -> int:
    values: dict[str, Any] = dict(enum.DESCRIPTOR.values_by_name)
    name = f"{prefix}{str(word).strip().upper()}"
    if name not in values or name.endswith("UNSPECIFIED"):
        choices = ", ".join(key.removeprefix(prefix).lower() for key in values if not key.endswith("UNSPECIFIED"))
        raise InvalidArgument(field, f"must be one of {choices}")
    return int(values[name].number)


def rule_from_mapping(entry: Any, field: str) -> alerting_pb2.Rule:
    if not isinstance(entry, dict):
        raise InvalidArgument(field, "must be a mapping of rule fields")
    unknown = set(entry) - {*TEXT_FIELDS, *NUMBER_FIELDS, "kind", "severity", "labels"}
    if unknown:
        raise InvalidArgument(f"{field}.{sorted(map(str, unknown))[0]}", "is not a rule field")
    rule = alerting_pb2.Rule()
    for name in TEXT_FIELDS:
        if name in entry:
            setattr(rule, name, str(entry[name]))
    for name, convert in NUMBER_FIELDS.items():
        if name in entry:
            try:
                setattr(rule, name, convert(entry[name]))
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"{field}.{name}", "must be a number") from exc
    if "labels" in entry:
        labels = entry["labels"]
        if not isinstance(labels, dict) or any(isinstance(v, (dict, list)) for v in labels.values()):
            raise InvalidArgument(f"{field}.labels", "must be a mapping of label names to values")
        rule.labels.update({str(name): str(value) for name, value in labels.items()})
    if "kind" in entry:
        rule.kind = _enum_value(alerting_pb2.RuleKind, "RULE_KIND_", entry["kind"], f"{field}.kind")  # type: ignore[assignment]
    if "severity" in entry:
        rule.severity = _enum_value(alerting_pb2.Severity, "SEVERITY_", entry["severity"], f"{field}.severity")  # type: ignore[assignment]
    return validate_rule(rule, prefix=field)


def load_rules(path: Path) -> list[alerting_pb2.Rule]:
    """Every rule of the file, validated; InvalidArgument on the first bad one."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if document is None:
        return []
    if not isinstance(document, list):
        raise InvalidArgument(FIELD, f"{path} must hold a YAML list of rules")
    rules = [rule_from_mapping(entry, f"{FIELD}[{i}]") for i, entry in enumerate(document)]
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate(rules):
        if (rule.tenant, rule.id) in seen:
            raise InvalidArgument(f"{FIELD}[{i}].id", f"{rule.id!r} appears twice for tenant {rule.tenant!r}")
        seen.add((rule.tenant, rule.id))
    return rules
