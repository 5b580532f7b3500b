# Gateway image: `docker build -f docker/gateway.Dockerfile .` (build context = repository root).
# Two stages: `builder` installs the `gateway` extra into /opt/venv; the runtime stage copies only
# that venv onto a clean slim image (no build leftovers, no source tree, no pip cache).

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv \
    && pip install pip==25.3
COPY pyproject.toml README.md ./
# Dependencies first, from pyproject.toml alone, so editing our code does not reinstall them:
# empty package dirs let setuptools build the project; the project itself is uninstalled again.
# Every version is pinned in pyproject.toml, hence the DL3013 ignore.
# hadolint ignore=DL3013
RUN mkdir gateway contracts servicekit \
    && pip install ".[gateway]" \
    && pip uninstall --yes image-pipeline
COPY contracts/ contracts/
COPY servicekit/ servicekit/
COPY gateway/ gateway/
RUN pip install --no-deps . \
    && python -I -c "import gateway.app, gateway.migrations.versions"

FROM python:3.11-slim-bookworm AS runtime
# APP_UID/APP_GID: pass your host ids (`id -u`, `id -g`) so the ./logs bind mount is writable.
ARG APP_UID=1000
ARG APP_GID=1000
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_DATA_DIR=/data \
    GATEWAY_LOG_DIR=/app/logs
# /data is created here, owned by the app user, so a fresh named volume mounted on it inherits
# that ownership (the database, originals and thumbnails live there).
RUN groupadd --non-unique --gid "${APP_GID}" app \
    && useradd --non-unique --uid "${APP_UID}" --gid app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data /db /app/logs \
    && chown app:app /data /db /app/logs
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
USER ${APP_UID}:${APP_GID}
EXPOSE 8000
# Slim images have no curl: probe readiness (database reachable) with the standard library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('GATEWAY_PORT', '8000') + '/health/ready'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "gateway"]
