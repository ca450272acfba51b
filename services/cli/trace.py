"""`civic trace POST_ID`: a post's journey through the stack, as span trees with timings.

Reads the spans the local OTLP receiver stored (see services/devstack/otlp_receiver.py). A post is
found through the post ids its spans carry (civic.post_ids); work done in a batch that continued
another post's trace is shown under the span it links to, so the post's whole journey is visible.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from services.devstack.otlp_receiver import SPANS_FILE, load

Span = dict[str, Any]
# Attributes worth a glance in a terminal; the receiver's file keeps all of them.
SHOWN_ATTRIBUTES = (
    "civic.tenant", "civic.channel", "civic.batch.size", "civic.model", "civic.device",
    "db.operation", "rpc.grpc.status_code",
)


def names_post(span: Span, post_id: str) -> bool:
    attributes = span["attributes"]
    return post_id in attributes.get("civic.post_ids", ()) or attributes.get("civic.post_id") == post_id


def post_traces(spans: Iterable[Span], post_id: str) -> list[str]:
    """Ids of the traces with a span naming the post, earliest first."""
    first_seen: dict[str, int] = {}
    for span in spans:
        if names_post(span, post_id):
            first_seen[span["trace_id"]] = min(first_seen.get(span["trace_id"], span["start_ns"]), span["start_ns"])
    return sorted(first_seen, key=first_seen.__getitem__)


def _label(span: Span, origin_ns: int) -> str:
    duration_ms = (span["end_ns"] - span["start_ns"]) / 1e6
    offset_ms = (span["start_ns"] - origin_ns) / 1e6
    shown = " ".join(
        f"{key.rsplit('.', 1)[-1]}={span['attributes'][key]}" for key in SHOWN_ATTRIBUTES if key in span["attributes"]
    )
    status = " [red]error[/red]" if span["status"] == "error" else ""
    return (
        f"[bold]{escape(span['name'])}[/bold] [cyan]{escape(span['service'])}[/cyan] "
        f"{duration_ms:.1f} ms [dim]+{offset_ms:.1f} ms {escape(shown)}[/dim]{status}"
    )


class _Index:
    """Spans by trace, by parent and by the span they link to."""

    def __init__(self, spans: list[Span]) -> None:
        self.children: dict[str, list[Span]] = defaultdict(list)
        self.linked_from: dict[str, list[Span]] = defaultdict(list)
        self.by_trace: dict[str, list[Span]] = defaultdict(list)
        for span in spans:
            self.by_trace[span["trace_id"]].append(span)
            if span["parent_span_id"]:
                self.children[span["parent_span_id"]].append(span)
            for link in span["links"]:
                self.linked_from[link["span_id"]].append(span)

    def roots(self, trace_id: str) -> list[Span]:
        spans = self.by_trace[trace_id]
        ids = {span["span_id"] for span in spans}
        return sorted((s for s in spans if s["parent_span_id"] not in ids), key=lambda s: s["start_ns"])


def _grow(node: Tree, span: Span, index: _Index, origin_ns: int, seen: set[str]) -> None:
    if span["span_id"] in seen:
        return
    seen.add(span["span_id"])
    branch = node.add(_label(span, origin_ns))
    for child in sorted(index.children[span["span_id"]], key=lambda s: s["start_ns"]):
        _grow(branch, child, index, origin_ns, seen)
    for linked in index.linked_from[span["span_id"]]:
        if linked["trace_id"] != span["trace_id"] and linked["span_id"] not in seen:
            via = branch.add(f"[magenta]linked from trace {linked['trace_id'][:8]}…[/magenta]")
            _grow(via, linked, index, origin_ns, seen)


def trace_trees(spans: list[Span], post_id: str) -> list[Tree]:
    """One tree per trace naming the post, with the batches linked to it grafted in."""
    index = _Index(spans)
    trees = []
    seen: set[str] = set()
    for trace_id in post_traces(spans, post_id):
        roots = index.roots(trace_id)
        origin = min(span["start_ns"] for span in roots)
        end = max(span["end_ns"] for span in index.by_trace[trace_id])
        tree = Tree(f"trace [bold]{trace_id}[/bold] {(end - origin) / 1e6:.1f} ms")
        for root in roots:
            _grow(tree, root, index, origin, seen)
        trees.append(tree)
    return trees


def show(console: Console, store: Path, post_id: str) -> None:
    """Prints the post's trace trees; raises ValueError with what to do when there are none."""
    spans = load(store / SPANS_FILE)
    if not spans:
        raise ValueError(
            f"no spans under {store}: `civic up` stores them there when OTEL_EXPORTER_OTLP_ENDPOINT is unset"
        )
    trees = trace_trees(spans, post_id)
    if not trees:
        raise ValueError(f"no span names post {post_id!r} yet (spans arrive within seconds of the work)")
    for tree in trees:
        console.print(tree)
