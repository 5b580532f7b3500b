# Inference images, build context = repository root:
#   docker build -f docker/inference.Dockerfile --target runtime .   serves ONNX; no torch inside
#   docker build -f docker/inference.Dockerfile --target export .    one-off HF -> ONNX export (torch CPU)
# `runtime` is the last stage, so it is also what a build without --target gives.

# ---- shared: a venv with pip pinned and the project metadata ---------------------------------
FROM python:3.11-slim-bookworm AS venv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv \
    && pip install pip==25.3
COPY pyproject.toml README.md ./
RUN mkdir inference contracts servicekit

# ---- serving dependencies: the `inference` extra (onnxruntime, numpy, tokenizers) -------------
FROM venv AS builder
# Dependencies first, from pyproject.toml alone (empty package dirs), so code edits keep this layer.
# Every version is pinned in pyproject.toml, hence the DL3013 ignore.
# hadolint ignore=DL3013
RUN pip install ".[inference]" \
    && pip uninstall --yes image-pipeline
COPY contracts/ contracts/
COPY servicekit/ servicekit/
COPY inference/ inference/
# The serving app must import, and torch must not have slipped in through a dependency.
RUN pip install --no-deps . \
    && python -I -c "import importlib.util, inference.app; assert importlib.util.find_spec('torch') is None"

# ---- export dependencies: the `export` extra (torch CPU build, transformers, optimum, onnx) ---
FROM venv AS export-builder
# The CPU wheel of torch comes from PyTorch's own index (2.13.0+cpu satisfies torch==2.13.0 and
# is preferred over the much larger CUDA build on PyPI). Versions are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[export]" \
    && pip uninstall --yes image-pipeline
COPY contracts/ contracts/
COPY servicekit/ servicekit/
COPY inference/ inference/
RUN pip install --no-deps . \
    && python -I -c "import contracts, inference.export, torch"

# ---- common base of the two final images: non-root user, writable /models and logs -----------
FROM python:3.11-slim-bookworm AS base
# APP_UID/APP_GID: pass your host ids (`id -u`, `id -g`) so the ./logs bind mount is writable.
ARG APP_UID=1000
ARG APP_GID=1000
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    INFERENCE_MODEL_DIR=/models \
    INFERENCE_LOG_DIR=/app/logs
# /models is created here, owned by the app user, so a fresh named volume mounted on it inherits
# that ownership (the export writes there, the server reads there).
RUN groupadd --non-unique --gid "${APP_GID}" app \
    && useradd --non-unique --uid "${APP_UID}" --gid app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /models /app/logs \
    && chown app:app /models /app/logs
WORKDIR /app

# ---- export: run once (docker-compose's `export` service) to fill the models volume -----------
FROM base AS export
ARG APP_UID=1000
ARG APP_GID=1000
COPY --from=export-builder /opt/venv /opt/venv
USER ${APP_UID}:${APP_GID}
# Example: docker run --rm -v models:/models -e HF_TOKEN <image> python -m inference.export
#            --model Salesforce/blip-image-captioning-large
#            --output /models/Salesforce--blip-image-captioning-large-fp32 --if-missing
CMD ["python", "-m", "inference.export", "--help"]

# ---- runtime: the caption server, onnxruntime only -------------------------------------------
FROM base AS runtime
ARG APP_UID=1000
ARG APP_GID=1000
COPY --from=builder /opt/venv /opt/venv
ENV INFERENCE_HOST=0.0.0.0 \
    INFERENCE_PORT=3000
USER ${APP_UID}:${APP_GID}
EXPOSE 3000
# Slim images have no curl: probe readiness (model loaded and warmed up) with the standard library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('INFERENCE_PORT', '3000') + '/health/ready'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "inference"]
