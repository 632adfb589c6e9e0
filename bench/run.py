"""usagenorm's benchmark: every contender on the same data, in one run, each in its own process.

    python bench/run.py                 # full size: 1,000,000 records per format, 10M-row aggregate and price
    python bench/run.py --scale ci      # a few seconds; run by the test suite so the benchmark cannot rot
    python bench/run.py --only normalize,aggregate --records 200000

Prints, per format and in total: seconds, MB/s, rows, peak RSS (MB), and the ratios against the
hand-written Polars (with JSON tags, and lean: without them) and pandas versions and against the
parse-only floor (the fastest of serde_json, simd-json and sonic-rs, rayon over files). Then 1 vs
2 threads, parallelism within one big file, the Python-dicts path, aggregate and price against
their Polars equivalents, and bounded memory: ``scan`` to Parquet and to a daily aggregate on ``copies``
copies of the exports (about 11 GB at full size) against the eager calls. ``--json FILE`` writes
the numbers too.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import usagenorm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORMATS = tuple(usagenorm.formats()["provider"].unique(maintain_order=True))
SCALES = {
    "full": {
        "records": 1_000_000,
        "big": 500_000,
        "ndjson": 2_500_000,
        "dicts": 100_000,
        "rows": 10_000_000,
        "copies": 4,
        "runs": 3,
    },
    "ci": {"records": 3_000, "big": 5_000, "ndjson": 5_000, "dicts": 2_000, "rows": 50_000, "copies": 2, "runs": 1},
}


#: The JSON parsers of the parse floor (src/bin/parse_floor.rs); the floor is the fastest.
PARSERS = ("serde_json", "simd_json", "sonic_rs")


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over from the parent through fork and exec, so a child would report the runner's
    peak as its own when that is higher."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- one measurement, in a child process ------------------------------------------------------


def files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".ndjson"))


def warm(paths: list[Path]) -> None:
    """Reads files once so that every contender finds them in the page cache, not only the
    ones measured after the first (the machine may have dropped them since generating)."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def child(kind: str, arg: str, extra: str) -> dict:
    sys.path.insert(0, str(HERE))
    import usagenorm as un

    if kind in ("usagenorm", "polars", "polars_lean", "pandas"):
        fmt, files = arg, files_of(Path(extra))
        if kind == "usagenorm":
            base = peak_rss_mb()  # the interpreter with polars and usagenorm imported
            t = time.perf_counter()
            df = un.normalize(files)
            seconds = time.perf_counter() - t
            # The frame's own memory: Polars' estimated_size leaves out the 16-byte string views.
            frame = un._core._frame_bytes(df) / 2**20
            return {"seconds": seconds, "rows": df.height, "frame_mb": frame, "base_mb": base, "chunks": df.n_chunks()}
        else:
            import baselines

            fn = {"polars": baselines.POLARS, "polars_lean": baselines.POLARS_LEAN, "pandas": baselines.PANDAS}[kind][fmt]
            t = time.perf_counter()
            rows = len(fn(files))
        return {"seconds": time.perf_counter() - t, "rows": rows}
    if kind == "twin":
        # The same files read by the built-in Rust format and by its twin format file, in
        # alternating runs in one process after a warm-up of each (steady state, the same heap).
        from usagenorm import _formats

        fmt, runs, files = arg, int(extra.split(":")[0]), files_of(Path(extra.split(":", 1)[1]))
        twin = un.Format.from_file(Path(un.__file__).parent / "formats" / "twins" / f"{fmt}.toml")
        times: dict = {"rust": [], "file": []}
        rows = set()
        for i in range(runs + 1):
            for who in ("rust", "file"):
                with _formats.replacing(twin) if who == "file" else contextlib.nullcontext():
                    t = time.perf_counter()
                    rows.add(un.normalize(files).height)
                    if i:
                        times[who].append(time.perf_counter() - t)
        assert len(rows) == 1, rows
        return {**times, "rows": rows.pop()}
    if kind == "dicts":
        docs = [json.loads(p.read_text()) for p in files_of(Path(extra))]
        records = [r for d in docs for r in d["records"]]
        # Best of three runs each, alternating, so neither path pays the process's warm-up alone.
        via_list = via_bytes = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            rows = un.normalize(records).height
            via_list = min(via_list, time.perf_counter() - t)
            t = time.perf_counter()
            rows_bytes = un.normalize(json.dumps(records).encode()).height
            via_bytes = min(via_bytes, time.perf_counter() - t)
        assert rows == rows_bytes
        # A small call: one page (1,000 records) as a file and as the dict an API call returned.
        page_file = page_dict = float("inf")
        for _ in range(20):
            t = time.perf_counter()
            un.normalize(files_of(Path(extra))[0])
            page_file = min(page_file, time.perf_counter() - t)
            t = time.perf_counter()
            un.normalize(docs[0])
            page_dict = min(page_dict, time.perf_counter() - t)
        return {
            "seconds": via_list,
            "dumps_plus_bytes": via_bytes,
            "rows": rows,
            "page_file": page_file,
            "page_dict": page_dict,
            "page_records": len(docs[0]["records"]),
        }
    if kind == "stream":
        return stream_child(arg, Path(extra))
    if kind in ("aggregate", "aggregate_polars", "price", "price_polars"):
        import workloads

        return workloads.run(kind, int(arg))
    raise SystemExit(f"unknown measurement {kind}")


