"""`jobql serve | seed | migrate | import | prune | export-schema | schema-check | bench |
collect | emit`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from jobql import logs
from jobql.settings import Settings, SettingsError, parse_address

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from jobql.storage.placement import Placement
    from jobql.storage.prune import PruneReport
    from jobql.storage.records import InstanceRecord

logger = logging.getLogger("jobql")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # `jobql bench` hands every option after it to the benchmark's own parser.
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "handler", None) is not _bench:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.bench_args = extra
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"jobql: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"jobql: {exc}", file=sys.stderr)
        return 1


def _check_openlineage(settings: Settings) -> None:
    """A configured OpenLineage client that cannot be made (an unknown transport, a bad URL) is
    refused here, by name, not by a traceback from each worker."""
    if settings.openlineage == "off":
        return
    from jobql.emit.client import Sender
    from jobql.emit.config import emitter_enabled

    if not emitter_enabled(settings.openlineage):
        return
    try:
        sender = Sender.from_environment()
    except Exception as exc:
        raise CommandError(f"OpenLineage client configuration: {exc}") from exc
    sender.client.close(1.0)


class CommandError(Exception):
    """A failure the user can fix; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobql",
        description="A GraphQL API over job instance data. "
        "JOBQL_DATABASE_URL picks the database (default sqlite+aiosqlite:///./jobql.db).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve /graphql (GraphiQL in a browser)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=1)
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    partitions = commands.add_parser(
        "partitions",
        help="PostgreSQL: create the monthly partitions of instances ahead of time",
        description="Creates the missing monthly partitions of instance and instance_node from "
        "--from (default: this month) to --ahead months after this month; rows of a new month "
        "waiting in the DEFAULT partition move into it. Idempotent: a month already there is "
        "reported as present. Exit 1 when the database is SQLite (not partitioned) or not "
        "migrated.",
    )
    partitions.add_argument(
        "--ahead", type=_non_negative, default=3, help="months after this one (default 3)"
    )
    partitions.add_argument(
        "--from", dest="first", type=_month, default=None, metavar="YYYY-MM", help="first month"
    )
    partitions.set_defaults(handler=_partitions)

    seed = commands.add_parser("seed", help="add realistic synthetic data")
    seed.add_argument("--instances", type=_positive, default=5_000, help="total (default 5000)")
    seed.add_argument("--jobs", type=_positive, default=None, help="total (default: derived)")
    seed.add_argument("--workspaces", type=_positive, default=3, help="default, ws1, ... (3)")
    seed.add_argument("--seed", type=int, default=0, help="random seed (reproducible data)")
    seed.set_defaults(handler=_seed)

    importer = commands.add_parser(
        "import",
        help="import response bodies of the source APIs (format detected from the content)",
    )
    importer.add_argument("files", nargs="+", metavar="FILE", help="files, or - for stdin")
    importer.add_argument(
        "--format",
        choices=("dlf-v1-list", "dlf-v2-list", "dlf-v1-detail", "schedulerx", "flink-instance"),
        help="the body's format when detection cannot tell",
    )
    importer.add_argument(
        "--workspace", help="workspace for bodies that do not name one (default: default)"
    )
    importer.add_argument(
        "--timezone",
        default=None,
        help="IANA zone of SchedulerX's local times (default: JOBQL_TIMEZONE, else UTC)",
    )
    importer.add_argument(
        "--metrics-textfile",
        metavar="PATH",
        help="at the end, also when the import fails, write this process's Prometheus metrics "
        "(ingest items by outcome) to PATH, for node_exporter's textfile collector (name it "
        "*.prom in its directory); written whole or not at all",
    )
    importer.set_defaults(handler=_import)

    prune = commands.add_parser(
        "prune",
        help="delete instances planned longer ago than an age, with their nodes (jobs stay)",
        description="Deletes the instances whose plan time is before now minus --older-than, "
        "with their nodes, in every workspace or one, in batches of one transaction each; "
        "progress on stderr, a report per workspace on stdout. Exit 0: done; 1: the database "
        "cannot be used or the workspace does not exist; 2: bad arguments.",
    )
    prune.add_argument(
        "--older-than",
        required=True,
        type=_age,
        metavar="AGE",
        help="Nh, Nd or Nw (hours, days, weeks), e.g. 180d",
    )
    prune.add_argument("--workspace", metavar="NAME", help="only this workspace (default: all)")
    prune.add_argument(
        "--batch-size", type=_positive, default=5_000, help="instances per transaction (5000)"
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    prune.set_defaults(handler=_prune)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("-o", "--output", default="schema.graphql", help="file, or - for stdout")
    export.set_defaults(handler=_export_schema)

    schema_check = commands.add_parser(
        "schema-check",
        help="compare the schema with a baseline: exit 1 on an unacknowledged breaking change",
        description="Lists breaking, dangerous and safe changes of the current schema against a "
        "baseline. Exit 0: compatible (or every break acknowledged); 1: an unacknowledged "
        "breaking change; 2: the baseline or acknowledgements cannot be used.",
    )
    schema_check.add_argument(
        "--against",
        metavar="FILE|REF",
        help="an SDL file, or a git ref whose schema.graphql is the baseline "
        "(default: schema.baseline.graphql)",
    )
    schema_check.add_argument(
        "--acknowledged",
        metavar="FILE",
        help="TOML file of acknowledged breaking changes (default: schema.acknowledged.toml, "
        "optional)",
    )
    schema_check.set_defaults(handler=_schema_check)

    bench = commands.add_parser(
        "bench",
        help="run the read benchmark (`python -m bench`; needs the source checkout)",
        add_help=False,  # --help is the benchmark's own
    )
    bench.set_defaults(handler=_bench)

    collect = commands.add_parser(
        "collect",
        help="pull instances from DLF, SchedulerX and Realtime Compute into jobql, continuously",
        description="Runs every source of the TOML file in passes until SIGTERM (see README, "
        "Collecting from the sources). Exit 0: stopped; 1: a pass failed (--once), a source is "
        "unhealthy (--status) or the database cannot be used; 2: the file or the metrics "
        "address cannot be used.",
    )
    collect.add_argument("--config", metavar="FILE", help="the collector's TOML file")
    collect.add_argument("--once", action="store_true", help="one pass per source, then exit")
    collect.add_argument(
        "--source", action="append", metavar="NAME", help="only this source (repeatable)"
    )
    collect.add_argument(
        "--status", action="store_true", help="each source's last success, lag and last error"
    )
    collect.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        help="serve this process's Prometheus metrics (ingest items by outcome, each source's "
        "lag, last success and last error) on http://HOST:PORT/metrics while it collects, "
        "with no token check: bind it where only Prometheus reaches ([::1]:PORT for IPv6; "
        "default: JOBQL_COLLECT_METRICS_ADDRESS, else none; not with --status)",
    )
    collect.set_defaults(handler=_collect)

    emit = commands.add_parser(
        "emit",
        help="send jobql's runs as OpenLineage RunEvents (openlineage-python's configuration)",
        description="Reads the instance event log from its cursor and sends each run's START "
        "and COMPLETE/FAIL/ABORT through openlineage-python's transport (OPENLINEAGE_URL, "
        "OPENLINEAGE_CONFIG, openlineage.yml; see README, OpenLineage out), until SIGTERM. "
        "Exit 0: stopped or done; 1: the database cannot be used, or (--once) another process "
        "holds the cursor; 2: OPENLINEAGE_DISABLED=true.",
    )
    emit.add_argument("--once", action="store_true", help="send what the log holds now, then exit")
    emit.add_argument(
        "--cursor", metavar="NAME", help="the cursor to use (default: default, as serve's)"
    )
    emit.add_argument("--status", action="store_true", help="where each cursor stands")
    emit.set_defaults(handler=_emit)
    return parser


