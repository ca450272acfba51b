# syntax=docker/dockerfile:1.7
# The gRPC services (ingestion, search, alerting) and the dashboard gateway: one image, the process is
# picked by the command
#   python -m services.ingestion | services.search | services.alerting | services.gateway
# Build from the repository root:
#   docker build -f deploy/docker/services.Dockerfile -t ghcr.io/civic-listening/services:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG GRPCIO_TOOLS_VERSION=1.85.1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY services ./services
COPY inference ./inference
# The services and the gateway never run a model: their extras only, no torch, Ray or ONNX.
RUN pip install "grpcio-tools==${GRPCIO_TOOLS_VERSION}" \
 && python protos/generate.py \
 && pip install ".[services,gateway]" \
 && pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 civic \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/civic --create-home --shell /usr/sbin/nologin civic
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CIVIC_BIND_HOST=0.0.0.0 \
    CIVIC_SPOOL_PATH=/var/lib/civic/spool.sqlite3 \
    CIVIC_ALERTING_STATE_PATH=/var/lib/civic/alerting.sqlite3
RUN install -d -o 10001 -g 10001 /var/lib/civic
WORKDIR /home/civic
USER 10001:10001
EXPOSE 50051 50052 50053 8088
CMD ["python", "-m", "services.ingestion"]
