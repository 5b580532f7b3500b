# GPU inference image (onnxruntime's CUDA execution provider), build context = repository root:
#   docker build -f docker/inference-gpu.Dockerfile -t image-pipeline-inference-gpu .
#   docker run --gpus all -v models:/models image-pipeline-inference-gpu   (NVIDIA Container Toolkit)
# The host needs only the NVIDIA driver: CUDA 13 and cuDNN 9, which onnxruntime-gpu 1.31.1 loads, come
# with the base image. The model is exported by the CPU `export` target of docker/inference.Dockerfile.
# INFERENCE_DEVICE=cuda: a container that cannot use the GPU stays up but unready, saying why (503).

# ---- Python 3.11 and a venv with the `gpu` extra (onnxruntime-gpu, numpy, tokenizers) -----------
# Ubuntu 24.04 ships Python 3.12 and the project needs 3.11: uv (pinned) installs a standalone
# CPython 3.11 build under /opt/python, which the venv and the final image use.
FROM nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04 AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    PATH=/opt/venv/bin:$PATH
COPY --from=ghcr.io/astral-sh/uv:0.9.5 /uv /usr/local/bin/uv
WORKDIR /src
RUN uv python install 3.11 \
    && uv venv --seed --python 3.11 /opt/venv \
    && pip install pip==25.3
COPY pyproject.toml README.md ./
RUN mkdir inference contracts servicekit
# Dependencies first, from pyproject.toml alone (empty package dirs), so code edits keep this layer.
# `gpu` replaces `inference`: onnxruntime-gpu and the CPU onnxruntime are one import package and must
# not be installed together (microsoft/onnxruntime#26996). Versions are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[gpu]" \
    && pip uninstall --yes image-pipeline
COPY contracts/ contracts/
COPY servicekit/ servicekit/
COPY inference/ inference/
# The serving app must import with the CUDA provider in its build, without the CPU onnxruntime
# distribution and without torch. (Whether the GPU works is decided at start, on the GPU host.)
RUN pip install --no-deps . \
    && python -I -c "import importlib.metadata as m, importlib.util, onnxruntime, inference.app; assert 'CUDAExecutionProvider' in onnxruntime.get_available_providers(); assert importlib.util.find_spec('torch') is None; assert not any(d.metadata['Name'] == 'onnxruntime' for d in m.distributions())"

# ---- runtime: the caption server on the GPU, non-root, writable /models and logs ----------------
FROM nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04 AS runtime
ARG APP_UID=1000
ARG APP_GID=1000
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    INFERENCE_MODEL_DIR=/models \
    INFERENCE_LOG_DIR=/app/logs \
    INFERENCE_DEVICE=cuda \
    INFERENCE_HOST=0.0.0.0 \
    INFERENCE_PORT=3000
# Ubuntu 24.04 images have a user `ubuntu` with uid 1000: the app user takes its ids non-uniquely.
RUN groupadd --non-unique --gid "${APP_GID}" app \
    && useradd --non-unique --uid "${APP_UID}" --gid app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /models /app/logs \
    && chown app:app /models /app/logs
WORKDIR /app
COPY --from=builder /opt/python /opt/python
COPY --from=builder /opt/venv /opt/venv
USER ${APP_UID}:${APP_GID}
EXPOSE 3000
# The image has no curl: probe readiness (model loaded on the GPU and warmed up) with the standard library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('INFERENCE_PORT', '3000') + '/health/ready'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "inference"]
