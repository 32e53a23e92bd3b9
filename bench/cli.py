"""`python -m bench`: run the measurements ((f)–(h) in bench/scale.py), print a table with PASS/MISS per
target, write bench/results/latest.json. `--quick` shrinks every size (a smoke run; the backlog figure is then
projected to 10,000 jobs); `--profile` also writes pyinstrument profiles of the runner and of one tick
to bench/results/profile-*.txt.

Every wait has a budget: what does not finish in it is projected from the rate measured, and a
measurement that cannot be made (the database or the worker failing) ends the run with one line saying
which measurement failed and why, exit status 1."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import scale

RESULTS = Path(__file__).resolve().parent / "results"

# Sizes and time budgets, full / quick. A measurement stops at its size or its budget, whichever comes
# first, so the whole run stays around 3 minutes on a 2-core machine however slow the runtime is (plus
# the first `./relayctl` install on a clean clone: the bound is 5 minutes in all).
SIZES = {
    "ceiling_seconds": (5.0, 2.0),
    "runner_runs": (2000, 300),
    "runner_budget_s": (20.0, 8.0),
    "celery_runs": (3000, 400),
    "celery_target_s": (15.0, 6.0),  # the Celery batch is sized from the direct rate to last about this long
    "celery_budget_s": (60.0, 20.0),  # then projected from the runs completed
    "inbound_events": (500, 100),
    "inbound_budget_s": (20.0, 6.0),
    "backlog_jobs": (10_000, 2_000),
    "backlog_budget_s": (60.0, 20.0),
    **scale.SIZES,
}
PARTS = ("core", "f", "g", "h")
TARGET_RATIO = 1.0
TARGET_TICK_MS = 1000.0
TARGET_BACKLOG_S = 60.0
BACKLOG_TARGET_JOBS = 10_000


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in about a minute")
    parser.add_argument("--profile", action="store_true", help="write pyinstrument profiles of the runner and a tick")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--only", action="append", choices=PARTS, default=None,
                        help="run only these parts (repeatable): core = (a)-(e), the runtime's own figures, e.g. to "
                             "compare two commits in one sitting; f, g, h = the measurements at scale")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--scale-runs", type=int, default=None,
                        help="(g): runs in the large database (10 step rows each); default 1,000,000 (--quick 20,000)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.only = tuple(args.only or PARTS)
    from bench import env

    broker = env.prepare()
    size = {name: values[1] if args.quick else values[0] for name, values in SIZES.items()}
    if args.scale_runs:
        size["scale_runs"] = max(args.scale_runs, size["scale_small_runs"])
    started = time.perf_counter()
    original, name = None, None
    doing = ["setting up Django"]  # what is being done now, for the failure line
    try:
        import django

        django.setup()
        doing[0] = "creating and migrating the bench database"
        print("bench: creating and migrating a database of its own…", file=sys.stderr, flush=True)
        original, name = env.create_database()
        print(f"bench: database {name}; broker {broker.label}", file=sys.stderr, flush=True)
        results = run_all(args, size, broker, doing)
    except KeyboardInterrupt:
        print(f"bench: interrupted during {doing[0]}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - reported in one line, with the detail above it
        if isinstance(error, env.BenchFailure):
            if error.log:
                print(f"--- worker log (end) ---\n{error.log}\n---", file=sys.stderr)
        else:
            traceback.print_exc()
        cause = str(error) if isinstance(error, env.BenchFailure) else f"{type(error).__name__}: {error}"
        print(f"bench: FAILED during {doing[0]}: {' '.join(cause.split())}", file=sys.stderr)
        return 1
    finally:
        if name:
            try:
                env.drop_database(original, name)
            except Exception as error:  # noqa: BLE001 - the run's outcome is already decided
                print(f"bench: could not drop database {name}: {' '.join(str(error).split())}", file=sys.stderr)
        env.forget_queue(broker)
        shutil.rmtree(broker.var_dir, ignore_errors=True)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nwritten: {args.output}")
    return 0


def run_all(args, size: dict, broker, doing: list[str]) -> dict:
    from bench import env
    from bench.data import World

    def step(label):
        doing[0] = label
        print(f"bench: {label}…", file=sys.stderr, flush=True)

    world = World()
    results = {"when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "quick": args.quick,
               "machine": env.machine(), "sizes": size}
    if "core" in args.only:
        results.update(run_core(args, size, broker, world, step))
    results.update(scale.run(world, broker, size, step, args.only))
    results["targets"] = targets(results)
    if args.profile:
        from bench import profiling

        step("profiling the runner and one tick")
        results["profiles"] = profiling.profile(world, RESULTS)
    return results


def run_core(args, size: dict, broker, world, step) -> dict:
    """(a)-(e): the ceiling, the runner direct and through Celery, inbound through the test client, the tick."""
    from bench import scenarios

    core = {}
    step("(a) ceiling: one row per transaction")
    core["ceiling"] = scenarios.ceiling(size["ceiling_seconds"])
    step(f"(b) runner, direct: up to {size['runner_runs']} runs or {size['runner_budget_s']:.0f} s")
    core["runner_direct"] = scenarios.runner_direct(world, size["runner_runs"], size["runner_budget_s"])
    celery_runs = max(100, min(size["celery_runs"], int(core["runner_direct"]["runs_per_s"] * 1.5
                                                        * size["celery_target_s"])))
    step(f"(b) runner, Celery worker x{args.concurrency} ({broker.kind}): {celery_runs} runs or "
         f"{size['celery_budget_s']:.0f} s")
    core["runner_celery"] = scenarios.runner_celery(world, broker, celery_runs, args.concurrency,
                                                       size["celery_budget_s"])
    step(f"(c) inbound through the API: up to {size['inbound_events']} events or {size['inbound_budget_s']:.0f} s")
    core["inbound"] = scenarios.inbound(world, size["inbound_events"], size["inbound_budget_s"])
    step(f"(d) scheduler: one 200-job tick, then a {size['backlog_jobs']}-job backlog "
         f"(ticking for at most {size['backlog_budget_s']:.0f} s)")
    core["scheduler"] = scenarios.scheduler(world, size["backlog_jobs"], size["backlog_budget_s"])
    ceiling = core["ceiling"]["rows_per_s"]
    core["ratio"] = {
        "direct": round(core["runner_direct"]["step_runs_per_s"] / ceiling, 3),
        "celery": round(core["runner_celery"]["step_runs_per_s"] / ceiling, 3),
    }
    return core


def targets(results: dict) -> list[dict]:
    rows = core_targets(results) if "scheduler" in results else []
    rows += scale.targets(results)
    return [{"target": name, "value": value, "wanted": wanted, "result": "PASS" if ok else "MISS"}
            for name, value, wanted, ok in rows]


def core_targets(results: dict) -> list[tuple]:
    sched = results["scheduler"]
    backlog_s = sched["backlog_projected_seconds"] * BACKLOG_TARGET_JOBS / sched["backlog_jobs"]
    projected = not sched["backlog_complete"] or sched["backlog_jobs"] != BACKLOG_TARGET_JOBS
    return [
        ("(e) runner step-runs/s ÷ ceiling rows/s (direct)", results["ratio"]["direct"], f"≥ {TARGET_RATIO}",
         results["ratio"]["direct"] >= TARGET_RATIO),
        ("(d) one 200-job tick (ms)", sched["tick_ms"], f"≤ {TARGET_TICK_MS:.0f}", sched["tick_ms"] <= TARGET_TICK_MS),
        ("(d) 10,000-job backlog drained (s)" + (" — projected" if projected else ""), round(backlog_s, 1),
         f"≤ {TARGET_BACKLOG_S:.0f}", backlog_s <= TARGET_BACKLOG_S),
    ]


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Relay benchmark — {results['when']}{' (quick)' if results['quick'] else ''}",
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}; PostgreSQL {m['postgresql']} "
        f"(synchronous_commit={m['synchronous_commit']}); Python {m['python']}",
        "",
        f"{'measurement':<58} {'figure':>12}  unit",
        "-" * 84,
        *(core_rows(results) if "scheduler" in results else []),
        *scale.render(results),
        "",
        "targets:",
    ]
    for t in results["targets"]:
        lines.append(f"  {t['result']:<5} {t['target']:<58} {t['value']} (want {t['wanted']})")
    lines.append(f"\ntotal {results.get('duration_s', '?')} s")
    return "\n".join(lines)


def core_rows(results: dict) -> list[str]:
    c, d, w, i, s = (results[k] for k in ("ceiling", "runner_direct", "runner_celery", "inbound", "scheduler"))
    return [
        f"{'(a) ceiling: 1 step-like row per transaction':<58} {c['rows_per_s']:>12,.0f}  rows/s",
        f"{'(b) runner direct, 10-node graph: runs':<58} {d['runs_per_s']:>12,.1f}  runs/s",
        f"{'(b) runner direct: step rows':<58} {d['step_runs_per_s']:>12,.0f}  step-runs/s",
        f"{'(b) runner direct: queries per run':<58} {d['queries_per_run']:>12}  queries",
        f"{'(b) runner direct: time per run':<58} {d['ms_per_run']:>12,.1f}  ms",
        f"{'(b) Celery worker x' + str(w['worker_concurrency']) + ' (' + w['broker'].split()[0] + '): runs':<58} "
        f"{w['runs_per_s']:>12,.1f}  runs/s" + ("" if w.get("complete", True) else
                                               f" projected: {w['runs']:,} of {w['runs_enqueued']:,} runs "
                                               f"completed in the {w['budget_s']:.0f} s budget"),
        f"{'(b) Celery worker: step rows':<58} {w['step_runs_per_s']:>12,.0f}  step-runs/s",
        f"{'(c) inbound events through the API (eager runs)':<58} {i['events_per_s']:>12,.1f}  events/s",
        f"{'(c) queries per event (request, match, enroll, run)':<58} {i.get('queries_per_event', '?'):>12}  queries",
        f"{'(d) one tick, 200 due delay jobs':<58} {s['tick_ms']:>12,.0f}  ms",
        f"{'(d) queries per job':<58} {s['queries_per_job']:>12}  queries",
        f"{'(d) backlog of ' + format(s['backlog_jobs'], ',') + ' due jobs drained':<58} "
        f"{s['backlog_projected_seconds']:>12,.1f}  s" + (
            f" ({s['backlog_ticks']} ticks)" if s["backlog_complete"] else
            f" projected: {s['backlog_drained']:,} drained in {s['backlog_seconds']:.0f} s, then stopped"),
        f"{'(e) ratio step-runs/s ÷ ceiling rows/s: direct':<58} {results['ratio']['direct']:>12.2f}",
        f"{'(e) ratio: Celery worker':<58} {results['ratio']['celery']:>12.2f}",
    ]
