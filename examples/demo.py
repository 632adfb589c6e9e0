"""Normalize the bundled sample exports (one per provider format) and print what came out.

Usage: python examples/demo.py [PATH ...]   (default: examples/exports)
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

import usagenorm as un


def main(paths: list[str]) -> None:
    sources = paths or [str(Path(__file__).parent / "exports")]
    out = un.normalize(sources, errors="collect")
    with pl.Config(tbl_cols=12, tbl_rows=40, fmt_str_lengths=40, tbl_width_chars=200):
        print("Canonical rows:")
        print(
            out.records.select(
                "provider",
                "metric",
                "charge_type",
                "usage_start",
                "usage_end",
                "quantity",
                "unit",
                "cost",
                "currency",
                "billable",
                "resource_id",
            )
        )
        print("\nPer-source accounting (records = accepted + rejected + duplicates + superseded):")
        print(out.stats)
        print(f"\nRejected records: {out.rejected.height}")


if __name__ == "__main__":
    main(sys.argv[1:])
