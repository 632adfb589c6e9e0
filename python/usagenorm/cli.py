"""The ``usagenorm`` command line, for ETL jobs (Airflow BashOperator, cron).

Exit codes: 0 success; 1 rejected records under ``--errors raise`` (the default); 2 usage
errors (bad arguments, missing files, unreadable inputs). Errors go to stderr and name the
file, record and field.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from . import _core
from ._errors import ColumnError, FormatError, NormalizeError, RateCardError

EXAMPLES = {
    "normalize": "usagenorm normalize exports/ -o usage.parquet --errors collect --rejects rejects.parquet",
    "aggregate": "usagenorm aggregate exports/ --every 1d --by project_id --tz Europe/Berlin -o daily.csv",
    "price": "usagenorm price usage.parquet --rates rates.csv -o priced.parquet --reconcile diffs.csv",
    "focus": "usagenorm focus exports/ --rates rates.csv -o focus.parquet",
    "formats": "usagenorm formats",
    "detect": "usagenorm detect exports/*.json",
}


# Exit codes: 0 success, 1 rejected records (--errors raise), 2 usage errors, 130 interrupted,
# 141 the output pipe was closed by its reader (128 + SIGPIPE, as a shell reports a killed tool).
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """Bad arguments or inputs: exit code 2."""


class TooManyRejects(Exception):
    """More rejected records than ``--max-rejects`` allows: exit code 1."""


# ---- progress -----------------------------------------------------------------------------------


class Progress:
    """The command line's progress display (``_progress.Bar``, plain: one line redrawn on
    stderr), only on a terminal and without ``--quiet``: reading, dedupe, building the frame,
    merging tables, then writing. Its callback is what ``normalize(progress=...)`` receives."""

    def __init__(self, enabled: bool) -> None:
        from ._progress import Bar

        self.bar = Bar(use_tqdm=False) if enabled and sys.stderr.isatty() else None

    @property
    def callback(self):
        return self.bar

    def phase(self, name: str) -> None:
        if self.bar is not None:
            self.bar.phase(name)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_in_thread(fn, *args, **kwargs):
    """Runs a long core call in a worker thread so Ctrl-C reaches the main thread at once."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - every outcome, even KeyboardInterrupt, goes back to the caller
            result["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.1)
    if "error" in result:
        raise result["error"]
    return result["value"]


# ---- inputs and outputs -------------------------------------------------------------------------


def load(args: argparse.Namespace) -> tuple[pl.DataFrame, dict]:
    """The canonical rows of every source, and the accounting for the summary line; writes
    ``--rejects`` and ``--stats`` and applies ``--max-rejects``."""
    from . import _canonical, _sources, normalize

    given = [sys.stdin.buffer if s == "-" else s for s in args.sources]
    exports, tables = _canonical.split(given)
    storage = STORAGE_OPTIONS
    sources = _sources.collect(exports, storage) if exports else []  # reads standard input, once
    inputs = [name if data is None else _named(name, data) for name, data in sources]
    args.progress = Progress(not args.quiet)
    try:
        out = run_in_thread(
            normalize,
            [*map(str, tables), *inputs],
            provider=args.provider,
            errors="collect",
            period=getattr(args, "period", None),
            dedupe=not args.no_dedupe,
            formats=_format_files(args),
            progress=args.progress.callback,
            storage_options=storage,
        )
    except BaseException:
        args.progress.close()
        raise
    if args.command != "normalize":
        args.progress.close()  # normalize shows its writing too
    st = stats = out.stats
    rejected = out.rejected
    summary = {
        "records": int(st["records"].sum()),
        "rejected": int(st["rejected"].sum()),
        "duplicates": int(st["duplicates"].sum() + st["superseded"].sum()),
    }
    if getattr(args, "rejects", None):
        write(out.rejected, args.rejects)
    if out.rejected.height and errors_mode(args) == "raise":
        first = out.rejected.row(0, named=True)
        raise NormalizeError(
            f"{first['source']}: record {first['source_index']}"
            + (f" (line {first['line']})" if first["line"] is not None else "")
            + f", {first['path']}: {first['reason']}"
            + (f" ({out.rejected.height - 1} more rejected)" if out.rejected.height > 1 else ""),
            source=first["source"],
            index=first["source_index"],
            line=first["line"],
            provider=first["provider"],
            kind=first["kind"],
            path=first["path"],
            reason=first["reason"],
        )
    df = out.records
    summary["rows"] = df.height
    if getattr(args, "stats", None):
        write_stats(args.stats, stats, summary, [str(p) for p in tables])
    limit = getattr(args, "max_rejects", None)
    if limit is not None and rejected is not None:
        # A share of the records read from exports (a canonical table's rows were checked before).
        read = int(stats.filter(~pl.col("source").is_in([str(p) for p in tables]))["records"].sum())
        allowed = limit[0] if not limit[1] else read * limit[0] / 100
        if summary["rejected"] > allowed:
            shown = f"{limit[0]:g}%" if limit[1] else f"{limit[0]:g}"
            raise TooManyRejects(
                f"{summary['rejected']:,} of {read:,} records rejected, more than --max-rejects {shown}"
            )
    return df, summary


def _named(name: str, data: bytes) -> io.BytesIO:
    """In-memory text that keeps its source name (``<stdin>``) in the ``source`` column."""
    f = io.BytesIO(data)
    f.name = name  # type: ignore[misc]
    return f


def errors_mode(args: argparse.Namespace) -> str:
    """``--errors``; without it, collect when ``--rejects`` is given (where else would they go),
    else raise."""
    if args.errors:
        return args.errors
    return "collect" if getattr(args, "rejects", None) else "raise"


def write_stats(target: str, stats: pl.DataFrame | None, summary: dict, tables: list[str]) -> None:
    """``--stats``: the accounting per source and in total, as JSON, for the next task."""
    sources = [] if stats is None else stats.to_dicts()
    doc = {
        "total": {k: summary[k] for k in ("records", "rows", "rejected", "duplicates")},
        "sources": sources,
        "canonical_inputs": tables,
    }
    text = json.dumps(doc, indent=2, default=str) + "\n"
    if "://" in target:
        from . import _remote

        _remote.upload(target, text.encode(), STORAGE_OPTIONS)
    else:
        Path(target).write_text(text)


def max_rejects(text: str) -> tuple[float, bool]:
    """``--max-rejects``: a count (``100``) or a share of the records read (``0.5%``)."""
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of records (100) or a percentage (0.5%)") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: not negative")
    return number, percent