#: Issue 21's projection: the columns a cost query reads.
SEVEN = ["provider", "metric", "usage_start", "usage_end", "quantity", "unit", "cost"]


def stream_child(how: str, data: Path) -> dict:
    """One streaming contender over every export under ``data``: the eager call (the whole
    table in memory) or the lazy one (``scan``), writing Parquet or aggregating per day."""
    import polars as pl

    import usagenorm as un

    out = data.parent / f"{data.name}-{how}.parquet"
    how = how.removesuffix("_decay")
    agg: dict = {"every": "1d", "by": ["provider", "metric"]}
    base = peak_rss_mb()
    frame_mb = None
    t = time.perf_counter()
    if how == "eager_sink":
        df = un.normalize(data, dedupe=False)
        df.write_parquet(out)
        rows = df.height
        del df
    elif how == "lazy_sink":
        un.scan(data, dedupe=False).sink_parquet(out)
    elif how == "lazy_sink_dedupe":
        streamed_at_any_size(data)
        un.scan(data).sink_parquet(out)
    elif how == "lazy_select":
        # Issue 21's projection target: seven columns, against the parse floor.
        streamed_at_any_size(data)
        result = un.scan(data).select(SEVEN).collect()
    elif how == "lazy_select_nodedupe":
        # The same projection in one pass: the core stores only the columns selected.
        result = un.scan(data, dedupe=False).select(SEVEN).collect()
    elif how == "eager_aggregate":
        result = un.aggregate(un.normalize(data, dedupe=False), **agg)
    elif how == "lazy_aggregate":
        result = un.aggregate(un.scan(data, dedupe=False), **agg).collect()
    elif how == "lazy_aggregate_dedupe":
        streamed_at_any_size(data)
        result = un.aggregate(un.scan(data), **agg).collect()
    else:
        raise SystemExit(f"unknown streaming contender {how}")
    seconds = time.perf_counter() - t
    if how.startswith("lazy_select"):
        rows, digest = result.height, None
        frame_mb = un._core._frame_bytes(result) / 2**20
    elif "aggregate" in how:
        # The sums, so that the runner can check that eager and lazy agree exactly.
        rows = result.height
        digest = int(result.sort(result.columns).hash_rows().sum())
    else:
        rows = pl.scan_parquet(out).select(pl.len()).collect().item()
        digest = None
        out.unlink()
    return {"seconds": seconds, "rows": rows, "digest": digest, "base_mb": base, "frame_mb": frame_mb}


