"""`civic topics ...`: an agency's own topics from a terminal: define, list, delete, copy the defaults,
mark posts, follow the re-tagging jobs and re-enrich history after a model change.

`--by` is who does it, recorded with the change and in the topics' history.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civic.listening.v1 import topics_pb2, topics_pb2_grpc
from services.cli.common import console, friendly_errors, stub
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.settings import get_settings

app = typer.Typer(help="The agency's topics: define, list, mark posts, follow re-tagging.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option("--tenant", "-t", help="The agency whose topics these are.")]
By = Annotated[str, typer.Option("--by", help="Who does this (recorded with the change).")]
Name = Annotated[str, typer.Argument(help="The topic's name.")]
SCORERS = {topics_pb2.TOPIC_SCORER_DESCRIPTION: "description", topics_pb2.TOPIC_SCORER_PROTOTYPE: "examples",
           topics_pb2.TOPIC_SCORER_CLASSIFIER: "classifier"}
STATES = {topics_pb2.TAGGING_JOB_STATE_QUEUED: "queued", topics_pb2.TAGGING_JOB_STATE_RUNNING: "running",
          topics_pb2.TAGGING_JOB_STATE_DONE: "done", topics_pb2.TAGGING_JOB_STATE_SUPERSEDED: "superseded",
          topics_pb2.TAGGING_JOB_STATE_FAILED: "failed"}
FINISHED = {topics_pb2.TAGGING_JOB_STATE_DONE, topics_pb2.TAGGING_JOB_STATE_SUPERSEDED,
            topics_pb2.TAGGING_JOB_STATE_FAILED}


def _stub() -> topics_pb2_grpc.TopicServiceStub:
    return stub(topics_pb2_grpc.TopicServiceStub, get_settings().search_target)


def _timeout() -> float:
    return get_settings().rpc_timeout_s


def quality_line(quality: topics_pb2.TopicQuality) -> str:
    marks = f"{quality.relevant_marks}+/{quality.not_relevant_marks}- marks"
    if quality.scorer == topics_pb2.TOPIC_SCORER_CLASSIFIER:
        return (f"classifier, {marks}, cross-validated precision {quality.precision:.2f} recall {quality.recall:.2f} "
                f"F1 {quality.f1:.2f} ({quality.folds} folds)")
    return f"{SCORERS.get(quality.scorer, '?')}, {marks}, classifier after {quality.marks_needed} more"


@app.command("list")
@friendly_errors
def list_topics(tenant: Tenant) -> None:
    """The topics the agency's posts are tagged with, and how each is scored."""
    topic_set = _stub().ListTopics(topics_pb2.ListTopicsRequest(tenant=tenant), timeout=_timeout()).topic_set
    origin = " (the shipped defaults: `civic topics copy-defaults` makes them the agency's own)" \
        if topic_set.defaults else ""
    console.print(f"[bold]{tenant}[/bold]: topic set version {topic_set.version}{origin}")
    table = Table("topic", "threshold", "scored by", "description")
    for topic in topic_set.topics:
        table.add_row(topic.name, f"{topic.threshold:.2f}", quality_line(topic.quality), topic.description)
    console.print(table)


@app.command()
@friendly_errors
def show(name: Name, tenant: Tenant) -> None:
    """One topic: its definition, examples and measured quality."""
    topic = _stub().GetTopic(topics_pb2.GetTopicRequest(tenant=tenant, name=name), timeout=_timeout()).topic
    console.print(f"[bold]{topic.name}[/bold]  version {topic.version}, by {topic.updated_by} at "
                  f"{topic.updated_at.ToJsonString()}", highlight=False)
    console.print(f"  {topic.description}", highlight=False)
    console.print(f"  threshold {topic.threshold:.2f}; {quality_line(topic.quality)}", highlight=False)
    if topic.query:
        console.print(f"  must match: {topic.query}", highlight=False)
    for label, texts in (("example", topic.examples), ("counter-example", topic.counter_examples)):
        for text in texts:
            console.print(f"  {label}: {text}", highlight=False)


@app.command()
@friendly_errors
def put(
    tenant: Tenant,
    by: By,
    file: Annotated[Path | None, typer.Option(help="A topics YAML (as `civic classify --topics` reads): every "
                                                   "topic in it is put.", exists=True, dir_okay=False)] = None,
    name: Annotated[str, typer.Option(help="One topic's name (without --file).")] = "",
    description: Annotated[str, typer.Option(help="What it is about, in plain words.")] = "",
    example: Annotated[list[str] | None, typer.Option(help="A post about it (repeatable).")] = None,
    counter_example: Annotated[list[str] | None, typer.Option(help="A post close to it but not about it.")] = None,
    query: Annotated[str, typer.Option(help="A boolean query posts must match to be tagged.")] = "",
    threshold: Annotated[float, typer.Option(help="Tag at or above this relevance (0-1); 0 means 0.5.")] = 0.0,
    wait: Annotated[bool, typer.Option(help="Wait until the agency's history is re-tagged.")] = False,
) -> None:
    """Create or replace topics; history is re-tagged by a background job."""
    if file is not None:
        definitions = load_topics(file)
    elif name:
        definitions = [TopicDefinition(name, description, tuple(example or ()), tuple(counter_example or ()), query,
                                       threshold)]
    else:
        raise ValueError("give --file, or --name with --description")
    job = None
    for definition in definitions:
        reply = _stub().PutTopic(topics_pb2.PutTopicRequest(tenant=tenant, by=by, topic=topics_pb2.Topic(
            name=definition.name, description=definition.description, examples=definition.examples,
            counter_examples=definition.counter_examples, query=definition.query, threshold=definition.threshold,
        )), timeout=_timeout())
        job = reply.job
        console.print(f"{reply.topic.name}: version {reply.topic.version}, {quality_line(reply.topic.quality)}",
                      highlight=False)
    if job is not None:
        _follow(tenant, job, wait)


