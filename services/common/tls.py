"""TLS and mTLS credentials of gRPC servers and clients, from PEM files named in settings.

Servers re-read their certificate and key when the files change (checked at each new connection), so
a rotated certificate (e.g. a renewed Kubernetes Secret) is served without a restart.
"""

from __future__ import annotations

import threading
from pathlib import Path

import grpc

from services.common.settings import Settings


def server_tls(settings: Settings) -> bool:
    return settings.tls_cert_file is not None


def client_tls(settings: Settings, target: str) -> bool:
    """Clients use TLS when a CA, a client certificate or tls_client is configured; to inference only
    with inference_tls, since Ray Serve's gRPC proxy itself speaks plaintext (SECURITY.md)."""
    wanted = bool(settings.tls_client or settings.tls_ca_file or settings.tls_client_cert_file)
    if target == settings.inference_target and not settings.inference_tls:
        return False
    return wanted


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


class _ReloadingServerConfig:
    """Hands gRPC a new certificate configuration whenever the PEM files change on disk."""

    def __init__(self, settings: Settings) -> None:
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            raise ValueError("TLS needs both CIVIC_TLS_CERT_FILE and CIVIC_TLS_KEY_FILE")
        if settings.tls_require_client_cert and settings.tls_ca_file is None:
            raise ValueError("CIVIC_TLS_REQUIRE_CLIENT_CERT needs CIVIC_TLS_CA_FILE to verify clients with")
        self._paths = [p for p in (settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file) if p]
        self._cert, self._key, self._ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file
        self._lock = threading.Lock()
        self._stamp = self._stamp_now()

    def _stamp_now(self) -> tuple[int, ...]:
        return tuple(p.stat().st_mtime_ns for p in self._paths)

    def build(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self._key.read_bytes(), self._cert.read_bytes())], root_certificates=_read(self._ca)
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None keeps the current configuration; called by gRPC before each handshake."""
        try:
            with self._lock:
                stamp = self._stamp_now()
                if stamp == self._stamp:
                    return None
                config = self.build()
                self._stamp = stamp
                return config
        except (OSError, ValueError):
            return None  # a half-written file: keep serving the previous certificate


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    config = _ReloadingServerConfig(settings)
    return grpc.dynamic_ssl_server_credentials(
        config.build(), config.fetch, require_client_authentication=settings.tls_require_client_cert
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials:
    """Verifies the server against tls_ca_file (system roots when unset); presents the client
    certificate when one is configured (mTLS)."""
    if (settings.tls_client_cert_file is None) != (settings.tls_client_key_file is None):
        raise ValueError("mTLS needs both CIVIC_TLS_CLIENT_CERT_FILE and CIVIC_TLS_CLIENT_KEY_FILE")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca_file),
        private_key=_read(settings.tls_client_key_file),
        certificate_chain=_read(settings.tls_client_cert_file),
    )
