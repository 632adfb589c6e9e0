"""What users install: the wheels and the sdist `make wheel` leaves in dist/, checked from outside
(auditwheel, the ELF's versioned glibc symbols, the tags), and the install the suite runs against.

These run in `make test` after `make wheel` (marker `wheel`); the quick edit loop
(`make test-python`) deselects them, since it tests a development build instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.wheel

DIST = ROOT / "dist"
ARCHES = ("x86_64", "aarch64")
# glibc 2.17 is manylinux2014's: CentOS 7, and older than Debian 11, Ubuntu 20.04, Amazon Linux 2.
MAX_GLIBC = (2, 17)


def wheel(arch: str) -> Path:
    found = sorted(DIST.glob(f"usagenorm-*-cp310-abi3-*{arch}.whl"))
    if len(found) != 1:
        pytest.fail(f"expected one {arch} abi3 wheel in dist/ (run `make wheel`), found {[p.name for p in found]}")
    return found[0]


def extension(arch: str, tmp_path: Path) -> Path:
    with zipfile.ZipFile(wheel(arch)) as z:
        (name,) = [n for n in z.namelist() if re.fullmatch(r"usagenorm/_core\.abi3\.so", n)]
        return Path(z.extract(name, tmp_path))


@pytest.mark.parametrize("arch", ARCHES)
def test_the_wheel_is_abi3_manylinux2014(arch):
    w = wheel(arch)
    tags = set(w.name.removesuffix(".whl").split("-")[-1].split("."))
    assert w.name.split("-")[2:4] == ["cp310", "abi3"], w.name
    assert tags == {f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"}, w.name
    with zipfile.ZipFile(w) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))).decode()
        names = z.namelist()
    assert f"Tag: cp310-abi3-manylinux_2_17_{arch}" in meta
    assert "Root-Is-Purelib: false" in meta
    for needed in ("usagenorm/__init__.py", "usagenorm/_core.pyi", "usagenorm/py.typed", "usagenorm/cli.py"):
        assert needed in names, needed


@pytest.mark.parametrize("arch", ARCHES)
def test_auditwheel_reports_manylinux_2_17(arch):
    auditwheel = shutil.which("auditwheel")
    assert auditwheel, "auditwheel is installed by `make wheel`"
    r = subprocess.run([auditwheel, "show", str(wheel(arch))], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert f'consistent with the following platform tag: "manylinux_2_17_{arch}"' in text, r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_the_extension_needs_glibc_2_17_at_most_and_is_stripped(arch, tmp_path):
    from elftools.elf.elffile import ELFFile  # pyelftools, auditwheel's own ELF reader

    so = extension(arch, tmp_path)
    versions = set()
    with so.open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}[arch]
        for section in elf.iter_sections():
            if section.name == ".gnu.version_r":
                for _, aux in section.iter_versions():
                    versions.update(a.name for a in aux if a.name.startswith("GLIBC_"))
        sections = {s.name for s in elf.iter_sections()}
    assert versions, "the extension links glibc through versioned symbols"
    newest = max(tuple(int(x) for x in v.removeprefix("GLIBC_").split(".")[:2]) for v in versions)
    assert newest <= MAX_GLIBC, sorted(versions)
    assert ".symtab" not in sections and not any(s.startswith(".debug") for s in sections), "stripped"
    # objdump, a tool we did not write, agrees on the host's own architecture.
    if arch == "x86_64" and shutil.which("objdump"):
        out = subprocess.run(["objdump", "-T", str(so)], capture_output=True, text=True, check=True).stdout
        used = {tuple(int(x) for x in m.split(".")[:2]) for m in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", out)}
        assert used and max(used) <= MAX_GLIBC, sorted(used)


def test_the_sdist_holds_everything_a_source_build_needs():
    (sdist,) = sorted(DIST.glob("usagenorm-*.tar.gz"))
    import tarfile

    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "src/lib.rs", "python/usagenorm/__init__.py"):
        assert needed in names, needed


def test_the_release_workflow_builds_linux_wheels_as_make_wheel_does():
    makefile = (ROOT / "Makefile").read_text()
    (args,) = re.findall(r"^WHEEL_ARGS := (.+)$", makefile, flags=re.MULTILINE)
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    linux = workflow.split("\n  linux:\n", 1)[1].split("\n  musllinux:\n", 1)[0]
    (used,) = re.findall(r"args: (.+)", linux)
    assert used.replace("--out dist", "").split() == args.split()
    assert "target: ${{ matrix.target }}-unknown-linux-gnu" in linux
    assert "[x86_64, aarch64]" in linux


def test_the_suite_runs_against_the_installed_wheel_without_cargo():
    # `make test-wheel` runs the suite this way; the edit loop deselects the `wheel` marker.
    assert os.environ.get("USAGENORM_TEST_INSTALL") == "wheel", "run through make test-wheel"
    import usagenorm

    installed = Path(usagenorm.__file__).resolve()
    assert (ROOT / "python") not in installed.parents, installed
    assert "site-packages" in installed.parts, installed
    assert shutil.which("cargo") is None and shutil.which("rustc") is None, "no Rust toolchain on PATH"
    r = subprocess.run([sys.executable, "-c", "import usagenorm; print(usagenorm.__version__)"], capture_output=True, check=False)
    assert r.returncode == 0
