"""Run the FinOps Foundation's FOCUS validator (``focus-validator``, in its own virtual
environment) on FOCUS files and print, as JSON, every rule it evaluated per file.

Usage: run_focus_validator.py CRITERIA FILE [FILE ...]
CRITERIA: comma-separated applicability criteria the files claim.

The validator's exit code is 0 even when rules fail, so this reads its result object: for each
rule, ``ok`` and whether it was skipped (and why). Output: {file: {rule_id: {"ok": bool,
"skipped": bool, "reason": str, "keyword": str, "violations": int | None}}}.
"""

import json
import logging
import os
import sys
import warnings

import focus_validator
from focus_validator.validator import Validator

warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)


def run(path: str, criteria: str) -> dict:
    fmt = "parquet" if path.endswith(".parquet") else "csv"
    validator = Validator(
        data_filename=path,
        data_format=fmt,
        output_destination=None,
        output_type="console",
        rules_version="1.2",
        focus_dataset="CostAndUsage",
        rules_block_remote_download=True,
        applicability_criteria=criteria,
    )
    validator.load()
    results = validator.spec_rules.validate(
        validator.focus_data, data_filename=path, data_row_count=validator.data_row_count
    )
    out = {}
    for rule_id, res in results.by_rule_id.items():
        details = res.get("details") or {}
        out[rule_id] = {
            "ok": bool(res.get("ok")),
            "skipped": bool(details.get("skipped")),
            "reason": str(details.get("reason") or details.get("message") or "")[:300],
            "keyword": results.rules[rule_id].validation_criteria.keyword if rule_id in results.rules else "",
            "violations": details.get("violations"),
        }
    return out


def main() -> None:
    criteria, files = sys.argv[1], [os.path.abspath(f) for f in sys.argv[2:]]
    # The validator opens its currency list by a path relative to its package's parent folder.
    os.chdir(os.path.dirname(os.path.dirname(focus_validator.__file__)))
    json.dump({f: run(f, criteria) for f in files}, sys.stdout)


if __name__ == "__main__":
    main()
