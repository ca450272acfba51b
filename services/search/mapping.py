"""The index template of the post indices and the per-tenant index/alias naming.

One index per tenant keeps tenants physically apart (deletion, retention and access control per
agency), and reads go only through the tenant's alias so that a rollover to a new backing index
(by ILM on a real cluster, or by hand) is invisible to readers. The template is composable
(settings and mappings as separate component templates) so an operator can override either one.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, Elasticsearch

EMBEDDING_DIMS = 384

# Detected language -> the built-in analyzer of its own full-text field ``text_<language>``.
LANGUAGE_ANALYZERS = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "ar": "arabic",
    "hi": "hindi",
}

TEXT_FIELDS = ["text", *(f"text_{language}" for language in LANGUAGE_ANALYZERS)]

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
LONG: dict[str, Any] = {"type": "long"}
FLOAT: dict[str, Any] = {"type": "float"}

DATE: dict[str, Any] = {"type": "date"}
STORED_URL: dict[str, Any] = {"type": "keyword", "index": False, "doc_values": False}
# What channels say beyond the text (threading, marks, tags, media, links, Open311 and CAP details).
CHANNEL_PROPERTIES: dict[str, Any] = {
    "parent_id": KEYWORD,
    "root_id": KEYWORD,
    "conversation_id": KEYWORD,
    "edited_at": DATE,
    "sensitive": {"type": "boolean"},
    "content_warning": {"type": "text", "analyzer": "standard"},
    "hashtags": KEYWORD,
    "mentions": KEYWORD,
    "media": {"properties": {"type": KEYWORD, "url": STORED_URL, "alt_text": {"type": "text", "analyzer": "standard"}}},
    "links": {"type": "keyword", "ignore_above": 2048},
    "sender_languages": KEYWORD,
    "categories": KEYWORD,
    "service_request": {"properties": {
        "status": KEYWORD, "service_code": KEYWORD, "service_name": KEYWORD, "agency": KEYWORD,
        "address": {"type": "text", "analyzer": "standard", "fields": {"keyword": KEYWORD}}, "updated_at": DATE,
    }},
    "official_alert": {"properties": {
        "event": KEYWORD, "severity": KEYWORD, "urgency": KEYWORD, "certainty": KEYWORD,
        "area": {"type": "text", "analyzer": "standard"},
        # The polygon's corners, in order: geo_shape needs the spatial module, which not every cluster
        # (the local one included) has; points are enough to find the alerts with a corner in an area.
        "area_polygon": {"type": "geo_point"}, "expires_at": DATE,
    }},
}

PROPERTIES: dict[str, Any] = {
    "doc_id": KEYWORD,
    "tenant": KEYWORD,
    "channel": KEYWORD,
    "post_id": KEYWORD,
    "source": KEYWORD,
    "author": {
        "properties": {
            "id": KEYWORD,
            "name": KEYWORD,
            "follower_count": LONG,
        }
    },
    "reach": LONG,
    "text": {"type": "text", "analyzer": "standard"},
    # The author's layout, for display only: kept in _source, never analyzed nor searched.
    "display_text": {"type": "text", "index": False},
    **{f"text_{language}": {"type": "text", "analyzer": analyzer} for language, analyzer in LANGUAGE_ANALYZERS.items()},
    "language": KEYWORD,
    "language_confidence": FLOAT,
    "created_at": {"type": "date"},
    "indexed_at": {"type": "date"},
    "url": {"type": "keyword", "index": False, "doc_values": False},
    "engagement": {"properties": {"likes": LONG, "shares": LONG, "replies": LONG}},
    "geo": {"type": "geo_point"},
    "near_duplicate": {"type": "boolean"},
    "redactions": {"type": "integer"},
    "sentiment": KEYWORD,
    "sentiment_scores": {"properties": {"negative": FLOAT, "neutral": FLOAT, "positive": FLOAT}},
    "topic": KEYWORD,
    "topics": KEYWORD,
    "topic_set_version": LONG,
    "relevance": {"type": "nested", "properties": {"topic": KEYWORD, "score": FLOAT}},
    "emotion": KEYWORD,
    "emotion_scores": {"properties": {"anger": FLOAT, "joy": FLOAT, "optimism": FLOAT, "sadness": FLOAT}},
    "offensive": {"type": "boolean"},
    "offensive_score": FLOAT,
    "model_versions": {"properties": {"encoder": KEYWORD, "sentiment": KEYWORD, "relevance": KEYWORD,
                                      "tone": KEYWORD}},
    "embedding": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True, "similarity": "cosine"},
    **CHANNEL_PROPERTIES,
}


def settings_component(prefix: str) -> str:
    return f"{prefix}-settings"


def mappings_component(prefix: str) -> str:
    return f"{prefix}-mappings"


def alias_name(prefix: str, tenant: str) -> str:
    """The only name readers and writers use for a tenant's posts."""
    return f"{prefix}-{tenant}"


def first_index_name(prefix: str, tenant: str) -> str:
    """The first backing index. The '.' (never in a tenant name) keeps index and alias names of
    different tenants from colliding; the '-000001' suffix is what rollover increments."""
    return f"{prefix}-{tenant}.v-000001"


def index_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-*"],
        "composed_of": [settings_component(prefix), mappings_component(prefix)],
        "priority": 200,
        "_meta": {"description": "Enriched citizen posts, one index per tenant, read through the tenant alias"},
    }


# Stop-word lists of the supported languages, chained, for counting top terms as written (no stemming).
TERMS_ANALYZER: dict[str, Any] = {
    "analyzer": {"civic_terms": {"type": "custom", "tokenizer": "standard",
                                 "filter": ["lowercase", *(f"civic_stop_{lang}" for lang in LANGUAGE_ANALYZERS)]}},
    "filter": {f"civic_stop_{lang}": {"type": "stop", "stopwords": f"_{name}_"}
               for lang, name in LANGUAGE_ANALYZERS.items()},
}


def settings_template() -> dict[str, Any]:
    return {"settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "refresh_interval": "1s",
                         "analysis": TERMS_ANALYZER}}


def mappings_template() -> dict[str, Any]:
    return {"mappings": {"dynamic": "strict", "properties": PROPERTIES}}


def install_templates(es: Elasticsearch, prefix: str) -> None:
    """Creates or updates the component and index templates (idempotent)."""
    es.cluster.put_component_template(name=settings_component(prefix), template=settings_template())
    es.cluster.put_component_template(name=mappings_component(prefix), template=mappings_template())
    es.indices.put_index_template(name=prefix, **index_template(prefix))


def ensure_tenant_index(es: Elasticsearch, prefix: str, tenant: str) -> str:
    """The tenant's alias, creating its first index (from the template) on the tenant's first write."""
    alias = alias_name(prefix, tenant)
    if es.indices.exists_alias(name=alias):
        # An index made before a field was added gets it, or its strict mapping would refuse posts.
        es.indices.put_mapping(index=alias, properties=PROPERTIES)
        return alias
    try:
        es.indices.create(index=first_index_name(prefix, tenant), aliases={alias: {"is_write_index": True}})
    except ApiError as exc:
        if exc.error != "resource_already_exists_exception":
            raise
    return alias