def _emit(args: argparse.Namespace, settings: Settings) -> int:
    from jobql.emit import command

    return command.run(settings, once=args.once, cursor=args.cursor, status=args.status)


def _collect(args: argparse.Namespace, settings: Settings) -> int:
    from jobql.collect import command

    metrics_address = settings.collect_metrics_address
    if args.metrics_address is not None:
        try:
            metrics_address = parse_address(args.metrics_address)
        except ValueError as exc:
            given = args.metrics_address
            print(f"jobql collect: --metrics-address {given!r} is {exc}", file=sys.stderr)
            return 2
    placement = settings.placement()
    return command.run(
        config=args.config,
        sources=args.source,
        once=args.once,
        status=args.status,
        database_url=settings.database_url,
        timezone=settings.timezone,
        # Each source writes into its workspace's database (JOBQL_WORKSPACE_DATABASES).
        url_for=placement.url_for if placement.spread else None,
        database_urls=placement.urls(),
        metrics_address=metrics_address,
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from jobql.access import Access, AccessConfigError
    from jobql.http.persisted import Allowlist, AllowlistError
    from jobql.http.wsframes import CoalescingHttpTools, CoalescingWebSockets

    try:
        Access.from_config(settings.tokens, settings.tokens_file)
        if settings.allowed_operations:
            Allowlist.from_directory(settings.allowed_operations)
    except (AccessConfigError, AllowlistError) as exc:
        raise CommandError(str(exc)) from exc
    _check_openlineage(settings)

    asyncio.run(_prepare_database(settings))
    with _metrics_directory(settings, args.workers):
        uvicorn.run(
            "jobql.app:serve_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level,
            log_config=logs.uvicorn_config(settings.log_format, settings.log_level),
            # JSON: jobql writes the request lines itself (uvicorn's have no workspace, no
            # operation, and the query string, where GET requests carry their variables).
            access_log=settings.access_log and settings.log_format == "text",
            # permessage-deflate costs more CPU than it saves on small messages (Hasura's
            # default too).
            ws_per_message_deflate=settings.live_compression,
            # uvicorn's own HTTP and WebSocket protocols, writing what one event-loop turn
            # sends with one system call (jobql/http/wsframes.py).
            http=CoalescingHttpTools,
            ws=CoalescingWebSockets,
        )
    return 0


@contextlib.contextmanager
def _metrics_directory(settings: Settings, workers: int) -> Iterator[None]:
    """Several workers: prometheus-client's multiprocess mode, in a fresh directory removed at
    exit, so that /metrics sums every worker (unless PROMETHEUS_MULTIPROC_DIR names one)."""
    if not settings.metrics or workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="jobql-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # the workers inherit it
        try:
            yield
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


async def _prepare_database(settings: Settings) -> None:
    """Create, migrate and seed the default SQLite file; only check any other database."""
    from jobql.storage import migrate
    from jobql.storage.engine import create_engine

    engine = create_engine(settings.database_url)
    try:
        if settings.is_default_database:
            await migrate.upgrade(engine)
            if settings.demo_instances and await _is_empty(engine):
                logger.info("seeding demo data (%d instances)", settings.demo_instances)
                await _run_seed(engine, instances=settings.demo_instances)
        elif not await migrate.is_up_to_date(engine):
            current = await migrate.current_revision(engine)
            raise CommandError(
                f"the database at JOBQL_DATABASE_URL is at revision {current or 'none'}, "
                f"this jobql needs {migrate.head_revision()}: run `jobql migrate` first"
            )
    except OSError as exc:
        raise CommandError(f"cannot reach the database: {exc}") from exc
    finally:
        await engine.dispose()


async def _is_empty(engine: AsyncEngine) -> bool:
    from sqlalchemy import func, select

    from jobql.storage.models import Instance

    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(Instance))
    return not count


