# One image for every Stockpit Sync process; the command picks the service.
# Built with uv from the workspace's lock file, in two stages so the runtime image holds no
# build tools.
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first, so that code changes do not re-download them.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/pyproject.toml
COPY libs/runtime/pyproject.toml libs/runtime/pyproject.toml
COPY libs/pennylane/pyproject.toml libs/pennylane/pyproject.toml
COPY libs/connections/pyproject.toml libs/connections/pyproject.toml
COPY services/poller/pyproject.toml services/poller/pyproject.toml
COPY services/inventory/pyproject.toml services/inventory/pyproject.toml
COPY services/outbound/pyproject.toml services/outbound/pyproject.toml
COPY tools/ops/pyproject.toml tools/ops/pyproject.toml
RUN uv sync --frozen --no-dev --all-packages --no-install-workspace
COPY libs libs
COPY services services
COPY tools tools
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 stockpit
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 STOCKPIT_HTTP_HOST=0.0.0.0
USER stockpit
EXPOSE 8000
CMD ["stockpit-inventory"]
