# syntax=docker/dockerfile:1
# Small image for clevertap-export-exporter: build a wheel, install it into a slim runtime
# that runs as an unprivileged user with its state on the /data volume.
# tests/deploy/test_image.py builds and runs the same wheel, environment and health check.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="clevertap-export-exporter" \
      org.opencontainers.image.description="Prometheus exporter for CleverTap export status webhooks" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXPORTER_HOST=0.0.0.0 \
    EXPORTER_PORT=9877 \
    EXPORTER_STATE_PATH=/data/state.db
COPY --from=build /wheels /wheels
COPY LICENSE /usr/share/doc/clevertap-export-exporter/LICENSE
# /data belongs to the exporter user alone (mode 0700); in Kubernetes, fsGroup 10001 opens
# the volume to the same group.
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
 && groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid exporter --home-dir /data --shell /usr/sbin/nologin exporter \
 && install -d -o exporter -g exporter -m 0700 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 9877
# /healthz is served on --metrics-port when that is set, else on the webhook port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('EXPORTER_METRICS_PORT') or os.environ.get('EXPORTER_PORT', '9877')), timeout=4)"]
ENTRYPOINT ["clevertap-export-exporter"]
