"""`python -m services.ingestion`: the IngestionService server and its forwarder in one process."""

from __future__ import annotations

import logging

from services.common import telemetry
from services.common.settings import get_settings
from services.ingestion.forwarder import Forwarder
from services.ingestion.server import build_server
from services.ingestion.service import Ingestion
from services.ingestion.spool import SqliteSpool

log = logging.getLogger("services.ingestion")


def main() -> None:
    settings = get_settings()
    telemetry.setup("ingestion", settings.log_level)
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    telemetry.observe_spool_depth(lambda: spool.stats().pending)
    forwarder = Forwarder(settings, spool)
    server = build_server(settings, Ingestion(settings, spool, last_error=forwarder.last_error)).start()
    forwarder.start()
    log.info("spool at %s", settings.spool_path)

    def shut_down() -> None:
        forwarder.stop()
        spool.close()

    server.serve_until_signal(on_stop=shut_down)


if __name__ == "__main__":
    main()
