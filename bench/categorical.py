"""Issue 22: would Categorical low-cardinality columns pay? Measured on the canonical frame of
the benchmark data (python bench/categorical.py vmware gitpod openai, after bench/run.py has
generated bench/data/full/pages)."""

import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

import usagenorm as un

LOW = ["provider", "resource_type", "metric", "sku", "charge_type", "unit", "currency", "status", "source"]
for fmt in sys.argv[1:]:
    df = un.normalize(str(Path(__file__).resolve().parent / "data" / "full" / "pages" / fmt))
    low = list(LOW)
    t = time.perf_counter()
    cat = df.with_columns(pl.col(low).cast(pl.Categorical))
    tc = time.perf_counter() - t
    a, b = df.estimated_size(), cat.estimated_size()
    lowa = df.select(low).estimated_size()
    lowb = cat.select(low).estimated_size()
    card = {c: df[c].n_unique() for c in low}
    print(
        f"{fmt}: rows {df.height:,}; frame {a / 1e6:.0f} MB -> {b / 1e6:.0f} MB ({b / a:.2f}); the {len(low)} columns {lowa / 1e6:.0f} -> {lowb / 1e6:.0f} MB; tags {df['tags'].estimated_size() / 1e6:.0f} MB; cast {tc:.2f} s; cardinality {card}"
    )
    # string semantics
    v = df["metric"][0]
    assert cat.filter(pl.col("metric") == v).height == df.filter(pl.col("metric") == v).height
    lookup = pl.DataFrame({"metric": [v], "x": [1]})
    try:
        j = cat.join(lookup, on="metric").height
        jn = df.join(lookup, on="metric").height
        print("  join Categorical with String:", "ok" if j == jn else f"differs {j} {jn}")
    except pl.exceptions.PolarsError as e:
        print("  join Categorical with String: error:", type(e).__name__, str(e)[:120])
    for name, frame in (("string", df), ("categorical", cat)):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.parquet")
            t = time.perf_counter()
            frame.write_parquet(p)
            w = time.perf_counter() - t
            t = time.perf_counter()
            back = pl.read_parquet(p)
            r = time.perf_counter() - t
            g = time.perf_counter()
            frame.group_by("metric", "unit").agg(pl.col("quantity").sum())
            g = time.perf_counter() - g
            print(
                f"  {name}: parquet {os.path.getsize(p) / 1e6:.0f} MB, write {w:.2f} s, read {r:.2f} s, back as {back['metric'].dtype}; group_by(metric, unit) {g:.3f} s"
            )
