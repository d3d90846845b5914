# The worker image for docker-compose.yml (and any container platform).
FROM python:3.11-slim
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