def streamed_at_any_size(data: Path) -> None:
    """Below the size where ``scan`` streams its dedupe (the CI-sized run), its thresholds
    scale down so that the same two-pass path runs, over about 16 groups."""
    from usagenorm import _scan

    size = sum(p.stat().st_size for p in files_of(data))
    if size <= _scan.ONE_CALL_BYTES:
        _scan.ONE_CALL_BYTES = 0
        _scan.GROUP_BYTES = max(size // 16, 1)


#: The allocator setting of the ``*_decay`` contenders.
DECAY = "dirty_decay_ms:100,muzzy_decay_ms:0"


def measure(kind: str, arg: str = "", extra: str = "", threads: int | None = None) -> dict:
    env = dict(os.environ)
    env.pop("RAYON_NUM_THREADS", None)
    env.pop("POLARS_MAX_THREADS", None)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    if arg.endswith("_decay"):
        # Polars' jemalloc returning freed pages to the system within 0.1 s (README "Lazy").
        env["_RJEM_MALLOC_CONF"] = DECAY
    cmd = [sys.executable, __file__, "--child", kind, arg, extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {arg} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor(path: Path, target: Path) -> dict:
    exe = target / "release" / "parse_floor"
    out = subprocess.run([str(exe), str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def write_floor(mb: float, target: Path) -> float:
    """The least time in which any program puts a frame of ``mb`` MiB in a fresh process's
    memory (``parse_floor --write``: the kernel faults in and zeroes every page)."""
    exe = target / "release" / "parse_floor"
    out = subprocess.run([str(exe), "--write", str(max(round(mb), 1))], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["seconds"]


def build_floor() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "usagenorm" / "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--features", "floor", "--bin", "parse_floor"],
        cwd=ROOT,
        check=True,
        env=dict(os.environ, CARGO_TARGET_DIR=str(target)),
    )
    return target


def generate(data: Path, records: int, layout: str, formats: str) -> None:
    marker = data / f".done-{records}-{layout}-{formats}"
    if marker.exists():
        return
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate.py"),
            "--records",
            str(records),
            "--out",
            str(data),
            "--layout",
            layout,
            "--formats",
            formats,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    marker.touch()


# ---- the report -------------------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: (
        "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    )
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]
    )


def run_normalize(args, scale, target, report) -> None:
    data = args.data / "pages"
    generate(data, scale["records"], "pages", ",".join(FORMATS))
    rows, totals = [], {"un": 0.0, "pl": 0.0, "ln": 0.0, "pd": 0.0, "fl": 0.0, "wr": 0.0, "mb": 0.0, "rows": 0}
    parsers: dict[str, float] = {}
    floors = []
    for fmt in FORMATS:
        path = data / fmt
        mb = sum(f.stat().st_size for f in files_of(path)) / 1e6
        warm(files_of(path))
        un_ = measure("usagenorm", fmt, str(path))
        pl_ = measure("polars", fmt, str(path))
        ln = measure("polars_lean", fmt, str(path))
        pd_ = (
            {"seconds": float("nan"), "rows": "-", "peak_rss_mb": float("nan")}
            if args.skip_pandas
            else measure("pandas", fmt, str(path))
        )
        fl = floor(path, target)
        fl["write"] = write_floor(un_["frame_mb"], target)
        for name in PARSERS:
            parsers[name] = parsers.get(name, 0.0) + fl[name]
        floors.append(f"{fmt} {fl['parser']}")
        assert un_["rows"] == pl_["rows"] == ln["rows"], f"{fmt}: usagenorm {un_['rows']} rows, polars {pl_['rows']}"
        rows.append(
            [
                fmt,
                f"{mb:.0f}",
                un_["rows"],
                f"{un_['seconds']:.3f}",
                f"{mb / un_['seconds']:.0f}",
                f"{un_['peak_rss_mb']:.0f}",
                f"{un_['frame_mb']:.0f}",
                f"{pl_['seconds']:.3f}",
                f"{pl_['peak_rss_mb']:.0f}",
                f"{ln['seconds']:.3f}",
                f"{pd_['seconds']:.2f}",
                f"{pd_['peak_rss_mb']:.0f}",
                f"{fl['seconds']:.3f}",
                f"{fl['write']:.3f}",
                f"{pl_['seconds'] / un_['seconds']:.1f}×",
                f"{ln['seconds'] / un_['seconds']:.1f}×",
                f"{pd_['seconds'] / un_['seconds']:.1f}×",
                f"{un_['seconds'] / fl['seconds']:.1f}×",
                f"{(fl['seconds'] + fl['write']) / fl['seconds']:.1f}×",
            ]
        )
        for k, v in (
            ("un", un_["seconds"]),
            ("pl", pl_["seconds"]),
            ("ln", ln["seconds"]),
            ("pd", pd_["seconds"]),
            ("fl", fl["seconds"]),
            ("wr", fl["write"]),
            ("mb", mb),
        ):
            totals[k] += v
        totals["rows"] += un_["rows"]
        report["normalize"][fmt] = {
            "mb": mb,
            "usagenorm": un_,
            "polars": pl_,
            "polars_lean": ln,
            "pandas": pd_,
            "floor": fl,
        }
    t = totals
    rows.append(
        [
            "total",
            f"{t['mb']:.0f}",
            t["rows"],
            f"{t['un']:.3f}",
            f"{t['mb'] / t['un']:.0f}",
            "",
            "",
            f"{t['pl']:.3f}",
            "",
            f"{t['ln']:.3f}",
            f"{t['pd']:.2f}",
            "",
            f"{t['fl']:.3f}",
            f"{t['wr']:.3f}",
            f"{t['pl'] / t['un']:.1f}×",
            f"{t['ln'] / t['un']:.1f}×",
            f"{t['pd'] / t['un']:.1f}×",
            f"{t['un'] / t['fl']:.1f}×",
            f"{(t['fl'] + t['wr']) / t['fl']:.1f}×",
        ]
    )
    print(f"\n## normalize: {scale['records']:,} records per format, pages of 1,000\n")
    report["parsers"] = parsers
    print(
        table(
            [
                "format",
                "MB",
                "rows",
                "usagenorm s",
                "MB/s",
                "RSS MB",
                "frame MB",
                "polars s",
                "RSS MB",
                "lean polars s",
                "pandas s",
                "RSS MB",
                "floor s",
                "write s",
                "polars/un",
                "lean/un",
                "pandas/un",
                "un/floor",
                "(floor+write)/floor",
            ],
            rows,
        )
    )

    print(
        "\nparse floor, all formats (best of 2 runs each): "
        + ", ".join(f"{name} {secs:.3f} s" for name, secs in parsers.items())
        + f"; the fastest per format: {', '.join(floors)}"
    )

    warm(files_of(data))
    one = measure("usagenorm", "all", str(data), threads=1)
    two = measure("usagenorm", "all", str(data), threads=2)
    report["threads"] = {"1": one, "2": two}
    print(
        f"\nthreads: 1 → {one['seconds']:.3f} s, 2 → {two['seconds']:.3f} s: {one['seconds'] / two['seconds']:.2f}× (all formats)"
    )

    big = args.data / "bigpage"
    generate(big, scale["big"], "bigpage", "exabits")
    nd = args.data / "ndjson"
    generate(nd, scale["ndjson"], "ndjson", "gitpod")
    for name, path in (
        (f"one JSON page of {scale['big']:,} exabits records", big / "exabits"),
        (f"one NDJSON file of {scale['ndjson']:,} gitpod records", nd / "gitpod"),
    ):
        mb = sum(f.stat().st_size for f in files_of(path)) / 1e6
        # Best of three fresh processes per thread count, alternating: a ratio of two single
        # runs moves by ±10% on a noisy machine. Peak memory: the highest of the runs.
        runs: dict[int, list[dict]] = {1: [], 2: []}
        warm(files_of(path))
        for _ in range(3):
            for t in (1, 2):
                runs[t].append(measure("usagenorm", "x", str(path), threads=t))
        a, b = (
            dict(min(runs[t], key=lambda r: r["seconds"]), peak_rss_mb=max(r["peak_rss_mb"] for r in runs[t]))
            for t in (1, 2)
        )
        fl = floor(path, target)
        report.setdefault("single_file", {})[name] = {"mb": mb, "1": a, "2": b, "floor": fl}
        print(
            f"{name} ({mb:.0f} MB): 1 thread {a['seconds']:.3f} s, 2 threads {b['seconds']:.3f} s "
            f"({a['seconds'] / b['seconds']:.2f}×), floor {fl['seconds']:.3f} s, peak RSS {b['peak_rss_mb']:.0f} MB "
            f"= interpreter {b['base_mb']:.0f} + result frame {b['frame_mb']:.0f} "
            f"+ working set {b['peak_rss_mb'] - b['base_mb'] - b['frame_mb']:.0f}"
        )

    # The working set should not grow with the input: the first quarter and half of the NDJSON
    # file against the whole of it (2 threads).
    whole = nd / "gitpod" / "all.ndjson"
    with whole.open("rb") as f:
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    sizes = {}
    for part, n in (("1/4", total // 4), ("1/2", total // 2), ("1", total)):
        path = whole if n == total else args.data / "ndjson-part" / part.replace("/", "-") / "part.ndjson"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with whole.open("rb") as src, path.open("wb") as dst:
                dst.writelines(itertools.islice(src, n))
        m = measure("usagenorm", "x", str(path.parent), threads=2)
        sizes[part] = m
        print(
            f"NDJSON {part} ({m['rows']:,} rows): peak {m['peak_rss_mb']:.0f} MB = interpreter {m['base_mb']:.0f} "
            f"+ frame {m['frame_mb']:.0f} + working set {m['peak_rss_mb'] - m['base_mb'] - m['frame_mb']:.0f}"
        )
    report["memory_by_size"] = sizes

    dicts = args.data / "dicts"
    generate(dicts, scale["dicts"], "pages", "gitpod")
    d = measure("dicts", "", str(dicts / "gitpod"))
    report["dicts"] = d
    print(
        f"{scale['dicts']:,} Python dicts: normalize(list) {d['seconds']:.3f} s vs json.dumps + bytes {d['dumps_plus_bytes']:.3f} s"
    )
    print(
        f"one page of {d['page_records']:,} records (a small call, best of 20): "
        f"{d['page_file'] * 1e3:.1f} ms from its file, {d['page_dict'] * 1e3:.1f} ms from its dict"
    )


def run_twins(args, scale, report) -> None:
    """Format files against their hand-written Rust twins on the same generated pages: RUNS
    alternating runs each in one process, median and spread."""
    runs = 7
    data = args.data / "pages"
    twins = ["gitpod", "consumption_log"]
    generate(data, scale["records"], "pages", ",".join(twins))
    rows = []
    for fmt in twins:
        path = data / fmt
        warm(files_of(path))
        m = measure("twin", fmt, f"{runs}:{path}")
        r, f = sorted(m["rust"]), sorted(m["file"])
        med_r, med_f = r[runs // 2], f[runs // 2]
        rows.append(
            [
                fmt,
                m["rows"],
                f"{med_r:.3f} ({r[0]:.3f}–{r[-1]:.3f})",
                f"{med_f:.3f} ({f[0]:.3f}–{f[-1]:.3f})",
                f"{(med_f / med_r - 1) * 100:+.0f}%",
            ]
        )
        report.setdefault("twins", {})[fmt] = {"rust": r, "file": f}
    print(
        f"\n## format files against their Rust twins: {scale['records']:,} records, "
        f"median of {runs} alternating runs in one process\n"
    )
    print(table(["format", "rows", "Rust s (min–max)", "format file s (min–max)", "file vs Rust"], rows))


def run_stream(args, scale, report) -> None:
    """Bounded memory at any size: the exports of every format, generated once and read as
    ``copies`` copies (hard links, so distinct sources with the same bytes, read with
    dedupe=False), through ``scan`` to Parquet and to a daily aggregate; and deduplicated in a
    stream (the default dedupe=True: every copy after the first is dropped). The eager calls
    (``normalize``, then ``write_parquet`` / ``aggregate``) run on one copy, alternating with the
    lazy ones on that copy; the lazy ones then run on all copies."""
    base = args.data / "stream" / "base"
    generate(base, scale["records"], "pages", ",".join(FORMATS))
    many = args.data / "stream" / f"copies-{scale['copies']}"
    if not (many / ".done").exists():
        import shutil

        shutil.rmtree(many, ignore_errors=True)
        for c in range(scale["copies"]):
            shutil.copytree(base, many / f"copy{c}", copy_function=os.link, ignore=shutil.ignore_patterns(".done-*"))
        (many / ".done").touch()
    one = many / "copy0"
    size = {d: sum(p.stat().st_size for p in files_of(d)) / 1e6 for d in (one, many)}
    warm(files_of(one))
    runs = scale["runs"]
    got: dict = {}
    for _ in range(runs):
        for how in ("eager_sink", "lazy_sink", "eager_aggregate", "lazy_aggregate"):
            got.setdefault((how, "one"), []).append(measure("stream", how, str(one)))
    got[("lazy_sink_dedupe", "one")] = [measure("stream", "lazy_sink_dedupe", str(one))]
    got[("lazy_aggregate_dedupe", "one")] = [measure("stream", "lazy_aggregate_dedupe", str(one))]
    got[("lazy_sink_dedupe_decay", "one")] = [measure("stream", "lazy_sink_dedupe_decay", str(one))]
    got[("lazy_select", "one")] = [measure("stream", "lazy_select", str(one))]
    got[("lazy_select_nodedupe", "one")] = [measure("stream", "lazy_select_nodedupe", str(one))]
    target = build_floor()
    fl = floor(one, target)
    warm(files_of(many))
    for how in ("lazy_sink", "lazy_aggregate", "lazy_sink_dedupe", "lazy_aggregate_dedupe", "lazy_sink_dedupe_decay"):
        got[(how, "all")] = [measure("stream", how, str(many))]
    for (a, b) in (("eager_sink", "lazy_sink"), ("eager_aggregate", "lazy_aggregate")):
        answers = {(m["rows"], m["digest"]) for m in got[(a, "one")] + got[(b, "one")]}
        assert len(answers) == 1, f"{a} and {b} disagree: {answers}"
    assert got[("lazy_aggregate", "all")][0]["rows"] == got[("lazy_aggregate", "one")][0]["rows"]
    # The copies are the first one's records again (content leaves out the source): a
    # deduplicating scan of them all keeps one copy's rows.
    for how in ("lazy_sink_dedupe", "lazy_sink_dedupe_decay"):
        assert got[(how, "all")][0]["rows"] == got[("lazy_sink_dedupe", "one")][0]["rows"], how
    # One copy holds no duplicates, so its aggregate is every deduplicated aggregate's.
    for where in ("one", "all"):
        deduped = got[("lazy_aggregate_dedupe", where)][0]
        plain = got[("lazy_aggregate", "one")][0]
        assert (deduped["rows"], deduped["digest"]) == (plain["rows"], plain["digest"]), where
    rows = []
    for (how, where), ms in got.items():
        secs = sorted(m["seconds"] for m in ms)
        med = secs[len(secs) // 2]
        spread = f" ({secs[0]:.2f}–{secs[-1]:.2f})" if len(secs) > 1 else ""
        mb = size[one if where == "one" else many]
        rss = max(m["peak_rss_mb"] for m in ms)
        label = f"{how} ({'one copy' if where == 'one' else 'all copies'})"
        rows.append([label, f"{mb:,.0f}", f"{med:.2f}{spread}", f"{mb / med:.0f}", f"{rss:,.0f}", ms[0]["rows"]])
        report.setdefault("stream", {})[f"{how}/{where}"] = {"mb": mb, "seconds": secs, "peak_rss_mb": rss}
    print(
        f"\n## bounded memory: {scale['records']:,} records per format ({size[one]:,.0f} MB), "
        f"and {scale['copies']} copies ({size[many]:,.0f} MB); median of {runs} alternating runs "
        "(one run on all copies)\n"
    )
    print(table(["contender", "input MB", "seconds (min–max)", "MB/s", "peak RSS MB", "rows"], rows))
    report["stream"]["floor"] = fl
    for how, what in (("lazy_select", "scan(dir)"), ("lazy_select_nodedupe", "scan(dir, dedupe=False)")):
        select, frame_mb = got[(how, "one")][0]["seconds"], got[(how, "one")][0]["frame_mb"]
        write = write_floor(frame_mb, target)
        report["stream"][f"{how}/one"] |= {"frame_mb": frame_mb, "write_floor": write}
        print(
            f"\nprojection ({what}.select(7 columns).collect(), one copy): {select:.2f} s, "
            f"{select / fl['seconds']:.1f}× the parse floor ({fl['seconds']:.2f} s, {fl['parser']}); "
            f"its frame ({frame_mb:,.0f} MB) written into fresh memory takes {write:.2f} s, so the "
            f"floor and that write alone are {(fl['seconds'] + write) / fl['seconds']:.2f}× the floor"
        )


def run_workloads(args, scale, report) -> None:
    n = scale["rows"]
    for name, ours, theirs, what in (
        (
            "aggregate",
            "aggregate",
            "aggregate_polars",
            f"{n:,} canonical rows over 90 days, daily buckets, 2 group keys",
        ),
        ("price", "price", "price_polars", f"{n:,} rows, a 1,000-row rate card"),
    ):
        a, b = measure(ours, str(n)), measure(theirs, str(n))
        report[name] = {"usagenorm": a, "polars": b}
        print(f"\n## {name}: {what}\n")
        print(
            table(
                ["", "seconds", "peak RSS MB", "output rows"],
                [
                    ["usagenorm", f"{a['seconds']:.3f}", f"{a['peak_rss_mb']:.0f}", a["rows"]],
                    ["polars (hand-written)", f"{b['seconds']:.3f}", f"{b['peak_rss_mb']:.0f}", b["rows"]],
                    [
                        "polars / usagenorm",
                        f"{b['seconds'] / a['seconds']:.2f}×",
                        f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}×",
                        "",
                    ],
                ],
            )
        )


def main() -> None:
    global FORMATS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--scale", choices=SCALES, default="full")
    ap.add_argument("--records", type=int, help="records per format (overrides the scale)")
    ap.add_argument("--rows", type=int, help="rows for aggregate and price (overrides the scale)")
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--only", default="normalize,twins,workloads,stream")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child:
        result = child(*args.child)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    sys.path.insert(0, str(HERE))
    import baselines
    import generate as gen

    # A format without a generator and baselines is reported as not measured, by name.
    missing = [f for f in FORMATS if f not in gen.RECORD or f not in baselines.POLARS or f not in baselines.PANDAS]
    FORMATS = tuple(f for f in FORMATS if f not in missing)
    scale = dict(SCALES[args.scale])
    if args.records:
        scale["records"] = args.records
    if args.rows:
        scale["rows"] = args.rows
    args.data = args.data / args.scale
    import polars

    import usagenorm

    print(f"# usagenorm {usagenorm.__version__} benchmark ({args.scale})")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
        f"polars {polars.__version__}"
    )
    report: dict = {"scale": args.scale, "normalize": {}, "not_measured": missing}
    if missing:
        print(f"not measured (no generator or baseline in bench/): {', '.join(missing)}")
    only = args.only.split(",")
    if "normalize" in only:
        run_normalize(args, scale, build_floor(), report)
    if "twins" in only:
        run_twins(args, scale, report)
    if "workloads" in only:
        run_workloads(args, scale, report)
    if "stream" in only:
        run_stream(args, scale, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
