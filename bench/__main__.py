"""`make bench` (`python -m bench`): every figure as one line (name, value, target, PASS / MISS), each the median of
3 runs; the gateway simulator, the server and the load clients are separate processes, started fresh (clean
environment, fresh state database) for every run. Exits 1 when a figure misses or could not be measured, 2 when
a bench crashed.

  --only NAME   run one bench: getbatch, results, watch, storm, replicas, trust, parts, webhooks
  --quick       fewer items and shorter phases, for a smoke run (under 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from bench import getbatch, parts, procs, replicas, results_cache, storm, trust, watch_fanout, webhooks
from bench.report import Sheet

BENCHES: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
    "getbatch": getbatch.bench,
    "results": results_cache.bench,
    "watch": watch_fanout.bench,
    "storm": storm.bench,
    "replicas": replicas.bench,
    "trust": trust.bench,
    "parts": parts.bench,
    "webhooks": webhooks.bench,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only this bench (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer items, shorter phases: a smoke run")
    args = parser.parse_args()
    chosen = args.only or list(BENCHES)
    sheet = Sheet()
    crashed: list[str] = []
    started = time.monotonic()
    print(f"otari-batch-grpc bench{' (quick)' if args.quick else ''}: {', '.join(chosen)}; {os.cpu_count()} CPUs")
    for name in chosen:
        machine, own, wall = procs.machine_user_seconds(), procs.own_user_seconds(), time.monotonic()
        try:
            asyncio.run(BENCHES[name](sheet, quick=args.quick))
        except Exception as error:
            traceback.print_exc()
            sheet.error(f"{name} (crashed)", f"{type(error).__name__}: {error}")
            crashed.append(name)
        others = (procs.machine_user_seconds() - machine) - (procs.own_user_seconds() - own)
        seconds = time.monotonic() - wall
        sheet.note(
            f"[{name}: {seconds:.0f} s; other jobs on this machine meanwhile used {max(0.0, others) / seconds:.0%}"
            " of a core (user time): figures are only as steady as the machine]"
        )
    print(f"\n{sheet.summary()} in {time.monotonic() - started:.0f} s")
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
        sys.exit(2)
    if sheet.failed:
        print("not met: " + ", ".join(f.name for f in sheet.failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