@app.command()
@friendly_errors
def delete(name: Name, tenant: Tenant, by: By,
           wait: Annotated[bool, typer.Option(help="Wait until history is re-tagged.")] = False) -> None:
    """Delete a topic and its marks; history is re-tagged without it."""
    reply = _stub().DeleteTopic(topics_pb2.DeleteTopicRequest(tenant=tenant, name=name, by=by), timeout=_timeout())
    console.print(f"{name} deleted")
    _follow(tenant, reply.job, wait)


@app.command("copy-defaults")
@friendly_errors
def copy_defaults(
    tenant: Tenant, by: By,
    name: Annotated[list[str] | None, typer.Option(help="Copy only these (repeatable); default: all.")] = None,
) -> None:
    """Copy the shipped default topics into the agency's own set, to edit."""
    reply = _stub().CopyDefaultTopics(topics_pb2.CopyDefaultTopicsRequest(tenant=tenant, names=name or [], by=by),
                                      timeout=_timeout())
    console.print(f"{tenant} now has {len(reply.topic_set.topics)} topics (version {reply.topic_set.version})")
    if reply.HasField("job"):
        _follow(tenant, reply.job, False)


@app.command()
@friendly_errors
def mark(
    post_id: Annotated[str, typer.Argument(help="The post's id.")],
    topic: Annotated[str, typer.Option(help="The topic.")],
    channel: Annotated[str, typer.Option(help="The post's channel.")],
    tenant: Tenant, by: By,
    relevant: Annotated[bool, typer.Option("--relevant/--not-relevant", help="Is the post about the topic?")] = True,
) -> None:
    """Say whether a post is about a topic; enough marks train the topic's classifier."""
    reply = _stub().MarkPost(topics_pb2.MarkPostRequest(tenant=tenant, topic=topic, channel=channel, post_id=post_id,
                                                        relevant=relevant, by=by), timeout=_timeout())
    console.print(f"{topic}: {quality_line(reply.quality)}", highlight=False)
    if reply.HasField("job"):
        _follow(tenant, reply.job, False)


@app.command()
@friendly_errors
def marks(name: Name, tenant: Tenant,
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """A topic's marks, newest first."""
    reply = _stub().ListMarks(topics_pb2.ListMarksRequest(tenant=tenant, topic=name, limit=limit), timeout=_timeout())
    table = Table("marked (UTC)", "by", "post", "relevant", "text")
    for item in reply.marks:
        table.add_row(item.marked_at.ToJsonString()[:19], item.by, f"{item.channel}/{item.post_id}",
                      "yes" if item.relevant else "no", item.text)
    console.print(table)


@app.command()
@friendly_errors
def jobs(tenant: Tenant, limit: Annotated[int, typer.Option(min=1, max=100)] = 10) -> None:
    """The agency's re-tagging and re-enrichment jobs, newest first, with their progress."""
    reply = _stub().ListTaggingJobs(topics_pb2.ListTaggingJobsRequest(tenant=tenant, limit=limit), timeout=_timeout())
    table = Table("job", "state", "version", "progress", "changed", "posts/s", "reason")
    for job in reply.jobs:
        table.add_row(job.id[:12], STATES.get(job.state, "?"), str(job.topic_set_version),
                      f"{job.processed}/{job.total}", str(job.changed), f"{job.posts_per_second:.0f}",
                      job.reason + (f" ({job.error})" if job.error else ""))
    console.print(table)


@app.command()
@friendly_errors
def reenrich(tenant: Tenant,
             start: Annotated[bool, typer.Option(help="Start the job (without: only the estimate).")] = False) -> None:
    """How many posts older models enriched, how long re-enriching them takes; --start does it."""
    reply = _stub().ReenrichPosts(topics_pb2.ReenrichPostsRequest(tenant=tenant, start=start), timeout=_timeout())
    console.print(f"current models: {reply.current_versions}", highlight=False)
    console.print(f"{reply.outdated_posts} of {reply.total_posts} posts were enriched by other versions; about "
                  f"{reply.estimated_seconds:.0f} s at {reply.posts_per_second:.0f} posts/s", highlight=False)
    if reply.HasField("job"):
        _follow(tenant, reply.job, False)


def _follow(tenant: str, job: topics_pb2.TaggingJob, wait: bool) -> None:
    """Says which job re-tags history; with wait, shows its progress until it ends."""
    console.print(f"re-tagging history: job {job.id} (`civic topics jobs --tenant {tenant}`)", highlight=False)
    if not wait:
        return
    client = _stub()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("re-tagging", total=None)
        while job.state not in FINISHED:
            time.sleep(0.5)
            job = client.GetTaggingJob(topics_pb2.GetTaggingJobRequest(tenant=tenant, id=job.id),
                                       timeout=_timeout()).job
            bar.update(task, total=job.total or None, completed=job.processed)
    console.print(f"job {STATES.get(job.state, '?')}: {job.processed} posts, {job.changed} changed"
                  + (f" ({job.error})" if job.error else ""), highlight=False)
