"""Every example in the docstrings runs: the Python modules' and the native API's stub
(`_core.pyi`, read with ast since a stub cannot be imported), in a folder that holds `exports/`
(the bundled samples) and `rates.csv`, with the names the examples use defined."""

from __future__ import annotations

import ast
import doctest
import shutil
from pathlib import Path

import polars as pl
import pytest

import usagenorm as un
from conftest import EXAMPLES, ROOT
from usagenorm import _aggregate, _canonical, _core, _focus, _frames, _pricing, _scan, _sources, cli

MODULES = [un, _aggregate, _canonical, _focus, _pricing, _scan, _sources, cli]
STUB = ROOT / "python" / "usagenorm" / "_core.pyi"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def stub_tests() -> list[doctest.DocTest]:
    parser = doctest.DocTestParser()
    tree = ast.parse(STUB.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and (doc := ast.get_docstring(node, clean=True)):
            test = parser.get_doctest(doc, {}, f"_core.{node.name}", str(STUB), node.lineno)
            if test.examples:
                found.append(test)
    return found


def module_tests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for m in MODULES for t in finder.find(m) if t.examples]


ALL = module_tests() + stub_tests()


@pytest.fixture(scope="module")
def namespace(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("doctests")
    shutil.copytree(EXAMPLES, work / "exports")
    (work / "rates.csv").write_text("provider,metric,unit_price,unit\ngitpod,,0.36,Hours\nsuger,api_calls,0.001,\n")
    df = un.normalize(work / "exports")
    rates = un.RateCard.from_csv(work / "rates.csv")
    usage = _frames.usage_series(df, "doctest")
    return {
        "work": work,
        "un": un,
        "pl": pl,
        **{name: getattr(un, name) for name in un.__all__},
        "df": df,
        "rates": rates,
        "usage": usage,
        "MATCH_COLUMNS": list(_core.MATCH_COLUMNS),
        "card_text": rates.frame,
    }


def test_every_docstring_example_is_collected():
    names = {t.name for t in ALL}
    for expected in ("usagenorm", "usagenorm.normalize", "_core.normalize", "_core.Aggregator", "_core.price"):
        assert expected in names, sorted(names)


@pytest.mark.parametrize("test", ALL, ids=[t.name for t in ALL])
def test_docstring_example_runs(test, namespace, monkeypatch):
    monkeypatch.chdir(namespace["work"])
    globs = dict(namespace)
    if test.name.startswith("_core."):
        # The stub's examples call the native functions by their own names.
        globs.update({name: getattr(_core, name) for name in dir(_core) if not name.startswith("__")})
    test.globs = globs
    # Not verbose whatever pytest's own flags are (doctest reads -v from sys.argv), and the
    # report kept aside: printing it while an example runs would land in that example's output.
    runner = doctest.DocTestRunner(verbose=False, optionflags=FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    assert result.attempted == len(test.examples) > 0
    assert Path.cwd() == namespace["work"]
