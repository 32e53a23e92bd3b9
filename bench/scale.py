"""(f), (g), (h) — the measurements at scale — as the bench runs and reports them: sizes, the run, targets
and table rows (bench/cli.py adds them to its own)."""

from __future__ import annotations

# full / quick, like cli.SIZES
SIZES = {
    # (f) inbound over real HTTP: seconds per phase (ceiling, inbound, inbound at half the ceiling), clients
    "http_seconds": (8.0, 3.0),
    "http_clients": (8, 4),
    # (g) cost as data grows: the small and the large database (runs; ten step rows each), samples per operation
    "scale_small_runs": (10_000, 2_000),
    "scale_runs": (1_000_000, 20_000),
    "scale_samples": (20, 8),
    # (h) scale-out: runs per worker count, the due-job backlog and its budget per worker count
    "scaleout_runs": (1000, 150),
    "scaleout_backlog": (10_000, 1_000),
    "scaleout_budget_s": (60.0, 15.0),
}
TARGET_HTTP_RATIO = 0.5
TARGET_HTTP_P99_MS = 250.0
TARGET_SCALE_RATIO = 2.0
TARGET_DROP_MS = 1000.0


def run(world, broker, size: dict, step, parts=("f", "g", "h")) -> dict:
    """The parts of (f), (g), (h) named in `parts`."""
    from bench import at_scale, http_inbound, scaleout

    results = {}
    if "f" in parts:
        step(f"(f) inbound over HTTP: gunicorn x{http_inbound.WEB_WORKERS} + Celery worker, "
             f"{size['http_clients']} clients, {size['http_seconds']:.0f} s per phase")
        results["inbound_http"] = http_inbound.inbound_http(world, broker, size["http_seconds"], size["http_clients"])
    if "g" in parts:
        step(f"(g) cost as data grows: {size['scale_small_runs']:,} runs, then {size['scale_runs']:,} runs and "
             f"{size['scale_runs'] * at_scale.STEPS_PER_RUN:,} step rows over {at_scale.MONTHS} months")
        results["at_scale"] = at_scale.at_scale(size["scale_small_runs"], size["scale_runs"],
                                                size["scale_samples"])
    if "h" in parts:
        step(f"(h) scale-out: {size['scaleout_runs']} runs and a {size['scaleout_backlog']:,}-job backlog "
             f"with {', '.join(map(str, scaleout.WORKER_COUNTS))} worker processes")
        results["scale_out"] = scaleout.scale_out(world, broker, size["scaleout_runs"], size["scaleout_backlog"],
                                                  size["scaleout_budget_s"])
    return results


def targets(results: dict) -> list[tuple]:
    """(name, value, wanted, met) rows, as cli.targets builds its own, for the parts that ran."""
    rows = []
    if "inbound_http" in results:
        http = results["inbound_http"]
        half = http["inbound_at_half_ceiling"]
        rows += [
            ("(f) inbound events/s ÷ HTTP ceiling requests/s", http["ratio"], f"≥ {TARGET_HTTP_RATIO}",
             http["ratio"] >= TARGET_HTTP_RATIO),
            ("(f) inbound p99 at half the ceiling's rate (ms)", half["p99_ms"], f"≤ {TARGET_HTTP_P99_MS:.0f}",
             half["p99_ms"] <= TARGET_HTTP_P99_MS),
        ]
    if "at_scale" in results:
        scale = results["at_scale"]
        for op in scale["operations"]:
            rows.append((f"(g) {op['operation']}: p95 ÷ p95 small", op["ratio"], f"≤ {TARGET_SCALE_RATIO}",
                         op["ratio"] <= TARGET_SCALE_RATIO))
        rows.append(("(g) dropping a month of step runs (ms)", scale["drop_partition_ms"],
                     f"≤ {TARGET_DROP_MS:.0f}", scale["drop_partition_ms"] <= TARGET_DROP_MS))
    if "scale_out" not in results:
        return rows
    curve = results["scale_out"]["curve"]
    first, last = curve[0], curve[-1]
    speedup = round(last["backlog_jobs_per_s"] / first["backlog_jobs_per_s"], 2) if first["backlog_jobs_per_s"] else 0
    rows.append((f"(h) backlog drain rate, {last['workers']} ÷ {first['workers']} worker processes", speedup, "> 1",
                 speedup > 1))
    return rows


def render(results: dict) -> list[str]:
    lines = []
    if "inbound_http" in results:
        http = results["inbound_http"]
        for label, key in (("HTTP ceiling: key + one row", "ceiling"), ("inbound events over HTTP", "inbound"),
                           ("inbound at half the ceiling's rate", "inbound_at_half_ceiling"),
                           ("inbound at half its own rate", "inbound_at_half_its_own")):
            row = http[key]
            lines.append(f"{'(f) ' + label + ', ' + str(http['clients']) + ' clients':<58} "
                         f"{row['per_s']:>12,.1f}  req/s  p50 {row['p50_ms']:.0f} / p95 {row['p95_ms']:.0f} / "
                         f"p99 {row['p99_ms']:.0f} ms; CPU ms/req "
                         + ", ".join(f"{name} {ms}" for name, ms in row["cpu_ms_per_request"].items()))
    if "at_scale" in results:
        scale = results["at_scale"]
        filled = f"(g) fill: {scale['runs']:,} runs, {scale['steps']:,} step rows"
        lines.append(f"{filled:<58} {scale['fill_seconds']:>12,.1f}  s")
        rolled = (f"(g) insights rollup rebuilt ({scale['rollup_hour_rows']:,} hour, "
                  f"{scale['rollup_six_rows']:,} six-hour, {scale['rollup_day_rows']:,} day rows)")
        lines.append(f"{rolled:<58} {scale['rollup_seconds']:>12,.1f}  s")
        for op in scale["operations"]:
            lines.append(f"{'(g) p95 ' + op['operation']:<58} {op['large_p95_ms']:>12,.1f}  ms"
                         f"  ({op['small_p95_ms']:,.1f} ms at {scale['small_runs']:,} runs: ×{op['ratio']})")
        dropped = f"(g) drop a month of step runs ({scale['drop_partition_rows']:,} rows)"
        lines.append(f"{dropped:<58} {scale['drop_partition_ms']:>12,.1f}  ms")
    if "scale_out" in results:
        out = results["scale_out"]
        for point in out["curve"]:
            drained = f"{point['backlog_projected_seconds']:.1f} s{'' if point['backlog_complete'] else ' projected'}"
            lines.append(f"{'(h) worker processes x' + str(point['workers']) + ': runs':<58} "
                         f"{point['runs_per_s']:>12,.1f}  runs/s; {out['backlog_jobs']:,}-job backlog "
                         f"{point['backlog_jobs_per_s']:,.0f} jobs/s ({drained})")
        lines.append(f"{'(h) runs/s stops growing after (worker processes)':<58} {out['flattens_at']:>12}")
    return lines
