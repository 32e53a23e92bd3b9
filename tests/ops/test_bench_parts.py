"""`bench --only` runs a subset: the table and the targets hold exactly the parts that ran."""

from bench import cli, scale

MACHINE = {"nproc": 2, "cpu_model": "x", "postgresql": "15", "synchronous_commit": "on", "python": "3.11"}
CORE = {
    "ceiling": {"rows_per_s": 1000.0},
    "runner_direct": {"runs_per_s": 100.0, "step_runs_per_s": 1100.0, "queries_per_run": 2, "ms_per_run": 10.0},
    "runner_celery": {"worker_concurrency": 2, "broker": "redis x", "runs_per_s": 90.0, "step_runs_per_s": 990.0},
    "inbound": {"events_per_s": 50.0, "queries_per_event": 12},
    "scheduler": {"tick_ms": 300, "queries_per_job": 2, "backlog_jobs": 10_000, "backlog_projected_seconds": 30.0,
                  "backlog_complete": True, "backlog_ticks": 12, "backlog_drained": 10_000, "backlog_seconds": 30},
    "ratio": {"direct": 1.1, "celery": 0.99},
}
AT_SCALE = {"runs": 20_000, "steps": 200_000, "fill_seconds": 3.0, "rollup_hour_rows": 10, "rollup_six_rows": 3,
            "rollup_day_rows": 2, "rollup_seconds": 0.5, "small_runs": 2_000, "drop_partition_rows": 30_000,
            "drop_partition_ms": 40.0,
            "operations": [{"operation": "runs list", "large_p95_ms": 3.0, "small_p95_ms": 2.0, "ratio": 1.5}]}


def test_only_parses_repeatable_parts_and_defaults_to_all():
    assert cli.parse_args([]).only is None
    assert cli.parse_args(["--only", "core", "--only", "g"]).only == ["core", "g"]


def test_a_core_only_run_renders_and_judges_only_the_core():
    results = {"when": "now", "quick": False, "machine": MACHINE, **CORE}
    results["targets"] = cli.targets(results)
    assert [t["target"][:3] for t in results["targets"]] == ["(e)", "(d)", "(d)"]
    table = cli.render(results)
    assert "(b) runner direct" in table and "(f)" not in table and "(g)" not in table and "(h)" not in table


def test_a_scale_only_run_renders_and_judges_only_its_part():
    results = {"when": "now", "quick": True, "machine": MACHINE, "at_scale": AT_SCALE}
    results["targets"] = cli.targets(results)
    assert [t["target"] for t in results["targets"]] == ["(g) runs list: p95 ÷ p95 small",
                                                         "(g) dropping a month of step runs (ms)"]
    assert all(t["result"] == "PASS" for t in results["targets"])
    table = cli.render(results)
    assert "(g) p95 runs list" in table and "(b) runner" not in table and "(h)" not in table
    assert scale.render({}) == [] and scale.targets({}) == []
