"""Spark local[2] against one process, on the same generated exports (issue 23).

    python bench/spark_bench.py --records 100000 --runs 3

Generates the exports (every first-wave format), then alternates the contenders ``--runs``
times and prints the median and the spread of each:
- ``one process``: ``usagenorm.normalize(dir, errors="collect")`` (2 threads);
- ``spark local[2]``: ``usagenorm.spark.normalize(spark, dir)`` with its records counted and the
  accounting collected (both stages run: read, dedupe shuffle), the session started beforehand;
- the same for ``aggregate`` (daily, by provider and project_id) on the normalized records.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records per format")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from pyspark.sql import SparkSession

    import usagenorm as un
    from usagenorm import spark as uns

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        gen = Path(__file__).resolve().parent / "generate.py"
        subprocess.run([sys.executable, str(gen), "--records", str(args.records), "--out", str(data)], check=True)
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
        os.environ["PYSPARK_PYTHON"] = sys.executable
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "4g")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        options = {"every": "1d", "by": ["provider", "project_id"], "as_of": "2030-01-01"}

        def one_normalize() -> int:
            return un.normalize(data, errors="collect").records.height

        def spark_normalize() -> int:
            out = uns.normalize(spark, data)
            n = out.records.count()
            out.stats.collect()
            return n

        def spark_normalize_no_dedupe() -> int:
            out = uns.normalize(spark, data, dedupe=False)
            n = out.records.count()
            out.stats.collect()
            return n

        records = un.normalize(data, errors="collect").records
        spark_records = uns.normalize(spark, data).records.persist()
        spark_records.count()

        def one_aggregate() -> int:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return un.aggregate(records, **options).height

        def spark_aggregate() -> int:
            return uns.aggregate(spark_records, **options).count()

        contenders = {
            "normalize, one process": one_normalize,
            "normalize, spark local[2]": spark_normalize,
            "  the same, dedupe=False": spark_normalize_no_dedupe,
            "aggregate, one process": one_aggregate,
            "aggregate, spark local[2]": spark_aggregate,
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        rows: dict[str, int] = {}
        for _ in range(args.runs):
            for name, fn in contenders.items():
                t = time.perf_counter()
                rows[name] = fn()
                times[name].append(time.perf_counter() - t)
        spark.stop()
    print(f"{args.records:,} records per format, {size / 1e6:,.0f} MB of exports, {args.runs} alternating runs")
    for name, ts in times.items():
        print(
            f"{name:28s} median {statistics.median(ts):6.2f} s  (min {min(ts):.2f}, max {max(ts):.2f})"
            f"  {rows[name]:,} rows"
        )


if __name__ == "__main__":
    main()
