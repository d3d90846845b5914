# The worker image for docker-compose.yml (and any container platform). Java and Maven are
# there for the operators' tools that drive Kafka's own Admin API (`dfdg acl ...`).
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven netcat-openbsd \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv==0.13.8 && uv pip install --system --no-cache -r requirements.lock
COPY . .
RUN uv pip install --system --no-deps -e .
ENV DFDG_WEB_HOST=0.0.0.0 DFDG_DATA_DIR=/data DFDG_ARCHIVE_INBOX=/archive-inbox
VOLUME ["/data", "/archive-inbox"]
EXPOSE 6066
ENTRYPOINT ["dfdg", "--log-format", "json"]
CMD ["worker"]
