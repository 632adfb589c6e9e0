"""How schedulers run code (issue 20): a forked or spawned child, Ctrl-C in one thread while
another thread's call runs. Each runs in a fresh interpreter so a hang fails by timeout."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import EXAMPLES


def python(tmp_path, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` as a script file (a spawned child imports its functions from it)."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_child_process_works_after_the_parent_used_the_library(tmp_path, method, threads):
    """Celery prefork and Airflow's LocalExecutor fork a parent that already ran usagenorm.

    A forked child normalizes (the core starts its threads per call, so fork() leaves it nothing
    broken). Polars itself deadlocks in a forked child once the parent ran a multi-threaded
    query (polars 2.1: a group_by is enough), and aggregate, price and to_focus run Polars
    queries: a spawned child does all four."""
    r = python(
        tmp_path,
        f"""
        import multiprocessing as mp, os
        os.environ["RAYON_NUM_THREADS"] = "{threads}"
        import usagenorm as un

        def everything():
            df = un.normalize({str(EXAMPLES)!r})
            daily = un.aggregate(df, every="1d", as_of="2024-09-01")
            card = un.RateCard.from_records([{{"provider": "gitpod", "unit_price": "1"}}])
            priced = un.price(df, card, overwrite=True, billable_only=False)
            focus = un.to_focus(priced, as_of="2024-09-01")
            return (df.height, daily.height, priced.height, focus.height)

        def work(q, full):
            q.put(everything() if full else (un.normalize({str(EXAMPLES)!r}).height,))

        if __name__ == "__main__":
            ctx = mp.get_context("{method}")
            expected = everything()
            q = ctx.Queue()
            full = "{method}" != "fork"
            p = ctx.Process(target=work, args=(q, full))
            p.start()
            p.join(60)
            if p.is_alive():
                p.kill()
                raise SystemExit("the child hung")
            assert p.exitcode == 0, p.exitcode
            got = q.get()
            assert got == (expected if full else expected[:1]), (got, expected)
            print("ok", got)
        """
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok ("), r.stdout


def test_ctrl_c_stops_its_own_call_while_other_threads_start_calls(tmp_path):
    """The cancel token is per call: calls starting and finishing in another thread neither
    clear a Ctrl-C meant for the main thread's call (it stops at once, not when its work is
    done) nor are stopped by it (each returns its whole result)."""
    r = python(
        tmp_path,
        f"""
        import json, threading, time, _thread
        import usagenorm as un

        page = json.loads(open({str(EXAMPLES / "gitpod.json")!r}).read())
        one = page["records"][0]
        big = "\\n".join(json.dumps(dict(one, id=f"r{{i}}")) for i in range(3_000_000)).encode()
        small = json.dumps(page).encode()
        started = time.perf_counter()
        un.normalize(big, dedupe=False)
        whole = time.perf_counter() - started

        done = threading.Event()
        heights = []

        def other():
            while not done.wait(0.002):
                heights.append(un.normalize(small).height)

        t = threading.Thread(target=other)
        t.start()
        threading.Timer(0.3, _thread.interrupt_main).start()
        started = time.perf_counter()
        try:
            un.normalize(big, dedupe=False)
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
        latency = time.perf_counter() - started - 0.3
        done.set()
        t.join()
        print(json.dumps({{"outcome": outcome, "latency": latency, "whole": whole,
                          "calls": len(heights), "heights": sorted(set(heights))}}))
        """,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = __import__("json").loads(r.stdout.strip().splitlines()[-1])
    assert out["outcome"] == "interrupted", out
    assert out["latency"] < out["whole"] / 2, out  # it stopped, it did not run to the end
    assert out["calls"] > 0 and out["heights"] == [3], out