async def _require_migrated(placement: Placement, engines: dict[str, AsyncEngine]) -> None:
    """CommandError naming the first of `engines` (by URL) that is not migrated."""
    from jobql.storage import migrate

    for url, engine in engines.items():
        if not await migrate.is_up_to_date(engine):
            raise CommandError(
                f"the database{_where(placement, url)} is not migrated: run `jobql migrate` first"
            )


def _where(placement: Placement, url: str) -> str:
    """A database named in a message: its URL without password (after a space) when the
    workspaces live in several databases, else nothing."""
    return f" {placement.describe(url)}" if placement.spread else ""


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Every database of the placement, the main one first, one line each; the first that fails
    stops the command (those before it stay migrated) and is named."""
    from sqlalchemy.exc import DBAPIError

    from jobql.storage import migrate, partitions
    from jobql.storage.engine import create_engine

    placement = settings.placement()

    async def run() -> None:
        for url in placement.urls():
            engine = create_engine(url)
            try:
                before = await migrate.current_revision(engine)
                await migrate.upgrade(engine)
                after = await migrate.current_revision(engine)
                async with engine.begin() as connection:
                    created = await partitions.ensure_ahead(connection)
            except Exception as exc:
                if not placement.spread:
                    raise
                reason = exc.orig if isinstance(exc, DBAPIError) else exc
                raise CommandError(
                    f"migrating{_where(placement, url)} failed: {type(reason).__name__}: "
                    f"{reason}; the databases before it are migrated, the ones after it were not "
                    "tried"
                ) from exc
            finally:
                await engine.dispose()
            print(f"migrated{_where(placement, url)}: {before or 'empty'} -> {after}", flush=True)
            new = [partitions.label(entry.month) for entry in created if entry.created]
            if new:
                print(f"partitions created{_where(placement, url)}: {', '.join(new)}", flush=True)

    asyncio.run(run())
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from jobql.demo import SeedPlan
    from jobql.storage.engine import create_engine

    placement = settings.placement()
    # The databases of the workspaces it generates (JOBQL_WORKSPACE_DATABASES), each once.
    names = SeedPlan(workspaces=args.workspaces).workspace_names
    urls = list(dict.fromkeys(placement.url_for(name) for name in names))

    async def run() -> None:
        engines = {url: create_engine(url) for url in urls}
        try:
            await _require_migrated(placement, engines)
            await _run_seed(
                engines[urls[0]],
                engine_for=lambda name: engines[placement.url_for(name)],
                instances=args.instances,
                jobs=args.jobs,
                workspaces=args.workspaces,
                seed=args.seed,
            )
        finally:
            for engine in engines.values():
                await engine.dispose()

    asyncio.run(run())
    return 0


async def _run_seed(
    engine: AsyncEngine,
    *,
    engine_for: Callable[[str], AsyncEngine] | None = None,
    **plan: int | None,
) -> None:
    from jobql.demo import SeedPlan, seed_database

    bar = ProgressBar("seeding")
    result = await seed_database(
        engine,
        SeedPlan(**plan),  # type: ignore[arg-type]
        bar.update,
        engine_for=engine_for,
    )
    bar.close()
    databases = f", {result.databases} databases" if result.databases > 1 else ""
    print(
        f"seeded {result.instances} instances, {result.nodes} nodes, {result.jobs} jobs "
        f"in {result.workspaces} workspaces{databases} ({bar.elapsed:.1f} s)",
        file=sys.stderr,
    )


class ProgressBar:
    """A one-line progress bar on stderr (a plain line per 10% when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self._last_decile = -1
        self._tty = sys.stderr.isatty()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        rate = done / self.elapsed if self.elapsed > 0 else 0.0
        if self._tty:
            filled = int(fraction * 30)
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} "
                f"{fraction:4.0%} {rate:,.0f}/s"
            )
            sys.stderr.flush()
        elif (decile := int(fraction * 10)) != self._last_decile:
            self._last_decile = decile
            print(f"{self.label}: {done}/{total} ({fraction:.0%}, {rate:,.0f}/s)", file=sys.stderr)

    def close(self) -> None:
        if self._tty:
            sys.stderr.write("\n")


