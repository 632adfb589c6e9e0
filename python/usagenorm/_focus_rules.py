"""``check_focus``'s engine: the rules of the FOCUS 1.2 rule model (the FinOps Foundation's, as
the official validator bundles it; derived into ``focus_rules_1.2.json``) evaluated on a frame
with Polars.

A rule applies when all of its applicability criteria (and its parents') are among those the
data claims (the validator applies a rule when any one is claimed: a rule for providers with
virtual currencies is not for one that only publishes price lists). Its row condition is its
own Condition and its parents'. A rule whose Requirement refers to other rules holds when they
hold (AND) or when one does (OR). MAY rules are permissions and are not checked; Dynamic rules
(which no data check decides) are listed as not checked, except the key-value ones, checked
here on the text: Tags and SkuPriceDetails are JSON objects whose values are never objects or
arrays.

Where the validator (or the model) departs from a rule's intent, this follows the rule:
- "ChargeClass is not Correction" holds for a null ChargeClass (the validator's SQL writes
  ``ChargeClass IS NOT NULL AND ...``, which hides PricingQuantity-C-005-C and others for every
  row). Generally, "X is not V" holds where X is null.
- A column a condition names but the frame does not have is all null there (the validator
  fails the rule: ConsumedQuantity-C-005-C names CommitmentDiscountStatus, a column only
  providers with commitment discounts have). A requirement on a missing column fails, as in
  the validator.
- ``CORRECTED`` lists rules whose condition in the model says the opposite of their text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import polars as pl

# Rules whose Condition in the model contradicts their text, with the condition the text means.
CORRECTED: dict[str, dict[str, Any]] = {
    # "ConsumedQuantity MUST NOT be null when ChargeClass is not Correction": the model's
    # condition is "ChargeClass is Correction".
    "ConsumedQuantity-C-006-C": {"CheckFunction": "CheckNotValue", "ColumnName": "ChargeClass", "Value": "Correction"},
}

# What usagenorm's FOCUS output claims: the applicability criteria its columns support.
CLAIMED = (
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
    "MULTIPLE_PRICING_CATEGORIES_SUPPORTED",
    "NEGOTIATED_PRICING_SUPPORTED",
    "PUBLIC_PRICE_LIST_SUPPORTED",
    "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
    "SUB_ACCOUNT_SUPPORTED",
    "TAGGING_SUPPORTED",
    "UNIT_PRICING_SUPPORTED",
    "USAGE_MEASUREMENT_SUPPORTED",
)

_DATA_SIZES = "b|Kb|Mb|Gb|Tb|Pb|Eb|B|KB|MB|GB|TB|PB|EB|Kib|Mib|Gib|Tib|Pib|Eib|KiB|MiB|GiB|TiB|PiB|EiB"
_TIME_ONE = "Year|Month|Day|Hour|Minute|Second"
_TIME_MANY = "Years|Months|Days|Hours|Minutes|Seconds"
_COUNT = r"[A-Za-z][A-Za-z0-9]*(?:\s+[A-Za-z][A-Za-z0-9]*)*"
# FOCUS UnitFormat, as the validator spells it.
UNIT_FORMAT = "|".join(
    f"({p})"
    for p in (
        f"^({_DATA_SIZES}|{_TIME_ONE}|{_TIME_MANY}|{_COUNT})$",
        f"^({_DATA_SIZES}|{_COUNT})-({_TIME_MANY})$",
        f"^({_DATA_SIZES}|{_COUNT}|{_TIME_MANY})/({_TIME_ONE})$",
        f"^[0-9]+ ({_DATA_SIZES}|{_TIME_ONE}|{_TIME_MANY}|{_COUNT})$",
        f"^({_DATA_SIZES}|{_COUNT}|{_TIME_MANY})/[0-9]+ ({_TIME_MANY})$",
    )
)
NUMERIC_TEXT = r"^[+-]?([0-9]*[.])?[0-9]+([eE][+-]?[0-9]+)?$"
DATETIME_TEXT = r"^[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$"
KEY_VALUE_COLUMNS = ("Tags", "SkuPriceDetails")


@cache
def model() -> dict[str, Any]:
    """The derived FOCUS 1.2 rule model shipped with usagenorm."""
    text = resources.files("usagenorm").joinpath("focus_rules_1.2.json").read_text(encoding="utf-8")
    return json.loads(text)


def rule_ids() -> list[str]:
    """Every rule id of the model."""
    return sorted(model()["rules"])


class _Unknown(Exception):
    """A check the frame cannot answer (a column it names is missing or of the wrong type)."""


@dataclass
class _Frame:
    df: pl.DataFrame

    def has(self, name: str) -> bool:
        return name in self.df.columns

    def col(self, name: str) -> pl.Series:
        """The column; a missing one is all null (see the module docstring)."""
        if name not in self.df.columns:
            return pl.repeat(None, self.df.height, dtype=pl.Null, eager=True).alias(name)
        return self.df[name]


def _is_text(s: pl.Series) -> bool:
    return s.dtype in (pl.String, pl.Null, pl.Categorical) or isinstance(s.dtype, pl.Enum)


def _is_number(s: pl.Series) -> bool:
    return s.dtype.is_numeric() or s.dtype == pl.Null


def _values(s: pl.Series, value: Any, unknown: bool) -> pl.Series:
    """``s == value``; where `s` is null (and `value` is not), `unknown`."""
    if value is None:
        return s.is_null()
    if _is_text(s):
        return (s.cast(pl.String) == str(value)).fill_null(unknown)
    try:
        return (s == value).fill_null(unknown)
    except (pl.exceptions.PolarsError, TypeError) as e:
        raise _Unknown(s.name) from e


# A flat JSON object (FOCUS KeyValueFormat), checked with two regular expressions on the whole
# column: each string literal becomes `""` (which nothing else can be), then what is left must be
# `{"":V,"":V,...}` where V is a string, a number, true, false or null (never an object or array).
_JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_FLAT_VALUE = r'(?:""|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)'
_FLAT_OBJECT = rf'^\s*\{{\s*(?:""\s*:\s*{_FLAT_VALUE}\s*(?:,\s*""\s*:\s*{_FLAT_VALUE}\s*)*)?\}}\s*$'


def _key_values(s: pl.Series) -> pl.Series:
    """Whether each text is a JSON object of keys and non-nested values (null: it is)."""
    flat = s.cast(pl.String).str.replace_all(_JSON_STRING, '""', literal=False).str.contains(_FLAT_OBJECT)
    return flat.fill_null(True)


def _constant(value: bool, n: int) -> pl.Series:
    return pl.repeat(value, n, dtype=pl.Boolean, eager=True)


def _row_check(f: _Frame, check: dict[str, Any], requirement: bool = False) -> pl.Series:
    """Whether each row meets `check` (a leaf or an AND/OR of leaves). In a `requirement`, a
    comparison with a null value is not a violation (nullability has rules of its own, and the
    validator's SQL agrees); in a condition, "X is V" does not hold for a null X and "X is not V"
    does."""
    if "ColumnName" not in check and "CheckCondition" in check:
        # The model spells ColumnName so once (ResourceId-C-006-C); it means the same.
        check = {**check, "ColumnName": check["CheckCondition"]}
    try:
        return _row_check_of(f, check, requirement)
    except KeyError as e:
        raise _Unknown(str(e)) from e


def _row_check_of(f: _Frame, check: dict[str, Any], requirement: bool) -> pl.Series:
    fn = check.get("CheckFunction")
    n = f.df.height
    true = _constant(True, n)
    if fn == "AND":
        out = true
        for item in check["Items"]:
            out = out & _row_check(f, item, requirement)
        return out
    if fn == "OR":
        out = _constant(False, n)
        for item in check["Items"]:
            out = out | _row_check(f, item, requirement)
        return out
    if fn == "CheckValue":
        return _values(f.col(check["ColumnName"]), check["Value"], requirement)
    if fn == "CheckNotValue":
        # A null is not the value (in a condition the validator's SQL says otherwise, see the
        # module docstring).
        return ~_values(f.col(check["ColumnName"]), check["Value"], False)
    if fn in ("CheckSameValue", "CheckNotSameValue"):
        a, b = f.col(check["ColumnAName"]), f.col(check["ColumnBName"])
        same = a.cast(pl.String) == b.cast(pl.String)
        return same.fill_null(requirement) if fn == "CheckSameValue" else (~same).fill_null(requirement or False)
    s = f.col(check["ColumnName"]) if "ColumnName" in check else None
    if s is None:
        raise _Unknown(fn or "")
    valid = s.is_null()
    if fn == "TypeString":
        return true if _is_text(s) else valid
    if fn == "TypeDecimal":
        return true if _is_number(s) else valid
    if fn == "TypeDateTime":
        ok = isinstance(s.dtype, pl.Datetime) and s.dtype.time_zone == "UTC"
        if _is_text(s) and s.dtype != pl.Null:
            return valid | s.cast(pl.String).str.contains(DATETIME_TEXT).fill_null(False)
        return true if ok or s.dtype == pl.Null else valid
    if fn == "FormatDateTime":
        if isinstance(s.dtype, pl.Datetime) or s.dtype in (pl.Date, pl.Null):
            return true
        return valid | s.cast(pl.String).str.contains(DATETIME_TEXT).fill_null(False)
    if fn in ("FormatNumeric", "CheckDecimalValue"):
        if _is_number(s):
            return valid | s.cast(pl.Float64).is_finite().fill_null(False)
        return valid | s.cast(pl.String).str.strip_chars().str.contains(NUMERIC_TEXT).fill_null(False)
    if fn == "FormatString":
        return valid | s.cast(pl.String).str.contains(r"^[\x00-\x7F]*$").fill_null(False) if _is_text(s) else valid
    if fn == "FormatCurrency":
        return valid | s.cast(pl.String).str.strip_chars().str.contains(r"^[A-Z]{3}$").fill_null(False)
    if fn == "CheckNationalCurrency":
        return valid | s.cast(pl.String).str.strip_chars().is_in(model()["currencies"]).fill_null(False)
    if fn == "FormatUnit":
        return valid | s.cast(pl.String).str.contains(UNIT_FORMAT).fill_null(False)
    if fn == "FormatKeyValue":
        if not _is_text(s):
            return valid
        return _key_values(s)
    if fn == "CheckGreaterOrEqualThanValue":
        if not _is_number(s):
            raise _Unknown(s.name)
        return valid | (s.cast(pl.Float64) >= float(check["Value"])).fill_null(False)
    raise _Unknown(fn or "")


@dataclass
class Finding:
    rule: str
    column: str
    rows: int
    first_row: int
    detail: str
    keyword: str


def _dataset_check(f: _Frame, check: dict[str, Any], cond: pl.Series) -> tuple[int, int] | None:
    """(violating rows, first row) of a check over rows where `cond` holds, for checks that
    look at columns or several rows at once; ``None`` for row checks."""
    fn = check.get("CheckFunction")
    if fn == "ColumnPresent":
        return (0, 0) if f.has(check["ColumnName"]) else (f.df.height, 0)
    if fn == "ColumnByColumnEqualsColumnValue":
        a, b, r = (f.col(check[k]) for k in ("ColumnAName", "ColumnBName", "ResultColumnName"))
        if not all(_is_number(x) for x in (a, b, r)):
            raise _Unknown(a.name)
        a, b, r = (x.cast(pl.Float64) for x in (a, b, r))
        # The validator's tolerance: relative 1e-9 of the result, at least 1e-9.
        bad = ((a * b - r).abs() > 1e-9 * r.abs().clip(lower_bound=1.0)).fill_null(False)
        bad = bad & cond
        return _count(bad)
    if fn == "CheckDistinctCount":
        a, b = f.col(check["ColumnAName"]), f.col(check["ColumnBName"])
        frame = (
            pl.DataFrame({"a": a, "b": b, "cond": cond}).with_row_index("i").filter("cond", pl.col("a").is_not_null())
        )
        # Distinct values as SQL counts them: nulls are not values.
        counts = frame.group_by("a").agg(pl.col("b").drop_nulls().n_unique().alias("n"))
        bad = counts.filter(pl.col("n") != int(check["ExpectedCount"]))
        if bad.is_empty():
            return (0, 0)
        rows = frame.join(bad.select("a"), on="a")
        return (rows.height, int(rows["i"].min()))  # type: ignore[arg-type]
    return None


def _count(bad: pl.Series) -> tuple[int, int]:
    n = int(bad.sum())
    return (n, int(bad.arg_true()[0]) if n else 0)


def check(df: pl.DataFrame, criteria: tuple[str, ...] = CLAIMED) -> tuple[list[Finding], list[str]]:
    """Every applicable rule's violations on `df`, and the ids of the rules that were not
    checked (Dynamic, MAY, or not applicable under `criteria`)."""
    rules = model()["rules"]
    f = _Frame(df)
    n = df.height
    findings: dict[str, Finding] = {}
    checked: set[str] = set()
    all_rows = _constant(True, n)

    def condition(rule_id: str, rule: dict[str, Any], parent: pl.Series) -> pl.Series | None:
        cond = CORRECTED.get(rule_id, rule["condition"])
        if not cond:
            return parent
        try:
            return parent & _row_check(f, cond)
        except _Unknown:
            return None  # a condition on a column of the wrong type: its type rule reports it

    def visit(rule_id: str, parent: pl.Series) -> bool:
        """Evaluates a rule under the parent's row condition; True when it holds."""
        rule = rules.get(rule_id)
        if rule is None or not set(rule["criteria"]) <= set(criteria):
            return True
        if rule["keyword"] == "MAY":
            return True
        cond = condition(rule_id, rule, parent)
        if cond is None:
            return True
        req = rule["requirement"]
        refs = _refs(req)
        if refs is not None:
            checked.add(rule_id)
            # Every way is evaluated (a rule's findings are all reported), then combined.
            before = dict(findings)
            results = [visit(r, cond) for r in refs]
            if req.get("CheckFunction") != "OR":
                return all(results)
            if any(results):
                # One way is enough: the others' findings are not violations.
                findings.clear()
                findings.update(before)
                return True
            return False
        if rule["type"] == "Dynamic" or not req:
            if rule["reference"] == "KeyValueFormat" and rule_id in (
                "KeyValueFormat-A-003-M",
                "KeyValueFormat-A-004-M",
            ):
                return key_value_rule(rule_id, rule, cond)
            return True
        checked.add(rule_id)
        missing = [c for c in _columns(req) if not f.has(c)]
        try:
            if missing and req.get("CheckFunction") != "ColumnPresent":
                # A requirement on a missing column fails (its presence rule says why).
                counted = (max(int(cond.sum()), 1), 0)
                detail = f"{rule['text']} ({', '.join(missing)} missing)"
            else:
                counted = _dataset_check(f, req, cond)
                if counted is None:
                    counted = _count(cond & ~_row_check(f, req, requirement=True))
                detail = rule["text"]
        except _Unknown:
            return True  # a column of the wrong type: its type rule reports it
        bad, first = counted
        if bad:
            findings[rule_id] = Finding(rule_id, rule["reference"], bad, first, detail, rule["keyword"])
        return not bad

    def key_value_rule(rule_id: str, rule: dict[str, Any], cond: pl.Series) -> bool:
        checked.add(rule_id)
        ok = True
        for name in KEY_VALUE_COLUMNS:
            if f.has(name) and _is_text(f.col(name)):
                bad = cond & ~_row_check(f, {"CheckFunction": "FormatKeyValue", "ColumnName": name}, True)
                count, first = _count(bad)
                if count:
                    findings[rule_id] = Finding(rule_id, name, count, first, rule["text"], rule["keyword"])
                    ok = False
        return ok

    visit(model()["root"], all_rows)
    # Attributes (formats of every column of a kind) are rules of their own.
    for rule_id in ("KeyValueFormat-A-003-M", "KeyValueFormat-A-004-M"):
        key_value_rule(rule_id, rules[rule_id], all_rows)
    unchecked = sorted(set(rules) - checked)
    return sorted(findings.values(), key=lambda x: x.rule), unchecked


def _columns(check: dict[str, Any]) -> list[str]:
    """The columns a check names."""
    out: list[str] = []
    for key in ("ColumnName", "CheckCondition", "ColumnAName", "ColumnBName", "ResultColumnName"):
        if key in check:
            out.append(check[key])
    for item in check.get("Items", []):
        out.extend(_columns(item))
    return out


def _refs(req: dict[str, Any]) -> list[str] | None:
    """The rules a composite requirement refers to, or ``None`` for a data check."""
    if req.get("CheckFunction") == "CheckModelRule":
        return [req["ModelRuleId"]]
    if req.get("CheckFunction") in ("AND", "OR"):
        items = req["Items"]
        if items and all(i.get("CheckFunction") == "CheckModelRule" for i in items):
            return [i["ModelRuleId"] for i in items]
    return None
