"""`python -m services.gateway`: the dashboard on settings.bind_host:gateway_port."""

from __future__ import annotations

import logging

from aiohttp import web

from services.common import telemetry
from services.common.settings import get_settings
from services.gateway.app import build_app

log = logging.getLogger("services.gateway")


def main() -> None:
    settings = get_settings()
    telemetry.setup("gateway", settings.log_level)
    log.info("dashboard on http://%s:%d/", settings.bind_host, settings.gateway_port)
    web.run_app(build_app(settings), host=settings.bind_host, port=settings.gateway_port,
                print=None, access_log=None, shutdown_timeout=5.0)


if __name__ == "__main__":
    main()
