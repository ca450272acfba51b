"""Rolling a tenant's posts over to a new backing index when the current one is old or large enough.

Readers and writers only ever use the tenant alias, so a rollover (the next `...v-00000N`, made by
the same composable template) is invisible to them: reads span every backing index, writes go to
the new write index. On a cluster with index lifecycle management, an ILM policy with the same
conditions does the rolling (attached through a small per-tenant index template that names the
tenant's rollover alias, as ILM requires); without ILM (the local server has no such module), the
search service checks the conditions itself every `rollover_check_interval_s`.

A post redelivered after its index rolled over is written again into the new index, so the
alias then holds two copies of it until the older index is deleted; the forwarder redelivers
within minutes, rollovers happen after days, so this is rare.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from services.common.settings import Settings
from services.search.mapping import alias_name, index_template, settings_component

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conditions:
    """Any one of them met rolls the index over."""

    max_docs: int = 20_000_000
    max_primary_shard_size: str = "50gb"
    max_age: str = "30d"

    @classmethod
    def from_settings(cls, settings: Settings) -> Conditions:
        return cls(settings.rollover_max_docs, settings.rollover_max_primary_shard_size, settings.rollover_max_age)

    def as_dict(self) -> dict[str, Any]:
        return {"max_docs": self.max_docs, "max_primary_shard_size": self.max_primary_shard_size,
                "max_age": self.max_age}


@dataclass(frozen=True)
class Rolled:
    rolled_over: bool
    old_index: str
    new_index: str


def ilm_available(es: Elasticsearch) -> bool:
    """True when the cluster runs index lifecycle management (GET _ilm/status answers)."""
    try:
        return bool(es.ilm.get_status().get("operation_mode"))
    except ApiError:
        return False


def lifecycle_policy(prefix: str) -> str:
    return f"{prefix}-rollover"


def tenant_template(prefix: str, tenant: str) -> str:
    return f"{alias_name(prefix, tenant)}-lifecycle"


def attach_lifecycle(es: Elasticsearch, prefix: str, tenant: str, conditions: Conditions) -> None:
    """ILM clusters: the rollover policy, and a template for the tenant's backing indices that adds
    the policy and the tenant's rollover alias to the shared template; a write index made before
    (or before the cluster had ILM) gets both settings too."""
    es.ilm.put_lifecycle(name=lifecycle_policy(prefix),
                         policy={"phases": {"hot": {"actions": {"rollover": conditions.as_dict()}}}})
    alias = alias_name(prefix, tenant)
    shared = index_template(prefix)
    es.indices.put_index_template(
        name=tenant_template(prefix, tenant), index_patterns=[f"{alias}.v-*"], composed_of=shared["composed_of"],
        priority=shared["priority"] + 100,
        template={"settings": {"index.lifecycle.name": lifecycle_policy(prefix),
                               "index.lifecycle.rollover_alias": alias}},
        meta={"description": f"Lifecycle of {alias}; everything else comes from {settings_component(prefix)} "
                              "and the mappings component"},
    )
    if es.indices.exists_alias(name=alias):
        write_index = next(name for name, spec in es.indices.get_alias(name=alias).body.items()
                           if spec["aliases"][alias].get("is_write_index"))
        es.indices.put_settings(index=write_index, settings={"index.lifecycle.name": lifecycle_policy(prefix),
                                                             "index.lifecycle.rollover_alias": alias})


def rollover(es: Elasticsearch, prefix: str, tenant: str, conditions: Conditions | None) -> Rolled:
    """Rolls the tenant's alias over when a condition is met (always when conditions is None)."""
    reply = es.indices.rollover(alias=alias_name(prefix, tenant),
                                conditions=conditions.as_dict() if conditions else None)
    return Rolled(bool(reply["rolled_over"]), str(reply["old_index"]), str(reply["new_index"]))


def tenants(es: Elasticsearch, prefix: str) -> list[str]:
    """Tenants that have a write alias under this prefix."""
    try:
        found = es.indices.get_alias(name=f"{prefix}-*", index=f"{prefix}-*")
    except ApiError as exc:
        if exc.meta.status == 404:
            return []
        raise
    names = {alias for index in found.body.values() for alias, spec in index.get("aliases", {}).items()
             if spec.get("is_write_index")}
    return sorted(name.removeprefix(f"{prefix}-") for name in names)


class RolloverLoop:
    """Checks every tenant's rollover conditions periodically, when no ILM does it."""

    def __init__(self, es: Elasticsearch, prefix: str, conditions: Conditions, interval_s: float) -> None:
        self.es = es
        self.prefix = prefix
        self.conditions = conditions
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollover", daemon=True)

    def start(self) -> RolloverLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self) -> list[Rolled]:
        """One pass over every tenant; the indices that rolled over (none where ILM does the rolling)."""
        if ilm_available(self.es):
            return []
        rolled = [rollover(self.es, self.prefix, tenant, self.conditions) for tenant in tenants(self.es, self.prefix)]
        for item in rolled:
            if item.rolled_over:
                log.info("rolled %s over to %s", item.old_index, item.new_index)
        return [item for item in rolled if item.rolled_over]

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except (ApiError, TransportError) as exc:  # the next pass tries again
                log.warning("rollover check failed: %s", exc)
