"""Derive usagenorm's copy of the FOCUS rule model from the one the official validator bundles.

Run with the validator's interpreter: ``derive_focus_rules.py OUT.json``. ``check_focus`` reads
the result (``python/usagenorm/focus_rules_1.2.json``); ``make focus-conformance`` derives it
again and fails when the shipped copy differs, so the two cannot drift apart.

Kept per rule: what it refers to, its type (Static rules can be checked on data; Dynamic rules
cannot), keyword, applicability criteria, the sentence of the specification, and its
Requirement and Condition trees. Also kept: the model's version and the national currency codes
the validator accepts. The model is the FinOps Foundation's (focus-validator, MIT licence).
"""

import csv
import json
import os
import sys

import focus_validator

RULES = os.path.join(os.path.dirname(focus_validator.__file__), "rules")


def derive() -> dict:
    with open(os.path.join(RULES, "model-1.2.0.1.json"), encoding="utf-8") as f:
        model = json.load(f)
    with open(os.path.join(RULES, "currency_codes.csv"), encoding="utf-8") as f:
        currencies = sorted({row["currency_codes"] for row in csv.DictReader(f)})
    rules = {}
    for rule_id, rule in sorted(model["ModelRules"].items()):
        criteria = rule["ValidationCriteria"]
        rules[rule_id] = {
            "reference": rule["Reference"],
            "entity": rule["EntityType"],
            "type": rule["Type"],
            "keyword": criteria["Keyword"],
            "criteria": rule["ApplicabilityCriteria"],
            "text": criteria["MustSatisfy"],
            "requirement": criteria["Requirement"],
            "condition": criteria["Condition"],
        }
    return {
        "model_version": model["Details"]["ModelVersion"],
        "focus_version": model["Details"]["FOCUSVersion"],
        "root": model["ModelDatasets"]["CostAndUsage"]["ModelRules"][0],
        "criteria": sorted(model["ApplicabilityCriteria"]),
        "currencies": currencies,
        "rules": rules,
    }


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(derive(), f, indent=0, sort_keys=True, ensure_ascii=False)
        f.write("\n")
