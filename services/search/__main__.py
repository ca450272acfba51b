"""`python -m services.search`: the SearchService server on settings.search_port."""

from __future__ import annotations

import logging

from services.common import telemetry
from services.common.settings import get_settings
from services.search.bulk_writer import BulkPolicy
from services.search.client import connect
from services.search.embedder import InferenceEmbedder
from services.search.indexing import Indexer
from services.search.rollover import Conditions, RolloverLoop
from services.search.server import build_server
from services.search.service import Searcher
from services.search.topics.runtime import start_topics

log = logging.getLogger("services.search")


def main() -> None:
    settings = get_settings()
    telemetry.setup("search", settings.log_level)
    es = connect(settings)
    conditions = Conditions.from_settings(settings)
    inference = InferenceEmbedder(settings)
    topics = start_topics(settings, es, inference)
    indexer = Indexer(es, settings.index_prefix, refresh=settings.es_refresh_on_index,
                      policy=BulkPolicy.from_settings(settings), lifecycle=conditions, tagger=topics.tagger,
                      max_text_chars=settings.max_text_chars)
    rollovers = None
    if settings.rollover_check_interval_s > 0:
        rollovers = RolloverLoop(es, settings.index_prefix, conditions, settings.rollover_check_interval_s).start()
    server = build_server(settings, indexer, Searcher(es, settings.index_prefix, inference),
                          topics=topics.topics).start()
    log.info("indexing into %s (prefix %s)", settings.es_url, settings.index_prefix)

    def stop() -> None:
        if rollovers is not None:
            rollovers.stop()
        topics.stop()
        indexer.close()
        es.close()

    server.serve_until_signal(on_stop=stop)


if __name__ == "__main__":
    main()
