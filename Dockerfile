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
COPY tools/testing/pyproject.toml tools/testing/pyproject.toml
COPY tools/pennylane-sandbox/pyproject.toml tools/pennylane-sandbox/pyproject.toml
# The root project's dependencies are the production packages; dev-only members (test
# helpers) come with the dev group, which the image leaves out.
RUN uv sync --frozen --no-dev --no-install-workspace
COPY libs libs
COPY services services
COPY tools tools
RUN uv sync --frozen --no-dev --no-editable
# The Pennylane sandbox (dev-only, for compose's demo profile) in an environment of its own.
RUN UV_PROJECT_ENVIRONMENT=/app/.venv-sandbox \
    uv sync --frozen --no-dev --no-editable --package stockpit-pennylane-sandbox

# `docker build --target pennylane-sandbox`: the sandbox alone, never in the services' image.
FROM python:3.11-slim-bookworm AS pennylane-sandbox
RUN useradd --system --uid 10001 stockpit
COPY --from=build /app/.venv-sandbox /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER stockpit
EXPOSE 8910
CMD ["pennylane-sandbox", "--host", "0.0.0.0", "--port", "8910"]

# The services' image (the default target).
FROM python:3.11-slim-bookworm AS services
RUN useradd --system --uid 10001 stockpit
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 STOCKPIT_HTTP_HOST=0.0.0.0
USER stockpit
EXPOSE 8000
CMD ["stockpit-inventory"]
