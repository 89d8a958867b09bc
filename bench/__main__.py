"""``python -m bench``: one full run (or ``--smoke``), then RESULTS.md and results.json.

Exit status is non-zero only on harness errors, never because a target is missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import phases, probes, servers
from bench.backends import SqliteBackend
from bench.common import BENCH_DIR, FULL, SMOKE, HarnessError, Profile, log
from bench.report import write_report
from bench.servers import Pinning, Server


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Profile]:
    ap = argparse.ArgumentParser(prog="python -m bench",
                                 description="Benchmark the exporter against the Pushgateway.")
    ap.add_argument("--smoke", action="store_true",
                    help="one short repetition at small sizes; writes to a temp directory")
    ap.add_argument("--out", type=Path, help="directory for RESULTS.md and results.json "
                    "(default: bench/, or a temporary directory with --smoke)")
    ap.add_argument("--reps", type=int, help="override the number of repetitions")
    ap.add_argument("--duration", type=int, help="override seconds per wrk run")
    args = ap.parse_args(argv)
    prof = SMOKE if args.smoke else FULL
    prof = replace(prof, reps=args.reps or prof.reps, duration=args.duration or prof.duration)
    return args, prof


def start_pair(run: phases.Run, backend: SqliteBackend, name: str) -> tuple[Server, Server]:
    exp = servers.exporter(name, run.pin, run.work, backend.state_args())
    pgw = servers.pushgateway(run.pin, run.work)
    run.servers += [exp, pgw]
    exp.start()
    pgw.start()
    log(f"{name} pid {exp.pid} port {exp.port}; pushgateway pid {pgw.pid} port {pgw.port}")
    return exp, pgw


def stop_pair(exp: Server, pgw: Server, backend: SqliteBackend) -> None:
    exp.stop()
    pgw.stop()
    backend.close()


def run_all(run: phases.Run) -> dict[str, Any]:
    res = run.results
    res["meta"] = probes.machine_info(run.prof)
    res["meta"]["pinning"] = {"servers": run.pin.server_cpu, "load": run.pin.load_cpu}
    res["meta"]["perf_instructions"] = ("counted during the 8-connection runs"
                                        if run.count_instructions
                                        else f"not supported ({probes.perf_unsupported()})")
    backend = SqliteBackend(run.work / "main")
    res["meta"]["fsync"] = probes.fsync_probe(backend.directory)
    exp, pgw = start_pair(run, backend, "exporter")
    res["rss_idle_mb"] = {"exporter": servers.rss_mb(exp.pid),
                          "pushgateway": servers.rss_mb(pgw.pid)}
    phases.throughput(run, exp, pgw, backend)
    stop_pair(exp, pgw, backend)
    # Fresh servers for the sizes: the throughput runs leave tens of thousands of remembered
    # deliveries in the exporter, which would count in its RSS at every size.
    backend = SqliteBackend(run.work / "sizes")
    exp, pgw = start_pair(run, backend, "exporter-sizes")
    phases.sizes(run, exp, pgw)
    phases.scrape_cost(run, exp, pgw)
    stop_pair(exp, pgw, backend)
    phases.restart(run)
    phases.postgresql(run)
    res["meta"]["fsync_end"] = probes.fsync_probe(run.work / "end")
    res["foreign_cpu"] = run.wrk.foreign_cpu
    res["wrk_errors"] = run.wrk.errors
    return res


def main(argv: list[str] | None = None) -> int:
    args, prof = parse_args(argv)
    servers.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="clevertap-bench-"))
    out: Path = args.out or (work if args.smoke else BENCH_DIR)
    out.mkdir(parents=True, exist_ok=True)
    run = phases.Run(prof, Pinning.for_this_machine(), work, int(time.time()),
                     count_instructions=probes.perf_unsupported() is None)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    try:
        res = run_all(run)
        res["meta"]["wall_seconds"] = time.perf_counter() - started
        res["meta"]["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
        (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
        write_report(res, out / "RESULTS.md")
    except HarnessError as e:
        log(f"harness error: {e}; logs kept in {work}")
        return 2
    finally:
        run.stop_all()
    log(f"done in {time.perf_counter() - started:.0f}s; wrote {out / 'RESULTS.md'}")
    if args.smoke:
        print((out / "RESULTS.md").read_text())
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
