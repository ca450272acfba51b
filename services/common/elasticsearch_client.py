"""The one way every service connects to Elasticsearch, so credentials and TLS are configured alike."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from services.common.settings import Settings


def connect(settings: Settings, *, request_timeout: float = 10, max_retries: int = 1) -> Elasticsearch:
    """A client for settings.es_url with whichever credentials are configured; callers on the write
    path ask for longer timeouts and more retries than background writers that must not hold a call."""
    options: dict[str, Any] = {
        "request_timeout": request_timeout, "max_retries": max_retries, "retry_on_timeout": True,
    }
    if settings.es_username:
        options["basic_auth"] = (settings.es_username, settings.es_password)
    if settings.es_api_key:
        options["api_key"] = settings.es_api_key
    if settings.es_ca_certs:
        options["ca_certs"] = settings.es_ca_certs
    return Elasticsearch(settings.es_url, **options)
