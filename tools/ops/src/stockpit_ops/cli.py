"""`stockpit`: the operator's command over the services' HTTP APIs.

    stockpit connect TENANT --token-file F [--interval 300]   connect a tenant to Pennylane
    stockpit interval TENANT SECONDS                            set its sync interval
    stockpit disconnect TENANT / reconnect TENANT
    stockpit repoint TENANT --token-file F                      move TENANT to another company
    stockpit rotate-token-keys                                  re-encrypt tokens, newest key
    stockpit db-roles                                           PostgreSQL role per service
    stockpit import-now TENANT [--what invoices|purchase_orders|everything] [--wait]
    stockpit status TENANT                                      last sync, lag, errors
    stockpit stock TENANT [--csv]                               stock per product and location
    stockpit report TENANT [--kind K] [--since D] [--open-only]  sync runs, problems to act on
    stockpit ack TENANT PROBLEM_ID [PROBLEM_ID…]                a problem was dealt with
    stockpit count TENANT FILE [--apply]                        stock count (a preview first)
    stockpit ledger TENANT PRODUCT_ID                           a product's stock ledger
    stockpit duplicates TENANT                                  products flagged as duplicates
    stockpit merge TENANT DUPLICATE_ID ORIGINAL_ID              merge a duplicate (rule 15)
    stockpit dead-letters list SERVICE / replay SERVICE ID [ID…]
    stockpit dev-token --tenant T --scope S [--scope S…]        mint a token with the local key

Service addresses come from STOCKPIT_POLLER_URL, STOCKPIT_INVENTORY_URL and
STOCKPIT_OUTBOUND_URL (defaults: the local ports 8010, 8020, 8030). Every call carries the
access token of STOCKPIT_TOKEN, or of the file given with `--token-file` (before the command).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.progress import Progress
from rich.table import Table
from rich.text import Text
from stockpit_runtime.auth import LocalAuthority, Scope, scopes_of

app = typer.Typer(help="Operate Stockpit Sync: tenants, syncs, stock and dead letters.")
LOCAL_AUTH_DIR = Path(os.environ.get("STOCKPIT_LOCAL_AUTH_DIR", ".local/auth"))
_token: dict[str, str] = {}
dead_letters_app = typer.Typer(help="Messages the services gave up on, and their replay.")
app.add_typer(dead_letters_app, name="dead-letters")
console = Console()

Service = Literal["poller", "inventory", "outbound"]
DEFAULT_URLS: dict[str, str] = {
    "poller": "http://127.0.0.1:8010",
    "inventory": "http://127.0.0.1:8020",
    "outbound": "http://127.0.0.1:8030",
}


def service_url(service: str) -> str:
    return os.environ.get(f"STOCKPIT_{service.upper()}_URL", DEFAULT_URLS[service])


@app.callback()
def main(
    token_file: Annotated[
        Path | None,
        typer.Option(help="file holding the access token (default: $STOCKPIT_TOKEN)"),
    ] = None,
) -> None:
    """Operate Stockpit Sync: tenants, syncs, stock and dead letters."""
    _token.clear()
    token = token_file.read_text().strip() if token_file else os.environ.get("STOCKPIT_TOKEN")
    if token:
        _token["value"] = token


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {_token['value']}"} if "value" in _token else {}


def _call(service: str, method: str, path: str, **kwargs: Any) -> Any:
    response = _send(service, method, path, **kwargs)
    return response.json() if response.content else None


def _call_all(service: str, path: str, **params: Any) -> list[Any]:
    """A paged list read whole (following `Link: rel="next"`)."""
    response = _send(service, "GET", path, params=params)
    rows: list[Any] = response.json()
    while "next" in response.links:
        response = _send(service, "GET", response.links["next"]["url"])
        rows += response.json()
    return rows


def _send(
    service: str,
    method: str,
    path: str,
    *,
    check: bool = True,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request with the token; with `check`, an error answer is printed and ends the
    command (exit 1)."""
    try:
        response = httpx.request(
            method,
            service_url(service) + path,
            headers={**_headers(), **(headers or {})},
            timeout=30,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]{service} unreachable at {service_url(service)}: {exc}[/red]")
        raise typer.Exit(2) from exc
    if check and response.status_code >= 400:
        detail = response.json().get("detail") if _is_json(response) else response.text
        console.print(f"[red]{service} answered {response.status_code}: {detail}[/red]")
        if response.status_code == 401 and not _headers():
            console.print("set STOCKPIT_TOKEN or give --token-file (see `stockpit dev-token`)")
        raise typer.Exit(1)
    return response


