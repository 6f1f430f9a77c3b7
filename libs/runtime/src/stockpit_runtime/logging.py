"""Structured JSON logs (structlog), one line per event, on stdout: ours and every library's.

structlog's own events and every standard-library logger (uvicorn, alembic, aiokafka, httpx,
FastStream, warnings) go through one `ProcessorFormatter` on the root logger, so each line of a
service's output is a JSON object with `timestamp`, `level`, `logger`, `service` and what the
call bound: `tenant_id`, `event_id`, `topic` where known (`structlog.contextvars` carry them
across a handler's calls). A library's `extra` fields are kept.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# Loggers that install handlers of their own: theirs are removed, so that they reach the root.
LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "alembic",
    "aiokafka",
    "kafka",
    "faststream",
    "faststream.access",
    "faststream.access.kafka",
    "httpx",
    "httpcore",
    "asyncio",
    "py.warnings",
)
# Chatty at INFO (a line per request or per partition assignment): WARNING unless asked.
NOISY = ("aiokafka", "kafka", "faststream", "uvicorn.access", "httpx", "httpcore")


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines with timestamp, level, logger, service and whatever the call binds."""
    level_number = logging.getLevelName(level.upper())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, level_number))
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def library_logger(name: str) -> logging.Logger:
    """A standard-library logger for a library that takes one (FastStream's broker): without
    handlers of its own, its lines reach the JSON handler on the root."""
    logger = logging.getLogger(name)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.propagate = True
    return logger


def bind_to_task(**values: str) -> None:
    """Name these values (a tenant...) in every log of the current task from now on (a task
    started later by it inherits them; its caller's context is unaffected)."""
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
