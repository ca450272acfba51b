"""`python -m services.ingestion`: the IngestionService server and its forwarder in one process."""

from __future__ import annotations

import logging
import time

from services.common import telemetry
from services.common.settings import get_settings
from services.ingestion.forwarder import Forwarder
from services.ingestion.scheduler import Scheduler
from services.ingestion.server import build_server, report_forwarder_health
from services.ingestion.service import Ingestion
from services.ingestion.sources import SourceStore
from services.ingestion.spool import SqliteSpool
from services.ingestion.webhook_server import WebhookServer

log = logging.getLogger("services.ingestion")


def main() -> None:
    settings = get_settings()
    telemetry.setup("ingestion", settings.log_level)
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    telemetry.observe_spool_depth(lambda: spool.stats().pending)
    forwarder = Forwarder(settings, spool)
    telemetry.observe_forward_stall(lambda: time.time() - (forwarder.stalled_since() or time.time()))
    ingestion = Ingestion(settings, spool, last_error=forwarder.last_error, stalled_since=forwarder.stalled_since)
    sources = SourceStore(settings.spool_path)
    scheduler = Scheduler(settings, sources, ingestion.ingest, ingestion.delete)
    server = build_server(settings, ingestion, sources=sources).start()
    report_forwarder_health(server, forwarder)
    webhooks = WebhookServer(scheduler, settings.bind_host, settings.webhook_port).start() \
        if settings.webhook_port else None
    forwarder.start()
    scheduler.start()
    log.info("spool at %s; webhooks on %s", settings.spool_path, webhooks.port if webhooks else "off")

    def shut_down() -> None:
        if webhooks is not None:
            webhooks.stop()
        scheduler.stop()
        forwarder.stop()
        sources.close()
        spool.close()

    server.serve_until_signal(on_stop=shut_down)


if __name__ == "__main__":
    main()
