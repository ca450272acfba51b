"""docs/search-mapping.md describes exactly the fields a tenant index really has, with their types."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from services.search.deadletter import DEFAULT_PREFIX, dead_letter_index, ensure_index
from services.search.mapping import alias_name, ensure_tenant_index, install_templates
from tests.search.helpers import documented_fields, flatten


def test_the_doc_lists_every_field_of_a_real_index_with_its_type(elasticsearch_url: str, tenant: str) -> None:
    with Elasticsearch(elasticsearch_url) as es:
        install_templates(es, "civic-posts")
        ensure_tenant_index(es, "civic-posts", tenant)
        mapping = es.indices.get_mapping(index=alias_name("civic-posts", tenant))
    (index_mapping,) = mapping.body.values()
    assert flatten(index_mapping["mappings"]["properties"]) == documented_fields()


def test_the_embedding_is_a_cosine_knn_vector_and_texts_use_their_language(
    elasticsearch_url: str, tenant: str
) -> None:
    with Elasticsearch(elasticsearch_url) as es:
        install_templates(es, "civic-posts")
        ensure_tenant_index(es, "civic-posts", tenant)
        (index_mapping,) = es.indices.get_mapping(index=alias_name("civic-posts", tenant)).body.values()
    properties = index_mapping["mappings"]["properties"]
    assert properties["embedding"] == {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine",
                                       "index_options": properties["embedding"]["index_options"]}
    assert properties["text_fr"]["analyzer"] == "french"
    assert properties["text_hi"]["analyzer"] == "hindi"


def test_the_doc_lists_every_field_of_the_dead_letter_index(elasticsearch_url: str, tenant: str) -> None:
    with Elasticsearch(elasticsearch_url) as es:
        name = dead_letter_index(DEFAULT_PREFIX, tenant)
        ensure_index(es, name)
        (index_mapping,) = es.indices.get_mapping(index=name).body.values()
    assert flatten(index_mapping["mappings"]["properties"]) == documented_fields("## Dead-letter index")
