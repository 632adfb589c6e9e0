"""FOCUS conformance, judged by the FinOps Foundation's own validator.

    python tests/conformance/focus_conformance.py --validator-python .venv-focus/bin/python

Writes ``to_focus`` output of every format's sample (priced and unpriced), of generated
benchmark data and of ``usagenorm focus`` (Parquet and CSV), runs the official validator
(``focus-validator`` with its bundled FOCUS 1.2 model, offline) on each, and fails on any rule
that fails under the applicability criteria usagenorm's output claims. Its exit code says
nothing (0 despite failures): the runner reads its result object.

Where the validator is wrong, this says so and checks the rule's intent in ``check_focus``:
- It applies a rule when ANY of the rule's applicability criteria is claimed (the model means
  all of them). Failures of rules whose criteria are not all claimed are reported, not failed.
- It writes "ChargeClass is not Correction" as ``ChargeClass IS NOT NULL AND ...``, so rules
  conditioned on it never see a row with a null ChargeClass (every usagenorm row):
  PricingQuantity-C-005-C, ListUnitPrice-C-005-C, SkuId-C-005-C and their kin pass there
  whatever the data; ``check_focus`` checks them on every row.

Then deliberately broken frames: each breaks one rule; the validator and ``check_focus`` must
name the same rules (the validator's failures on rules it hides are the known exceptions above).
Also: the shipped rule model is the validator's (derived again and compared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path

import polars as pl

import usagenorm as un
from usagenorm import _focus_rules

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLES = ROOT / "examples" / "exports"
AS_OF = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
RATES = un.RateCard.from_records(
    [
        {"provider": "gitpod", "unit_price": "0.36", "unit": "hour"},
        {"provider": "suger", "metric": "api_calls", "unit_price": "0.001"},
        {"provider": "suger", "metric": "api_calls", "unit_price": "0.0005", "tier_from": 1000},
        {"provider": "suger", "unit_price": "0.5"},
        {"provider": "vmware", "charge_type": "committed", "unit_price": "2"},
        {"provider": "vmware", "charge_type": "overage", "unit_price": "3"},
        {"provider": "consumption_log", "unit_price": "0.01", "unit": "minute"},
        {"provider": "exabits", "unit_price": "1.25"},
    ]
)


@cache
def _parents() -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {}
    for rid, rule in _focus_rules.model()["rules"].items():
        for ref in _focus_rules._refs(rule["requirement"]) or []:
            parents.setdefault(ref, []).append(rid)
    return parents


def applies(rule_id: str, claimed: set[str]) -> bool:
    """Whether all of the rule's criteria, and its parents', are claimed (the model's meaning)."""
    rules, parents = _focus_rules.model()["rules"], _parents()
    seen: set[str] = set()

    def ok(rid: str) -> bool:
        if rid in seen:
            return True
        seen.add(rid)
        rule = rules.get(rid)
        if rule is None or not set(rule["criteria"]) <= claimed:
            return False
        ups = parents.get(rid, [])
        return not ups or any(ok(p) for p in ups)

    return ok(rule_id)


def is_leaf(rule_id: str) -> bool:
    rule = _focus_rules.model()["rules"].get(rule_id)
    return rule is not None and _focus_rules._refs(rule["requirement"]) is None


def lineage(rule_id: str):
    """The rule and every rule above it (the rules whose requirement refers to it), once each."""
    rules, parents = _focus_rules.model()["rules"], _parents()
    todo, seen = [rule_id], set()
    while todo:
        rid = todo.pop()
        if rid in seen or rid not in rules:
            continue
        seen.add(rid)
        yield rid, rules[rid]
        todo.extend(parents.get(rid, []))


def validator_error(rule_id: str, columns: set[str], result: dict) -> str | None:
    """Why a failure the validator reports is the validator's, not the data's (or None)."""
    if rule_id in _focus_rules.CORRECTED:
        return "the model's condition contradicts the rule's text; check_focus checks the text"
    for rid, rule in lineage(rule_id):
        absent = [c for c in _focus_rules._columns(rule["condition"] or {}) if c not in columns]
        if absent:
            return f"a condition names {', '.join(absent)}, absent (no such data): the validator's SQL fails"
        if rid != rule_id and rule["requirement"].get("CheckFunction") == "OR" and result.get(rid, {}).get("ok"):
            return f"one of the ways of {rid} (an OR) holds"
    return None


def why_missed(rule_id: str, result: dict, frame: pl.DataFrame) -> str:
    """Why the validator does not report a rule a broken frame breaks."""
    rules = _focus_rules.model()["rules"]
    status = result.get(rule_id)
    if status is None:
        return "it does not evaluate the rule"
    if status["skipped"]:
        return f"it skips the rule ({status['reason'][:80]})"
    if rule_id in _focus_rules.CORRECTED:
        return "the model's condition says the opposite of the rule's text"
    for _, rule in lineage(rule_id):
        for check in _flat(rule["condition"] or {}):
            col, value = check.get("ColumnName"), check.get("Value")
            if col is not None and col not in frame.columns:
                return f"a condition names {col}, absent: its SQL fails"
            if check.get("CheckFunction") == "CheckNotValue" and value is not None and frame[col].null_count():
                return f"its SQL for '{col} is not {value}' is false where {col} is null"
    if rules[rule_id]["requirement"].get("CheckFunction") == "FormatKeyValue":
        return "its key-value check looks at the JSON text only, not the values' types"
    return f"it passes the rule ({status['reason'][:80]})"


def _flat(check: dict) -> list[dict]:
    return [check] + [c for i in check.get("Items", []) for c in _flat(i)]


def breaks() -> dict[str, tuple[set[str], pl.DataFrame]]:
    """Frames that each break rules, with the rules they break."""
    good = un.to_focus(un.price(un.normalize(EXAMPLES / "gitpod.json"), RATES), as_of=AS_OF)
    w = good.with_columns
    lit = pl.lit
    return {
        "BilledCost-absent": ({"CostAndUsage-D-006-M", "BilledCost-C-004-M"}, good.drop("BilledCost")),
        "BillingAccountId-null": (
            {"BillingAccountId-C-001-M"},
            w(lit(None, pl.String).alias("BillingAccountId")),
        ),
        "ChargeCategory-value": (
            {"ChargeCategory-C-003-M", "ConsumedQuantity-C-004-C"},
            w(lit("Usage-ish").alias("ChargeCategory")),
        ),
        "ChargeClass-value": ({"ChargeClass-C-005-C"}, w(lit("Refund").alias("ChargeClass"))),
        "ChargeFrequency-value": ({"ChargeFrequency-C-003-M"}, w(lit("Sometimes").alias("ChargeFrequency"))),
        "PricingCategory-value": ({"PricingCategory-C-007-M"}, w(lit("Cheap").alias("PricingCategory"))),
        "ServiceCategory-value": (
            {"ServiceCategory-C-003-M", "ServiceSubcategory-C-004-M"},
            w(lit("Coding").alias("ServiceCategory")),
        ),
        "BillingCurrency-value": (
            {"BillingCurrency-C-006-M"},
            w(lit("XYZ").alias("BillingCurrency"), lit("XYZ").alias("PricingCurrency")),
        ),
        "PricingUnit-null": ({"PricingUnit-C-006-C"}, w(lit(None, pl.String).alias("PricingUnit"))),
        "PricingUnit-without-quantity": (
            {"PricingQuantity-C-005-C", "PricingUnit-C-005-C"},
            w(lit(None, pl.Float64).alias("PricingQuantity")),
        ),
        "ConsumedQuantity-null": (
            {"ConsumedQuantity-C-006-C", "ConsumedUnit-C-005-C"},
            w(lit(None, pl.Float64).alias("ConsumedQuantity")),
        ),
        "ListCost-product": (
            {"ListUnitPrice-C-010-C", "ListCost-C-009-C"},
            w(pl.col("ListCost") + lit(Decimal(1))),
        ),
        "ContractedUnitPrice-negative": (
            {"ContractedUnitPrice-C-009-C", "ContractedUnitPrice-C-011-C"},
            w(-pl.col("ContractedUnitPrice"), -pl.col("PricingCurrencyContractedUnitPrice")),
        ),
        "ListUnitPrice-null": (
            {"ListUnitPrice-C-005-C"},
            w(lit(None, _column_type(good, "ListUnitPrice")).alias("ListUnitPrice")),
        ),
        "ResourceType-without-id": ({"ResourceType-C-004-C"}, w(lit(None, pl.String).alias("ResourceId"))),
        "SubAccountName-null": ({"SubAccountName-C-005-C"}, w(lit(None, pl.String).alias("SubAccountName"))),
        "SkuPriceId-two-skus": (
            {"SkuPriceId-C-008-M"},
            w(pl.when(pl.int_range(pl.len()) == 0).then(lit("other")).otherwise(pl.col("SkuId")).alias("SkuId")),
        ),
        "Tags-nested": (
            {"KeyValueFormat-A-004-M", "KeyValueFormat-A-003-M", "Tags-C-001-M"},
            w(lit('{"a": {"b": 1}}').alias("Tags")),
        ),
        "ServiceSubcategory-null": (
            {"ServiceSubcategory-C-002-M", "ServiceName-C-008-C"},
            w(lit(None, pl.String).alias("ServiceSubcategory")),
        ),
    }


def _column_type(df: pl.DataFrame, name: str) -> pl.DataType:
    return df.schema[name]


def generated(work: Path) -> pl.DataFrame:
    data = work / "generated"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--records", "3000", "--out", str(data)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return un.normalize(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--validator-python", required=True, help="the interpreter of the validator's venv")
    ap.add_argument("--work", help="where to write the files (default: a temporary folder)")
    args = ap.parse_args()
    # Absolute (not resolved: a venv's python is a symlink), as the validator runs in `work`.
    args.validator_python = os.path.abspath(args.validator_python)
    work = Path(args.work or tempfile.mkdtemp(prefix="focus-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    claimed = set(_focus_rules.CLAIMED)
    failures: list[str] = []

    # The shipped rule model is the validator's.
    derived = work / "rules.json"
    # (The validator writes a log file into the working folder: keep it in `work`.)
    subprocess.run([args.validator_python, str(HERE / "derive_focus_rules.py"), str(derived)], check=True, cwd=work)
    shipped = Path(un.__file__).parent / "focus_rules_1.2.json"
    if json.loads(derived.read_text()) != json.loads(shipped.read_text()):
        failures.append(f"{shipped} differs from the validator's model: run derive_focus_rules.py")

    files: dict[Path, pl.DataFrame | None] = {}
    for sample in sorted(EXAMPLES.glob("*.json")):
        df = un.normalize(sample)
        for name, frame in (("unpriced", df), ("priced", un.price(df, RATES, billable_only=False))):
            focus = un.to_focus(frame, as_of=AS_OF)
            files[work / f"{sample.stem}-{name}.parquet"] = focus
    files[work / "generated-priced.parquet"] = un.to_focus(
        un.price(generated(work), RATES, billable_only=False), as_of=AS_OF
    )
    for path, focus in files.items():
        assert focus is not None
        focus.write_parquet(path)
    cli = [sys.executable, "-m", "usagenorm", "focus", str(EXAMPLES), "--as-of", AS_OF.isoformat()]
    for suffix in ("parquet", "csv"):
        for priced in (False, True):
            out = work / f"cli-{'priced' if priced else 'unpriced'}.{suffix}"
            rates = work / "rates.csv"
            RATES.frame.write_csv(rates)
            subprocess.run(cli + ["-o", str(out)] + (["--rates", str(rates)] if priced else []), check=True)
            files[out] = None
    broken = breaks()
    for name, (_, frame) in broken.items():
        frame.write_parquet(work / f"broken-{name}.parquet")

    paths = [str(p) for p in files] + [str(work / f"broken-{n}.parquet") for n in broken]
    run = subprocess.run(
        [args.validator_python, str(HERE / "run_focus_validator.py"), ",".join(sorted(claimed)), *paths],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
    )
    results = json.loads(run.stdout)
    (work / "validator.json").write_text(json.dumps(results, indent=1))

    def failed(path: str) -> tuple[set[str], dict[str, str]]:
        """The leaf rules that fail under the claimed criteria, and the validator's own errors."""
        rules = results[path]
        columns = (
            set(pl.read_parquet_schema(path)) if path.endswith(".parquet") else set(pl.read_csv(path, n_rows=0).columns)
        )
        ours: set[str] = set()
        theirs: dict[str, str] = {}
        for r, v in rules.items():
            if v["ok"] or v["skipped"] or not is_leaf(r):
                continue
            if not applies(r, claimed):
                theirs[r] = "outside the claimed criteria (the validator applies a rule when any one is claimed)"
            elif why := validator_error(r, columns, rules):
                theirs[r] = why
            else:
                ours.add(r)
        return ours, theirs

    for path in files:
        ours, theirs = failed(str(path))
        evaluated = sum(1 for v in results[str(path)].values() if not v["skipped"])
        print(f"{path.name}: {evaluated} rules evaluated, {len(ours)} failed", end="")
        print()
        for r, why in sorted(theirs.items()):
            print(f"  validator error {r}: {why}")
        for r in sorted(ours):
            failures.append(f"{path.name}: {r} {results[str(path)][r]['reason']}")
        if path.suffix == ".parquet":
            mine = un.check_focus(pl.read_parquet(path))
            if mine.height:
                failures.append(f"{path.name}: check_focus finds {mine['rule'].to_list()}")

    for name, (expected, frame) in broken.items():
        path = str(work / f"broken-{name}.parquet")
        theirs, _ = failed(path)
        mine = set(un.check_focus(frame)["rule"].to_list())
        hidden = {r for r in expected if r not in theirs}
        print(f"broken {name}: validator {sorted(theirs)}, check_focus {sorted(mine)}")
        if not expected <= mine:
            failures.append(f"broken {name}: check_focus misses {sorted(expected - mine)}")
        if theirs - mine:
            failures.append(f"broken {name}: the validator finds {sorted(theirs - mine)}, check_focus does not")
        extra = mine - theirs - expected
        if extra:
            failures.append(f"broken {name}: check_focus finds {sorted(extra)}, unexpected")
        for r in sorted(hidden):
            print(f"  not seen by the validator: {r}: {why_missed(r, results[path], frame)}")

    for f in failures:
        print("FAIL", f, file=sys.stderr)
    print(f"focus conformance: {len(files)} files, {len(broken)} broken frames, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    sys.exit(main())
