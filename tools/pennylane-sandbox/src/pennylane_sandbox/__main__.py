"""`pennylane-sandbox`: serve the sandbox over HTTP with uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from .app import create_app
from .config import (
    PENNYLANE_RATE_LIMIT,
    PENNYLANE_RATE_WINDOW_SECONDS,
    FaultSettings,
    SandboxConfig,
)


def _token_scopes(values: Sequence[str]) -> dict[str, frozenset[str]]:
    scopes: dict[str, frozenset[str]] = {}
    for value in values:
        token, separator, granted = value.partition("=")
        if not separator or not token:
            raise argparse.ArgumentTypeError(f"expected TOKEN=scope+scope, got {value!r}")
        scopes[token] = frozenset(filter(None, granted.split("+")))
    return scopes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pennylane-sandbox", description="A local stand-in for Pennylane's Company API v2."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8910)
    parser.add_argument(
        "--tokens", required=True, help="comma-separated tokens; each one is a separate company"
    )
    parser.add_argument(
        "--token-scopes",
        action="append",
        default=[],
        metavar="TOKEN=SCOPE+SCOPE",
        help="restrict a token to these scopes (others get 403); repeatable",
    )
    parser.add_argument("--rate-limit", type=int, default=PENNYLANE_RATE_LIMIT)
    parser.add_argument("--rate-window", type=float, default=PENNYLANE_RATE_WINDOW_SECONDS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument("--fault-429", type=float, default=0.0, help="share of injected 429s")
    parser.add_argument("--fault-500", type=float, default=0.0, help="share of injected 500s")
    parser.add_argument("--fault-503", type=float, default=0.0, help="share of injected 503s")
    parser.add_argument(
        "--fault-drop", type=float, default=0.0, help="share of dropped connections"
    )
    parser.add_argument("--fault-delay", type=float, default=0.0, help="share of slow responses")
    parser.add_argument("--delay-seconds", type=float, default=2.0)
    parser.add_argument(
        "--no-chronological-finalization",
        action="store_true",
        help="allow finalizing an invoice dated before the last finalized one",
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        tokens=[token for token in args.tokens.split(",") if token],
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        faults=FaultSettings(
            rate_429=args.fault_429,
            rate_500=args.fault_500,
            rate_503=args.fault_503,
            rate_drop=args.fault_drop,
            rate_delay=args.fault_delay,
            delay_seconds=args.delay_seconds,
        ),
        seed=args.seed,
        token_scopes=_token_scopes(args.token_scopes),
        enforce_chronological_finalization=not args.no_chronological_finalization,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    app = create_app(build_config(args))
    # The app sends its own `Date`, on the sandbox's clock.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
