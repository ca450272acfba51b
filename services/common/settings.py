"""Every setting of every process, read from environment variables with documented defaults.

One module so that an operator has a single place to look (and the Helm chart a single ConfigMap
to fill). Each field's env var is ``CIVIC_`` + its upper-case name unless stated otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CACHE_DIR = Path.home() / ".cache" / "civic-listening"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_", extra="ignore")

    # --- network -------------------------------------------------------------------------------
    bind_host: str = Field("127.0.0.1", description="Interface the gRPC servers listen on.")
    ingestion_port: int = Field(50051, description="IngestionService port.")
    search_port: int = Field(50052, description="SearchService port.")
    alerting_port: int = Field(50053, description="AlertingService port.")
    inference_port: int = Field(50054, description="Ray Serve gRPC proxy port (InferenceService).")
    inference_http_port: int = Field(50055, description="Ray Serve HTTP proxy port (unused by clients).")
    ingestion_target: str = Field("127.0.0.1:50051", description="Where clients reach ingestion.")
    search_target: str = Field("127.0.0.1:50052", description="Where clients reach search.")
    alerting_target: str = Field(
        "127.0.0.1:50053",
        description="Where clients reach alerting; several replicas as ipv4:host:port,host:port (round robin).",
    )
    inference_target: str = Field("127.0.0.1:50054", description="Where clients reach inference.")
    grpc_workers: int = Field(16, description="Thread pool size of each gRPC server.")
    max_message_bytes: int = Field(32 * 1024 * 1024, description="Largest gRPC message accepted.")
    rpc_timeout_s: float = Field(60.0, description="Deadline of service-to-service calls.")

    # --- security (SECURITY.md): on when a keys file or a JWKS file is set ---------------------
    auth_keys_file: Path | None = Field(None, description="JSON file of hashed API keys (`civic keys create`).")
    auth_jwks_file: Path | None = Field(None, description="JWKS file whose keys verify bearer JWTs.")
    auth_jwt_issuer: str = Field("", description="Required `iss` of JWTs; empty accepts any issuer.")
    auth_jwt_audience: str = Field("civic-listening", description="Required `aud` of JWTs.")
    auth_token: str = Field("", description="Bearer token this process's clients send (CIVIC_AUTH_TOKEN).")
    auth_token_file: Path | None = Field(None, description="File holding the bearer token, read at each connect.")
    reflection: bool = Field(True, description="Serve gRPC reflection; the chart turns it off.")
    rate_limit_per_s: float = Field(0.0, description="Calls per second per tenant when auth is on; 0 = unlimited.")
    rate_limit_burst: int = Field(50, description="Calls a tenant may make at once above its rate.")
    audit_index: str = Field("civic-audit", description="Elasticsearch index of audit records; empty = off.")
    audit_flush_s: float = Field(1.0, description="Longest wait before queued audit records are written.")
    audit_max_queue: int = Field(10_000, description="Audit records held while Elasticsearch is slow.")
    tls_cert_file: Path | None = Field(None, description="Server certificate chain (PEM); set = servers use TLS.")
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file (PEM).")
    tls_ca_file: Path | None = Field(None, description="CA bundle: clients verify servers, servers verify clients.")
    tls_require_client_cert: bool = Field(False, description="mTLS: refuse clients without a certificate of the CA.")
    tls_client_cert_file: Path | None = Field(None, description="Client certificate chain for mTLS (PEM).")
    tls_client_key_file: Path | None = Field(None, description="Private key of tls_client_cert_file (PEM).")
    tls_client: bool = Field(False, description="Clients use TLS with the system roots (implied by a CA file).")
    tls_server_name: str = Field(
        "", description="Name clients expect in server certificates instead of the target's host (port-forwards)."
    )
    inference_tls: bool = Field(
        False, description="Clients use TLS to inference too (Ray Serve's proxy is plaintext unless a mesh fronts it)."
    )
    health_port: int = Field(0, description="Plaintext port serving only gRPC health (probes under TLS); 0 = off.")

    # --- Elasticsearch -------------------------------------------------------------------------
    es_url: str = Field("http://127.0.0.1:9200", validation_alias="ES_URL",
                        description="Elasticsearch URL (env ES_URL).")
    es_username: str = Field("", validation_alias="ES_USERNAME", description="Basic-auth user.")
    es_password: str = Field("", validation_alias="ES_PASSWORD", description="Basic-auth password.")
    es_api_key: str = Field("", validation_alias="ES_API_KEY", description="API key (base64 id:key).")
    es_ca_certs: str = Field("", validation_alias="ES_CA_CERTS", description="CA bundle for https.")
    index_prefix: str = Field("civic-posts", description="Prefix of the per-tenant post indices.")
    es_refresh_on_index: bool = Field(
        False, description="Refresh after each bulk call (tests/demo); off in production."
    )

    # --- search: bulk writer and rollover (services/search/README.md) --------------------------
    search_bulk_max_docs: int = Field(500, description="Documents per bulk request, from any number of calls.")
    search_bulk_max_bytes: int = Field(10 * 1024 * 1024, description="Bytes per bulk request.")
    search_bulk_flush_interval_s: float = Field(
        0.05, description="Longest wait of a queued document before a partial bulk request is sent."
    )
    search_bulk_max_queued_docs: int = Field(
        50_000, description="Documents waiting for a bulk request before IndexPosts is RESOURCE_EXHAUSTED."
    )
    search_bulk_workers: int = Field(2, description="Bulk requests in flight at once.")
    search_bulk_retry_rounds: int = Field(5, description="Retries of 429s and transient item failures.")
    search_bulk_backoff_s: float = Field(0.5, description="First retry delay; doubles per round, at most 10 s.")
    rollover_max_docs: int = Field(20_000_000, description="Roll a tenant's index over at this many documents.")
    rollover_max_primary_shard_size: str = Field("50gb", description="... or at this primary shard size.")
    rollover_max_age: str = Field("30d", description="... or at this age (e.g. 30d, 12h).")
    rollover_check_interval_s: float = Field(
        600.0, description="How often search checks the rollover conditions (no ILM); 0 = never."
    )

    # --- search: tenants' topics (services/search/README.md) ------------------------------------
    topics_index_prefix: str = Field(
        "civic-topics", description="Indices of tenants' topics, marks, tagging jobs and their history."
    )
    topics_cache_s: float = Field(
        2.0, description="How long a search replica tags with a tenant's topic set before checking its version."
    )
    tagging_batch_size: int = Field(1000, description="Stored posts re-tagged per page of a tagging job.")

    # --- inference -----------------------------------------------------------------------------
    model_cache_dir: Path = Field(CACHE_DIR / "models", description="Where the rebuilt encoder lives.")
    max_seq_length: int = Field(128, description="Tokens per post given to the encoder.")
    inference_max_batch_size: int = Field(32, description="@serve.batch max_batch_size.")
    inference_batch_wait_s: float = Field(0.02, description="@serve.batch batch_wait_timeout_s.")
    inference_max_request_posts: int = Field(256, description="Largest Enrich/Embed request.")
    inference_replicas: int = Field(1, description="Model deployment replicas.")
    inference_num_gpus: float = Field(0.0, description="GPUs per model replica (0 = CPU).")
    torch_threads: int = Field(0, description="Torch intra-op threads; 0 = number of cores.")
    topics_file: Path | None = Field(
        None, description="YAML of the default topics (services/common/relevance/default_topics.yaml when unset): "
        "what tenants without topics of their own are tagged with, and the set they can copy.",
    )
    ray_address: str = Field("local", description="'local' starts Ray in-process; else a cluster.")
    inference_quantize: bool = Field(
        False, description="int8 dynamic quantization of the model's linear layers on CPU (CUDA runs fp16)."
    )
    inference_runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="What runs the encoder on CPU: torch (fp32, or int8 with inference_quantize), onnx (ONNX "
        "Runtime fp32) or onnx-int8 (ONNX Runtime, int8 dynamic quantization); CUDA always runs torch fp16.",
    )

    # --- ingestion -----------------------------------------------------------------------------
    spool_path: Path = Field(CACHE_DIR / "spool.sqlite3", description="Write-ahead spool file.")
    spool_max_pending: int = Field(200_000, description="Pending posts before RESOURCE_EXHAUSTED.")
    spool_retention_days: float = Field(
        30.0, ge=0,
        description="Forwarded posts leave the spool this long after forwarding (exact duplicates of a post are "
                    "caught for as long); 0 keeps them forever. Failed posts stay.",
    )
    max_batch_posts: int = Field(1000, description="Largest IngestPosts batch.")
    max_text_chars: int = Field(20_000, description="Longest post text accepted.")
    forward_batch_size: int = Field(64, description="Posts per forwarder round trip.")
    forward_batch_max_bytes: int = Field(
        4 * 1024 * 1024, ge=1,
        description="Bytes of spooled posts per forwarder round trip (at most half of max_message_bytes is used), "
                    "so that no request of the forwarder nears the message limit.",
    )
    forward_max_attempts: int = Field(
        5, ge=2,
        description="Failed attempts of one batch at one stage before its posts are tried one at a time; a post "
                    "that then fails this many times more, alone, while other posts go through is dead-lettered.",
    )
    redact_pii: bool = Field(True, description="Redact e-mails, phones, SSNs, card numbers.")
    webhook_port: int = Field(0, description="HTTP port of the webhook receiver (e.g. 50056); 0 = off.")
    source_poll_tick_s: float = Field(1.0, description="How often the scheduler looks for due sources.")
    connector_timeout_s: float = Field(30.0, description="HTTP/WebSocket timeout of channel connectors.")
    connector_max_retries: int = Field(4, description="Retries of a 429/5xx answer within one poll.")

    # --- alerting ------------------------------------------------------------------------------
    rules_file: Path | None = Field(None, description="YAML of rules loaded at alerting start-up.")
    alerting_state_path: Path = Field(
        CACHE_DIR / "alerting.sqlite3", description="Rules and alerts when no alerting_database_url is set."
    )
    alerting_database_url: str = Field(
        "", description="PostgreSQL (postgresql://...) shared by alerting replicas; empty = the SQLite file at "
                        "alerting_state_path, a single replica.",
    )
    alerts_index_prefix: str = Field(
        "civic-alerts", description="Alerts are copied to the Elasticsearch index <prefix>-<tenant>; empty = off."
    )
    alerting_tick_s: float = Field(1.0, description="How often escalation, webhook notifications and retries run.")
    webhook_timeout_s: float = Field(10.0, description="HTTP timeout of one webhook delivery.")
    webhook_max_attempts: int = Field(8, description="Delivery attempts of a notification before giving up.")
    webhook_backoff_base_s: float = Field(2.0, description="First retry delay; doubles per attempt, jittered.")
    alerting_external_url: str = Field("", description="Alertmanager payloads' externalURL and generatorURL base.")

    # --- dashboard gateway ---------------------------------------------------------------------
    gateway_port: int = Field(8088, description="HTTP port of the dashboard and its JSON API.")
    gateway_tenants: str = Field(
        "", description="Comma-separated agencies the dashboard offers to pick when the viewer has no token."
    )

    # --- local stack (civic up) ----------------------------------------------------------------
    run_dir: Path = Field(CACHE_DIR / "run", description="Pid files, logs and data of `civic up`.")
    es_version: str = Field("8.19.21", description="Local Elasticsearch fetched from Maven Central.")
    es_heap: str = Field("1g", description="Heap of the local Elasticsearch.")
    stack_webhook_port: int = Field(
        50056, description="Webhook receiver port `civic up` gives ingestion unless CIVIC_WEBHOOK_PORT is set."
    )

    # --- telemetry -----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level of every process.")
    otlp_receiver_port: int = Field(
        4317, description="Port of the local OTLP receiver `civic up` starts when no OTLP endpoint is set."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