def _is_json(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")


def _table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


def _show_status(status: dict[str, Any]) -> None:
    console.print(
        _table(
            f"Tenant {status['tenant_id']}",
            ("field", "value"),
            sorted((k, v) for k, v in status.items() if k != "tenant_id"),
        )
    )


@app.command()
def connect(
    tenant: str,
    token_file: Annotated[Path, typer.Option(help="file holding the Pennylane API token")],
    interval: Annotated[
        int | None,
        typer.Option(help="sync interval in seconds (5 to 86400), kept in Stockpit's settings"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="import documents from this day (default: the connection day)"),
    ] = None,
) -> None:
    """Connect TENANT to Pennylane (or replace its token and settings)."""
    token = token_file.read_text().strip()
    if interval is not None:
        _set_interval(tenant, interval)
    settings: dict[str, Any] = {}
    if since:
        settings["documents_since"] = since
    body = {"pennylane_token": token, "settings": settings}
    _show_status(_call("poller", "PUT", f"/connections/{tenant}", json=body))


def _set_interval(tenant: str, seconds: int) -> None:
    body = {"sync_interval_seconds": seconds}
    _call("inventory", "PUT", f"/tenants/{tenant}/settings", json=body)


@app.command()
def interval(tenant: str, seconds: Annotated[int, typer.Argument(help="5 to 86400")]) -> None:
    """Set TENANT's sync interval (a Stockpit setting; the poller's next sync follows it)."""
    _set_interval(tenant, seconds)
    console.print(f"{tenant} syncs every {seconds} s")


@app.command()
def repoint(
    tenant: str,
    token_file: Annotated[Path, typer.Option(help="file holding the new company's API token")],
    interval: Annotated[int, typer.Option(help="sync interval in seconds (≥ 5)")] = 1800,
    since: Annotated[
        str | None,
        typer.Option(help="import documents from this day (default: the connection day)"),
    ] = None,
) -> None:
    """Move TENANT to the Pennylane company of this token. A tenant is pinned to the company of
    its first token and `connect` refuses another company's; this is the explicit move: the
    poller forgets the old company's watermarks and snapshots and reads the new one from the
    start."""
    token = token_file.read_text().strip()
    settings: dict[str, Any] = {"sync_interval_s": interval}
    if since:
        settings["documents_since"] = since
    body = {"pennylane_token": token, "settings": settings}
    _show_status(_call("poller", "POST", f"/connections/{tenant}/repoint", json=body))


@app.command("rotate-token-keys")
def rotate_token_keys() -> None:
    """Re-encrypt every stored Pennylane token with the newest key (the first of
    STOCKPIT_TOKEN_KEY on the poller), so the older keys can then be removed."""
    result = _call("poller", "POST", "/operations/rotate-token-keys")
    console.print(
        f"re-encrypted {result['rotated']} token(s) with the newest of "
        f"{result['keys_configured']} key(s); the older keys can now be removed from "
        "STOCKPIT_TOKEN_KEY (poller and outbound)"
    )


@app.command("db-roles")
def db_roles(
    admin_url: Annotated[
        str,
        typer.Option(
            envvar="STOCKPIT_ADMIN_DATABASE_URL",
            help="the administrator's database URL (used for this step only)",
        ),
    ],
) -> None:
    """Create or update the services' PostgreSQL roles, each owning its own schema only (the
    poller's also the connection registry, which outbound may only read). Passwords come from
    STOCKPIT_DB_PASSWORD_POLLER, _INVENTORY and _OUTBOUND."""
    from stockpit_ops.db_roles import SERVICES, RolePlan, bootstrap_roles_sync

    variables = {service: f"STOCKPIT_DB_PASSWORD_{service.upper()}" for service in SERVICES}
    missing = [name for name in variables.values() if not os.environ.get(name)]
    if missing:
        console.print(f"[red]set {', '.join(missing)}[/red]")
        raise typer.Exit(2)
    plan = RolePlan(passwords={s: os.environ[v] for s, v in variables.items()})
    bootstrap_roles_sync(admin_url, plan)
    for service in SERVICES:
        console.print(f"{service}: role {plan.roles[service]} owns schema {plan.schemas[service]}")


@app.command()
def disconnect(tenant: str) -> None:
    """Stop every sync of TENANT at once; its data stays."""
    _show_status(_call("poller", "POST", f"/connections/{tenant}/disconnect"))


@app.command()
def reconnect(tenant: str) -> None:
    """Resume TENANT's sync where it stopped."""
    _show_status(_call("poller", "POST", f"/connections/{tenant}/reconnect"))


@app.command("import-now")
def import_now(
    tenant: str,
    what: Annotated[str, typer.Option(help="invoices, purchase_orders or everything")] = (
        "everything"
    ),
    wait: Annotated[bool, typer.Option(help="wait until the sync has finished")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 300,
) -> None:
    """Sync TENANT now instead of waiting for its schedule."""
    before = _call("poller", "GET", f"/connections/{tenant}").get("last_successful_sync_at")
    _call("poller", "POST", f"/connections/{tenant}/import-now", json={"what": what})
    if not wait:
        console.print(f"import of {what} requested for {tenant}")
        return
    deadline = time.monotonic() + timeout
    with Progress(console=console, transient=True) as progress:
        progress.add_task(f"syncing {tenant}…", total=None)
        while time.monotonic() < deadline:
            status = _call("poller", "GET", f"/connections/{tenant}")
            if status.get("last_successful_sync_at") not in (None, before):
                _show_status(status)
                return
            time.sleep(0.5)
    console.print(f"[red]no finished sync of {tenant} within {timeout}s[/red]")
    raise typer.Exit(1)


@app.command()
def status(tenant: str) -> None:
    """Connection and sync status of TENANT: last sync, next sync, last error, and the open
    problems of its sync report."""
    shown = _call("poller", "GET", f"/connections/{tenant}")
    # The report's figures when inventory answers; the connection's status stands on its own.
    with contextlib.suppress(httpx.HTTPError):
        report = httpx.request(
            "GET",
            service_url("inventory") + f"/tenants/{tenant}/status",
            headers=_headers(),
            timeout=10,
        )
        if report.status_code == 200:
            figures = report.json()
            shown["open_problems"] = figures["open_problems"]
            shown["needs_new_token"] = figures["needs_new_token"]
    _show_status(shown)


@app.command()
def stock(
    tenant: str,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on standard output (name, SKU, location, figures)")
    ] = False,
    semicolons: Annotated[
        bool, typer.Option(help="with --csv: ';' separated, for French spreadsheets")
    ] = False,
) -> None:
    """Stock per product and location (real, reserved, available, incoming)."""
    if as_csv:
        params = {"separator": "semicolon"} if semicolons else {}
        sys.stdout.write(
            _send("inventory", "GET", f"/tenants/{tenant}/stock.csv", params=params).text
        )
        return
    rows = _call_all("inventory", f"/tenants/{tenant}/stock", limit=500)
    console.print(
        _table(
            f"Stock of {tenant}",
            ("product", "location", "real", "reserved", "available", "incoming"),
            (
                (
                    row.get("product_name") or row["product_id"],
                    row.get("location_name") or row["location_id"],
                    *(_qty(row[k]) for k in ("real", "reserved", "available", "incoming")),
                )
                for row in rows
            ),
        )
    )


@app.command()
def ledger(tenant: str, product_id: str) -> None:
    """Every stock movement of one product, with its cause, newest first."""
    entries = _call_all("inventory", f"/tenants/{tenant}/products/{product_id}/ledger", limit=500)
    console.print(
        _table(
            f"Ledger of {product_id}",
            ("at", "location", "Δ real", "Δ reserved", "Δ incoming", "cause"),
            (
                (
                    entry.get("recorded_at"),
                    entry.get("location_name") or entry.get("location_id"),
                    _qty(entry.get("delta_real")),
                    _qty(entry.get("delta_reserved")),
                    _qty(entry.get("delta_incoming")),
                    " ".join(
                        part
                        for part in (
                            entry.get("cause_kind") or entry.get("cause"),
                            (entry.get("document") or {}).get("label")
                            or entry.get("stockpit_number"),
                        )
                        if part
                    ),
                )
                for entry in entries
            ),
        )
    )


@app.command()
def merge(tenant: str, duplicate_id: str, original_id: str) -> None:
    """Merge a duplicate product into the original: its stock per location and its Pennylane
    id move to the original, and it is deactivated. Nothing is written to Pennylane."""
    result = _call(
        "inventory", "POST", f"/tenants/{tenant}/products/{duplicate_id}/merge-into/{original_id}"
    )
    original, duplicate = result["original"], result["duplicate"]
    console.print(
        f"{duplicate['name']} ({duplicate_id}) merged into {original['name']} ({original_id}),"
        f" Pennylane id {original['pennylane_id'] or duplicate['pennylane_id']}"
    )


@app.command()
def duplicates(tenant: str) -> None:
    """Products flagged as likely duplicates, with the product each likely duplicates."""
    products = _call_all("inventory", f"/tenants/{tenant}/products", limit=500)
    console.print(
        _table(
            f"Likely duplicates of {tenant}",
            ("product", "name", "sku", "Pennylane id", "likely duplicate of"),
            (
                (p["product_id"], p["name"], p["sku"], p["pennylane_id"], p["likely_duplicate_of"])
                for p in products
                if p.get("likely_duplicate_of")
            ),
        )
    )


def _document(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return str(value.get("number") or value.get("reference")) + (
        f" ({value['issued_on']})" if value.get("issued_on") else ""
    )


def _when(timestamp: str) -> str:
    """An ISO 8601 UTC time as a person reads it: to the second, without the zone letter."""
    return timestamp.replace("T", " ")[:19]


def _problem(problem: dict[str, Any]) -> Group:
    """One problem as a short block a narrow terminal shows whole: what, where, which document,
    then what to do."""
    kind = problem["kind"].replace("_", " ")
    if problem.get("occurrences", 1) > 1:
        kind += f" ×{problem['occurrences']}"
    state = " (acknowledged)" if problem.get("acknowledged_at") else ""
    title = f"#{problem['problem_id']} {kind}{state} · {_when(problem['reported_at'])}"
    details: list[str] = []
    product = problem.get("product_name")
    if product:
        sku = f" (SKU {problem['sku']})" if problem.get("sku") else ""
        where = f" at {problem['location_name']}" if problem.get("location_name") else ""
        details.append(f"{product}{sku}{where}")
    document = _document(problem.get("document"))
    if document:
        details.append(f"document: {document}")
    # A negative level is said whole by its product, location and document; the reason of
    # other kinds (a conflict, a failed write) is what the owner needs to read.
    if problem["kind"] != "negative_stock" or not product:
        details.append(str(problem.get("reason") or problem.get("summary", "")))
    details.append(f"what to do: {problem['hint']}")
    lines: list[RenderableType] = [Text(title, style="bold")]
    lines.extend(Padding(Text(detail), (0, 0, 0, 4), expand=False) for detail in details)
    return Group(*lines)


@app.command()
def report(
    tenant: str,
    kind: Annotated[
        list[str] | None, typer.Option(help="only problems of this kind (repeatable)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="from this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="before this time (ISO 8601)")] = None,
    open_only: Annotated[bool, typer.Option(help="hide acknowledged problems")] = False,
    limit: Annotated[int, typer.Option(help="problems per page (at most 500)")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page's cursor")] = None,
    runs: Annotated[int, typer.Option(help="sync runs shown")] = 10,
) -> None:
    """TENANT's sync report: status, recent sync runs, and each problem with the document's
    number and date, the product, the location and what to do."""
    params: dict[str, Any] = {"limit": limit, "runs": runs, "open_only": open_only}
    for name, value in (("kind", kind), ("since", since), ("until", until), ("cursor", cursor)):
        if value:
            params[name] = value
    response = _send("inventory", "GET", f"/tenants/{tenant}/report", params=params)
    answer = response.json()
    status = answer["status"]
    last = status.get("last_sync") or {}
    console.print(
        _table(
            f"Sync report of {tenant}",
            ("field", "value"),
            (
                ("open problems", status["open_problems"]),
                *((f"  {k}", v) for k, v in status["open_problems_by_kind"].items()),
                ("last sync", last.get("finished_at", "never")),
                ("last outcome", last.get("outcome", "")),
                ("needs a new token", "YES" if status["needs_new_token"] else "no"),
            ),
        )
    )
    console.print(
        _table(
            "Sync runs",
            ("finished (UTC)", "documents", "duration", "outcome", "streams"),
            (
                (
                    _when(r["finished_at"]),
                    r["documents"],
                    f"{r['duration_s']:.1f} s",
                    r["outcome"] + (f" ({r['error_kind']})" if r.get("error_kind") else ""),
                    ", ".join(r["streams"]),
                )
                for r in answer["sync_runs"]
            ),
        )
    )
    problems = answer["problems"]
    console.print(Text(f"Problems ({len(problems)} on this page)", style="bold"))
    for problem in problems:
        console.print(_problem(problem))
    # The next page of problems, as every list announces it: a `Link: <…>; rel="next"` header.
    if "next" in response.links:
        following = httpx.URL(response.links["next"]["url"]).params.get("cursor")
        console.print(f"more: stockpit report {tenant} --cursor {following} (same filters)")


@app.command()
def ack(tenant: str, problem_ids: list[int]) -> None:
    """Acknowledge problems of TENANT: they stay in the report, no longer counted as open."""
    for problem_id in problem_ids:
        _call("inventory", "POST", f"/tenants/{tenant}/problems/{problem_id}/acknowledge")
    console.print(f"acknowledged {len(problem_ids)} problem(s) of {tenant}")


@app.command()
def count(
    tenant: str,
    file: Annotated[Path, typer.Argument(help="CSV: sku or product_id, location, counted")],
    apply: Annotated[bool, typer.Option(help="apply it (without: a preview only)")] = False,
    note: Annotated[str, typer.Option(help="kept in the ledger")] = "stock count",
) -> None:
    """Import a stock count: previews product, location, current real, counted, difference;
    with --apply, sets real stock to the counted figures (ledger cause "count")."""
    response = _send(
        "inventory",
        "POST",
        f"/tenants/{tenant}/counts",
        check=False,
        content=file.read_bytes(),
        params={"apply": apply, "note": note},
        headers={"content-type": "text/csv"},
    )
    if response.status_code == 422 and _is_json(response) and "bad_rows" in response.json():
        console.print(
            _table(
                f"{file.name} refused, nothing applied",
                ("line", "reason"),
                ((row["line"], row["reason"]) for row in response.json()["bad_rows"]),
            )
        )
        raise typer.Exit(1)
    if response.status_code >= 400:
        detail = response.json().get("detail") if _is_json(response) else response.text
        console.print(f"[red]inventory answered {response.status_code}: {detail}[/red]")
        raise typer.Exit(1)
    result = response.json()
    title = "Applied" if result["applied"] else "Preview (nothing applied)"
    console.print(
        _table(
            f"{title}: stock count of {tenant}",
            ("line", "product", "SKU", "location", "current real", "counted", "difference"),
            (
                (
                    line["line"],
                    line["product_name"],
                    line["sku"],
                    line["location_name"],
                    _qty(line["current_real"]),
                    _qty(line["counted"]),
                    _signed(line["difference"]),
                )
                for line in result["lines"]
            ),
        )
    )
    if result["applied"]:
        console.print(f"{result['changed']} level(s) set to the counted figures")
    else:
        console.print(f"{result['changed']} level(s) would change: run again with --apply")


@dead_letters_app.command("list")
def list_dead_letters(service: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Dead letters of SERVICE (poller, inventory or outbound), newest first."""
    params = {"tenant_id": tenant} if tenant else {}
    rows = _call_all(service, "/operations/dead-letters", **params)
    console.print(
        _table(
            f"Dead letters of {service}",
            ("id", "tenant", "topic", "offset", "failed at", "attempts", "reason"),
            (
                (
                    r["id"],
                    r["tenant_id"],
                    r["topic"],
                    r["offset"],
                    r["failed_at"],
                    r["attempts"],
                    r["reason"],
                )
                for r in rows
            ),
        )
    )


@dead_letters_app.command("replay")
def replay_dead_letters(service: str, ids: list[int]) -> None:
    """Put dead letters back on their topics."""
    with Progress(console=console) as progress:
        task = progress.add_task("replaying", total=len(ids))
        for dead_letter_id in ids:
            _call(service, "POST", f"/operations/dead-letters/{dead_letter_id}/replay")
            progress.advance(task)
    console.print(f"replayed {len(ids)} dead letter(s) of {service}")


def _signed(value: Any) -> str:
    text = _qty(value)
    return text if text.startswith("-") or text in ("", "0") else f"+{text}"


def _qty(value: Any) -> str:
    if value is None:
        return ""
    return format(Decimal(str(value)).normalize(), "f")


@app.command("dev-token")
def dev_token(
    tenant: Annotated[
        list[str], typer.Option(help='tenant the token acts for (repeat; "*" for every tenant)')
    ],
    scope: Annotated[
        list[str],
        typer.Option(help=f"scope granted (repeat): {', '.join(s.value for s in Scope)}"),
    ],
    subject: Annotated[str, typer.Option(help="who the token names (`sub`)")] = "dev",
    minutes: Annotated[int, typer.Option(help="lifetime in minutes", min=1, max=1440)] = 60,
    key_dir: Annotated[
        Path, typer.Option(help="the local key pair's directory ($STOCKPIT_LOCAL_AUTH_DIR)")
    ] = LOCAL_AUTH_DIR,
) -> None:
    """Print an access token signed with the local key (`make demo` makes it): for a local
    system only; a deployment's tokens come from its identity provider."""
    authority = LocalAuthority(key_dir)
    if not authority.private_key_file.is_file():
        console.print(
            f"[red]no local private key at {authority.private_key_file}: dev-token only signs "
            "for a local system (`make demo` creates the key); a deployment's tokens come "
            "from its identity provider[/red]"
        )
        raise typer.Exit(1)
    try:
        scopes = scopes_of(scope)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    token = authority.token(
        tenants=tenant, scopes=scopes, subject=subject, lifetime=timedelta(minutes=minutes)
    )
    print(token)  # alone on stdout: `export STOCKPIT_TOKEN=$(stockpit dev-token …)`