def _import(args: argparse.Namespace, settings: Settings) -> int:
    textfile = args.metrics_textfile
    if textfile is not None:
        problem = _unwritable(Path(textfile))
        if problem is not None:
            print(f"jobql import: --metrics-textfile {textfile}: {problem}", file=sys.stderr)
            return 2
    status = 1
    try:
        status = _import_files(args, settings)
    finally:
        # Also after a failure partway: the counts of what did land.
        if textfile is not None and not _write_metrics(textfile):
            status = 1
    return status


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be written at `path` (None: it can, as far as can be told now)."""
    if path.is_dir():
        return "is a directory"
    directory = path.parent
    if not directory.is_dir():
        return f"no directory {directory}"
    # write_to_textfile writes a file beside it, then renames it over `path`: try the first.
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".jobql-", suffix=".tmp"):
            pass
    except OSError as exc:
        return f"cannot write in {directory}: {exc.strerror or exc}"
    return None


def _write_metrics(path: str) -> bool:
    """The process's registry to `path` (prometheus-client's write_to_textfile: a temporary
    file beside it, renamed); False, with the problem on stderr, when it cannot."""
    from prometheus_client import REGISTRY, write_to_textfile

    try:
        write_to_textfile(path, REGISTRY)
    except OSError as exc:
        print(f"jobql import: --metrics-textfile {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _import_files(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from jobql.importers import ImportFormatError, ParsedBody, parse_body
    from jobql.importers.body import DEFAULT_WORKSPACE
    from jobql.resolvers.ingest import ImportSummary, import_instances
    from jobql.storage.engine import create_engine

    try:
        timezone = ZoneInfo(args.timezone or settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(f"--timezone {args.timezone!r} is not an IANA time zone") from None

    # Parse every file first: a bad file is reported and nothing of it is written.
    bodies: list[ParsedBody] = []
    failed = 0
    for name in args.files:
        source = "<stdin>" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            bodies.append(
                parse_body(
                    text,
                    source=source,
                    format=args.format,
                    workspace=args.workspace,
                    timezone=timezone,
                )
            )
        except ImportFormatError as exc:
            print(f"jobql import: {exc}", file=sys.stderr)
            failed += 1
        except (OSError, UnicodeDecodeError) as exc:
            print(f"jobql import: {source}: cannot read: {exc}", file=sys.stderr)
            failed += 1
    for body in bodies:
        for warning in body.warnings:
            print(f"jobql import: {body.source}: warning: {warning}", file=sys.stderr)

    # Each record goes to its workspace's database (JOBQL_WORKSPACE_DATABASES).
    placement = settings.placement()
    urls = list(
        dict.fromkeys(
            placement.url_for(record.workspace) for body in bodies for record in body.instances
        )
    ) or [placement.url_for(args.workspace or DEFAULT_WORKSPACE)]

    async def run() -> ImportSummary:
        engines = {url: create_engine(url) for url in urls}
        try:
            await _require_migrated(placement, engines)
            total = sum(len(body.instances) for body in bodies)
            bar = ProgressBar("importing")
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                bar.update(done, total)

            summary = ImportSummary()
            for body in bodies:
                by_url: dict[str, list[InstanceRecord]] = {}
                for record in body.instances:
                    by_url.setdefault(placement.url_for(record.workspace), []).append(record)
                for url, records in by_url.items():
                    part = await import_instances(engines[url], records, progress=advance)
                    summary.counts.update(part.counts)
                    summary.rejected.extend(part.rejected)
            bar.close()
            return summary
        finally:
            for engine in engines.values():
                await engine.dispose()

    summary = asyncio.run(run())
    for problem in summary.rejected[:50]:
        print(f"jobql import: rejected: {problem}", file=sys.stderr)
    if len(summary.rejected) > 50:
        print(f"jobql import: ... and {len(summary.rejected) - 50} more", file=sys.stderr)
    files = f"{len(bodies)} file(s) imported" + (f", {failed} refused" if failed else "")
    print(f"{files}: {summary.line()}")
    return 1 if failed or summary.counts["rejected"] else 0


class Age(NamedTuple):
    text: str
    delta: timedelta


_AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 120:
        raise argparse.ArgumentTypeError(f"{value} must be from 0 to 120")
    return value


def _month(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month: YYYY-MM, as in 2025-06")
    return int(match[1]), int(match[2])


def _age(text: str) -> Age:
    match = re.fullmatch(r"(-?[0-9]+)([hdw])", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: a whole number with h, d or w (hours, days, weeks), "
            "as in 180d"
        )
    if int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than zero")
    try:
        delta = timedelta(**{_AGE_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        delta = timedelta.max
    if delta >= datetime.now(UTC) - datetime(1, 1, 1, tzinfo=UTC):
        raise argparse.ArgumentTypeError(f"{text!r} reaches back before the year 1")
    return Age(text, delta)


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from jobql.storage.engine import create_engine
    from jobql.storage.prune import UnknownWorkspace, prune
    from jobql.storage.types import format_utc

    cutoff = datetime.now(UTC) - args.older_than.delta
    started = time.monotonic()
    placement = settings.placement()
    # One workspace: its database; all: every database, the main one first
    # (JOBQL_WORKSPACE_DATABASES).
    urls = [placement.url_for(args.workspace)] if args.workspace else placement.urls()

    async def prune_one(url: str, engine: AsyncEngine) -> PruneReport:
        bar = ProgressBar(f"pruning{_where(placement, url)}")
        drawn = False

        def advance(done: int, total: int) -> None:
            nonlocal drawn
            drawn = True
            bar.update(done, total)

        try:
            return await prune(
                engine,
                cutoff,
                workspace=args.workspace,
                batch_size=args.batch_size,
                dry_run=args.dry_run,
                progress=advance,
            )
        finally:
            if drawn:
                bar.close()

    async def run() -> PruneReport:
        engines = {url: create_engine(url) for url in urls}
        url = urls[0]  # the database being used, for a message
        try:
            await _require_migrated(placement, engines)
            reports = []
            for url, engine in engines.items():
                reports.append(await prune_one(url, engine))
            return _merged(reports)
        except UnknownWorkspace as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot reach the database{_where(placement, url)}: {exc}") from exc
        finally:
            for engine in engines.values():
                await engine.dispose()

    report = asyncio.run(run())
    went = "would be removed" if report.dry_run else "removed"
    print(f"cutoff: {format_utc(report.cutoff)} (now - {args.older_than.text})")
    for entry in report.workspaces:
        print(f"workspace {entry.name}: {entry.instances} instances, {entry.nodes} nodes {went}")
    done = "dry run, nothing deleted" if report.dry_run else f"{time.monotonic() - started:.1f} s"
    print(
        f"total: {report.instances} instances, {report.nodes} nodes {went} "
        f"in {len(report.workspaces)} workspace(s) ({done})"
    )
    if report.dropped:
        months = ", ".join(f"{year:04d}-{month:02d}" for year, month in report.dropped)
        print(f"partitions dropped whole: {months}")
    if report.held_back:
        print(
            f"kept: {report.held_back} older instance(s) holding SQLite's largest ids (a new "
            "row would get them again); a later prune removes them"
        )
    return 0


def _merged(reports: list[PruneReport]) -> PruneReport:
    """The reports of several databases as one: each workspace once, in name order."""
    from jobql.storage.prune import WorkspacePruned

    if len(reports) == 1:
        return reports[0]
    merged: dict[str, WorkspacePruned] = {}
    for report in reports:
        for entry in report.workspaces:
            into = merged.setdefault(entry.name, WorkspacePruned(entry.name))
            into.instances += entry.instances
            into.nodes += entry.nodes
    first = reports[0]
    return replace(
        first,
        workspaces=[merged[name] for name in sorted(merged)],
        held_back=sum(report.held_back for report in reports),
    )


def _partitions(args: argparse.Namespace, settings: Settings) -> int:
    from jobql.storage import migrate, partitions
    from jobql.storage.engine import create_engine

    async def run() -> list[partitions.Created]:
        engine = create_engine(settings.database_url)
        try:
            if not await migrate.is_up_to_date(engine):
                raise CommandError("the database is not migrated: run `jobql migrate` first")
            async with engine.begin() as connection:
                if not await partitions.is_partitioned(connection):
                    raise CommandError(
                        "this database is not partitioned (only PostgreSQL's is): nothing to do"
                    )
                now = partitions.month_of(datetime.now(UTC))
                last = now
                for _ in range(args.ahead):
                    last = partitions.next_month(last)
                first = min(args.first or now, last)
                return await partitions.ensure_months(connection, first, last)
        except OSError as exc:
            raise CommandError(f"cannot reach the database: {exc}") from exc
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    for entry in report:
        if entry.created:
            moved = f", {entry.moved} instance(s) moved from DEFAULT" if entry.moved else ""
            print(f"{partitions.label(entry.month)}: created{moved}")
        else:
            print(f"{partitions.label(entry.month)}: present")
    created = sum(entry.created for entry in report)
    print(f"total: {created} month(s) created, {len(report) - created} present")
    return 0


def _export_schema(args: argparse.Namespace, _settings: Settings) -> int:
    from jobql.schema import schema

    sdl = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _schema_check(args: argparse.Namespace, _settings: Settings) -> int:
    from jobql.schema import schema
    from jobql.tools import schema_check

    root = Path.cwd()
    acknowledged = Path(args.acknowledged or schema_check.ACKNOWLEDGED_FILE)
    try:
        label, sdl = schema_check.read_baseline(args.against, root)
        baseline = schema_check.parse_sdl(sdl, label)
        acknowledgements = schema_check.read_acknowledgements(
            root / acknowledged, required=args.acknowledged is not None
        )
        current = schema_check.parse_sdl(schema.as_str(), "the current schema")
    except schema_check.SchemaCheckError as exc:
        print(f"jobql schema-check: {exc}", file=sys.stderr)
        return 2
    report = schema_check.check(current, baseline, label, acknowledgements)
    print("\n".join(report.lines(str(acknowledged))))
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace, _settings: Settings) -> int:
    # Imported by name, only here: jobql never depends on the benchmark, which lives beside the
    # package in a source checkout and is not part of an installed jobql.
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "bench" / "run.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        module = importlib.import_module("bench.run")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.run"):
            raise
        raise CommandError(
            "the benchmark suite (package `bench`) is not installed with jobql: run "
            "`jobql bench` or `python -m bench` from a source checkout of jobql"
        ) from None
    return int(module.main(list(args.bench_args)))
