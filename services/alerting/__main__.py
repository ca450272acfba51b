"""`python -m services.alerting`: the AlertingService server."""

from __future__ import annotations

import logging

from services.alerting.server import build_server
from services.alerting.service import open_alerting
from services.common import telemetry
from services.common.settings import get_settings

log = logging.getLogger("services.alerting")


def main() -> None:
    settings = get_settings()
    telemetry.setup("alerting", settings.log_level)
    alerting = open_alerting(settings)
    server = build_server(settings, alerting).start()
    where = "PostgreSQL" if settings.alerting_database_url else settings.alerting_state_path
    log.info("alerting state in %s, rules file %s", where, settings.rules_file)
    server.serve_until_signal(on_stop=alerting.close)


if __name__ == "__main__":
    main()