OUTPUT_SUFFIXES = (".parquet", ".csv", ".ndjson", ".jsonl")


def check_output(target: str | None, flag: str, suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> None:
    """An output the run could not write is a usage error before anything is read."""
    if target is None or target == "-":
        return
    path = Path(target)
    if "://" in target:
        from . import _remote

        if not _remote.is_url(target) or target.lower().startswith(("http://", "https://")):
            raise UsageError(f"{flag} {target}: outputs are local files or s3://, gs://, az:// objects")
        if not target.lower().endswith(suffixes):
            raise UsageError(f"{flag} {target}: the output format comes from its suffix: {', '.join(suffixes)}")
        return
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {target}: the output format comes from its suffix: {', '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{flag} {target}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {target}: not writable")


# FOCUS's DateTimeFormat: ISO 8601 extended, to the second, in UTC with a Z.
FOCUS_DATETIME = "%Y-%m-%dT%H:%M:%SZ"


#: ``--storage-option KEY=VALUE``s of this run, for objects read and written.
STORAGE_OPTIONS: dict[str, str] = {}


def write(df: pl.DataFrame, target: str | io.BytesIO, datetime_format: str | None = None, suffix: str = "") -> None:
    if target == "-":
        try:
            df.write_csv(sys.stdout, datetime_format=datetime_format)
            sys.stdout.flush()
        except OSError as e:
            # Polars reports a closed pipe as a plain OSError ("Broken pipe (os error 32)").
            if isinstance(e, BrokenPipeError) or e.errno == errno.EPIPE or "Broken pipe" in str(e):
                raise BrokenPipeError(errno.EPIPE, "broken pipe") from None
            raise
        return
    if isinstance(target, str) and "://" in target:
        # Written in memory, then uploaded: an object is whole or absent.
        from . import _remote

        buffer = io.BytesIO()
        write(df, buffer, datetime_format, suffix=Path(target.split("?")[0]).suffix.lower())
        _remote.upload(target, buffer.getvalue(), STORAGE_OPTIONS)
        return
    path: Path | io.BytesIO = target if isinstance(target, io.BytesIO) else Path(target)
    suffix = suffix or (Path(target).suffix.lower() if isinstance(target, str) else "")
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".csv":
        flat = df.with_columns(
            pl.col(c).cast(pl.String) for c, t in df.schema.items() if isinstance(t, pl.List | pl.Struct)
        )
        flat.write_csv(path, datetime_format=datetime_format)
    elif suffix in (".ndjson", ".jsonl"):
        df.write_ndjson(path)
    else:
        raise UsageError(
            f"{target}: the output format comes from its suffix: .parquet, .csv, .ndjson or .jsonl (or - for CSV on stdout)"
        )


def summarize(args: argparse.Namespace, summary: dict, started: float, extra: str = "") -> None:
    if args.quiet:
        return
    print(
        f"usagenorm {args.command}: {summary['records']:,} records read, {summary['rows']:,} rows, "
        f"{summary['rejected']:,} rejected, {summary['duplicates']:,} duplicates{extra} in {time.perf_counter() - started:.2f} s",
        file=sys.stderr,
    )


# ---- subcommands --------------------------------------------------------------------------------


def cmd_normalize(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    df, summary = load(args)
    args.progress.phase("writing")
    try:
        write(df, args.output)
    finally:
        args.progress.close()
    summarize(args, summary, started)


def cmd_aggregate(args: argparse.Namespace) -> None:
    from . import aggregate

    started = time.perf_counter()
    df, summary = load(args)
    every = None if args.every in ("none", "None", "") else args.every
    by = [b.strip() for given in args.by or [] for b in given.split(",") if b.strip()]
    out = run_in_thread(
        aggregate,
        df,
        every=every,
        by=by,
        tz=args.tz,
        start=args.start,
        end=args.end,
        as_of=_as_of(args.as_of),
        billable_only=not args.all_rows,
    )
    write(out, args.output)
    summarize(args, summary, started, f", {out.height:,} groups")


def _rates(args: argparse.Namespace):
    from . import RateCard

    path = Path(args.rates)
    if not path.is_file():
        raise UsageError(f"{args.rates}: no such rate card")
    return RateCard.from_csv(path) if path.suffix != ".parquet" else RateCard.from_frame(pl.read_parquet(path))


def cmd_price(args: argparse.Namespace) -> None:
    from . import price, reconcile

    started = time.perf_counter()
    df, summary = load(args)
    rates = _rates(args)
    priced, counts = run_in_thread(
        price, df, rates, overwrite=args.overwrite, billable_only=not args.all_rows, summary=True
    )
    write(priced, args.output)
    if args.reconcile:
        write(reconcile(df, rates), args.reconcile)
    by = dict(counts.group_by("outcome").agg(pl.col("rows").sum()).iter_rows())
    unused = counts.filter(pl.col("outcome") == "unused_rate")["rate_row"].to_list()
    extra = f", {by.get('priced', 0):,} priced, {by.get('no_rate', 0):,} without a rate"
    if unused:
        shown = ", ".join(map(str, unused[:10])) + (", ..." if len(unused) > 10 else "")
        extra += f", {len(unused):,} rate row(s) priced nothing (row {shown} of {args.rates})"
    summarize(args, summary, started, extra)


def cmd_focus(args: argparse.Namespace) -> None:
    from . import check_focus, price, to_focus

    started = time.perf_counter()
    df, summary = load(args)
    if args.rates:
        df = run_in_thread(price, df, _rates(args), billable_only=not args.all_rows)
    focus = to_focus(df, as_of=_as_of(args.as_of), version=args.focus_version)
    violations = check_focus(focus)
    write(focus, args.output, datetime_format=FOCUS_DATETIME)
    summarize(args, summary, started, f", {violations.height:,} FOCUS violations")
    if violations.height:
        print(violations.head(10), file=sys.stderr)


def _as_of(text: str | None) -> datetime | None:
    """``--as-of``: an ISO date or instant (naive: UTC), ``now``, or not given."""
    if text is None:
        return None
    if text.strip().lower() == "now":
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of {text!r}: an ISO date or instant (2026-12-01T00:00:00Z), or now") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _format_files(args: argparse.Namespace) -> list:
    """The formats of ``--format-file``, compiled (a ``FormatError`` names the file and key)."""
    from . import Format

    return [Format.from_file(p) for p in getattr(args, "format_file", None) or []]


def cmd_formats(args: argparse.Namespace) -> None:
    from . import formats

    f = formats(_format_files(args))
    if args.markdown:
        for p in f["provider"].unique(maintain_order=True):
            sub = f.filter(pl.col("provider") == p)
            print(f"#### `{p}` — {sub['title'][0]}\n\nReads: {sub['api'][0]}\n\n| column | from |\n|---|---|")
            for col, src in sub.select("column", "source_field").rows():
                print(f"| {col} | {src.replace('|', chr(92) + '|')} |")
            print()
        return
    with pl.Config(tbl_rows=200, fmt_str_lengths=80, tbl_width_chars=160):
        print(f.select("provider", "column", "source_field"))
        print(f.unique("provider", keep="first", maintain_order=True).select("provider", "title", "origin"))


def cmd_detect(args: argparse.Namespace) -> None:
    from . import _sources, normalize

    sources = _sources.collect(args.sources)
    out = normalize([s for s, _ in sources], errors="collect", dedupe=False)
    reasons = dict(out.rejected.group_by("source").agg(pl.col("reason").first()).iter_rows())
    for source, provider, records in out.stats.select("source", "provider", "records").rows():
        if provider:
            print(f"{source}\t{provider}\t{records} records")
        else:
            print(f"{source}\tunknown\t{reasons.get(source, 'no records')}")


# ---- the parser ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="usagenorm",
        description="Normalize, aggregate and price providers' usage exports into one canonical table.",
        epilog="Examples:\n  " + "\n  ".join(EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"usagenorm {_core.__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"Example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return p

    def format_file(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format-file",
            action="append",
            metavar="TOML",
            help="a format file to read beside the built-in formats (repeatable; see docs/formats.md)",
        )

    def sources(p: argparse.ArgumentParser, output: bool = True) -> None:
        p.add_argument(
            "sources",
            nargs="+",
            metavar="SOURCE",
            help="export files, folders or globs (JSON / NDJSON, .gz), or canonical .parquet / .csv / .ndjson from this tool",
        )
        p.add_argument("--provider", help="force a format instead of detecting it")
        p.add_argument("--period", help="VMware's aggregation period: HOURLY, DAILY or MONTHLY")
        p.add_argument(
            "--errors",
            choices=("raise", "collect"),
            default=None,
            help="raise: exit 1 on the first bad record (the default); collect: keep going (the default with --rejects)",
        )
        p.add_argument("--no-dedupe", action="store_true", help="keep duplicate records")
        p.add_argument("--rejects", help="write the rejected records here (implies --errors collect); empty when none")
        p.add_argument("--stats", help="write the accounting (per source and in total) here, as JSON")
        p.add_argument(
            "--max-rejects",
            type=max_rejects,
            metavar="N or N%",
            help="with --errors collect: fail (exit 1) when more records than this are rejected",
        )
        format_file(p)
        p.add_argument(
            "--storage-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="for s3://, gs://, az://, http(s):// sources and outputs, Polars' keys (aws_region=..., "
            "aws_endpoint_url=...); credentials otherwise come from the environment",
        )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary line")
        if output:
            p.add_argument(
                "-o",
                "--output",
                required=True,
                help="output file: .parquet, .csv, .ndjson, .jsonl, or - for CSV on stdout",
            )

    p = command("normalize", "Read exports into the canonical table.")
    sources(p)
    p.set_defaults(run=cmd_normalize)

    p = command("aggregate", "Split usage into time buckets and sum it per group.")
    sources(p)
    p.add_argument("--every", default="1d", help="bucket size: 1h, 6h, 1d, 1w, 1mo, 1q, 1y, or none (default 1d)")
    p.add_argument(
        "--by", action="append", help="group columns: --by provider --by project_id, or --by provider,project_id"
    )
    p.add_argument("--tz", default="UTC", help="time zone of the calendar (default UTC)")
    p.add_argument("--start", help="clip: ISO date or time")
    p.add_argument("--end", help="clip: ISO date or time")
    p.add_argument(
        "--as-of", dest="as_of", help="the end given to running records: an ISO date or instant, or now"
    )
    p.add_argument("--all-rows", action="store_true", help="include rows with billable false")
    p.set_defaults(run=cmd_aggregate)

    p = command("price", "Price usage with a rate card (exact decimals).")
    sources(p)
    p.add_argument("--rates", required=True, help="the rate card, .csv (or .parquet)")
    p.add_argument("--reconcile", help="also write rows whose provider cost differs from the rate card")
    p.add_argument("--overwrite", action="store_true", help="replace provider-reported costs")
    p.add_argument("--all-rows", action="store_true", help="price rows with billable false too")
    p.set_defaults(run=cmd_price)

    p = command("focus", "Write FOCUS 1.2 columns (priced with --rates when given).")
    sources(p)
    p.add_argument("--rates", help="a rate card to price with first")
    p.add_argument("--all-rows", action="store_true", help="price rows with billable false too")
    p.add_argument(
        "--as-of",
        dest="as_of",
        help="the end of running records' charges: an ISO instant, or now (the default, with a warning)",
    )
    p.add_argument(
        "--focus-version", default="1.2", choices=["1.2", "1.3"], help="the FOCUS version to write (default 1.2)"
    )
    p.set_defaults(run=cmd_focus)

    p = command("formats", "List the formats usagenorm reads and how each maps.")
    p.add_argument("--markdown", action="store_true", help="as Markdown tables")
    format_file(p)
    p.set_defaults(run=cmd_formats)

    p = command("detect", "Say which format each file is.")
    p.add_argument("sources", nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_detect)
    return ap


def _warn(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one plain line each, the way a command should print them, naming the
    command's flags rather than Python keywords."""
    text = str(message).replace(" (--as-of on the command line)", "").replace("pass as_of=", "pass --as-of")
    print(f"usagenorm: warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    warnings.showwarning = _warn
    try:
        # Outputs the run could not write fail now, not after reading everything.
        for option in getattr(args, "storage_option", []):
            key, eq, value = option.partition("=")
            if not eq or not key:
                raise UsageError(f"--storage-option {option}: expected KEY=VALUE")
            STORAGE_OPTIONS[key.strip()] = value
        for flag, attr in (("-o", "output"), ("--rejects", "rejects"), ("--reconcile", "reconcile")):
            check_output(getattr(args, attr, None), flag)
        check_output(getattr(args, "stats", None), "--stats", (".json",))
        args.run(args)
    except (NormalizeError, TooManyRejects) as e:
        print(f"usagenorm: {e}", file=sys.stderr)
        return 1
    except (
        UsageError,
        FileNotFoundError,
        IsADirectoryError,
        ColumnError,
        RateCardError,
        FormatError,
        ValueError,
        TypeError,
    ) as e:
        print(f"usagenorm: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("usagenorm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`usagenorm normalize DIR -o - | head -1`): as Unix tools do, stop
        # quietly with 128 + SIGPIPE; stdout goes to /dev/null so the exit flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return 0
