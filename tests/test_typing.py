"""``mypy --strict`` passes on a script that chains normalize → price → aggregate → to_focus
(the package ships ``py.typed`` and a stub for its native module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_mypy_strict_on_a_users_chain(tmp_path):
    script = Path(__file__).parent / "typing" / "chain.py"
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path), str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout
