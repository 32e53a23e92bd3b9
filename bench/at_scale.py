"""(g) Cost as data grows: p95 of what users and staff do, at a small size and again after the database was
filled to `runs` runs and ten step rows each, spread over six months of step-run partitions.

The fill is server-side SQL (`INSERT … SELECT … FROM generate_series`, its own transaction per slice with
synchronous_commit off — setup, never timed as a measurement): runs spread over 6 months and 10
automations (run i starts at rank i × PERMUTE mod total, a permutation, so the small set is spread over
the same months), 10 runs per contact, finished (completed, some failed or exited), each with 10 step rows
a second apart. Each growth writes its rows in the order they start, as a production table is appended to
as time goes (a slice walks the ranks and keeps the runs it adds): rows of the same minutes share heap
pages. Written in i's order, every row of a 20-minute range landed on a page of its own.
Then VACUUM ANALYZE of runs and contacts and ANALYZE of the step rows, as autovacuum would have done, and a
CHECKPOINT, so the fill's writes do not land in the measurements. Then the insights rollup is rebuilt for
every closed hour, step rows and finished runs (`rollup.backfill_rollup`, as an operator would after an
upgrade; timed, reported and checked), so the insights endpoints read it as they would in production, where
the beat keeps it closed.

Operations (each `samples` times in each of ROUNDS rounds, the lower p95 kept; different rows each time;
every answer checked): the runs list of an
automation unfiltered, by status, by contact, by a started_at window and its second page; a run; its
steps; the insights of an automation and of the organization over 7 days; the admin's run list (plain
and by status), run page and step-run list; one tick over 20 due jobs; one enrollment and one inbound
event (Celery eager, so the run executes inside the request as in (c)).

The filled runs belong to an organization of their own, and the tick, enrollment and inbound samples write
their runs in a second one. Those runs' step rows are minutes old when the insights are read, after the
rollup's open `part` (so read from the step rows) — and the large phase comes minutes after the small one,
so in one organization its insights would also have read the small phase's traffic: a measure of the
bench's own writes, not of the data's size (the README gives that tail's cost per step row).

Last, the oldest month of step runs is dropped (detach + drop, timed)."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client
from django.utils import timezone

from automations.partitions import drop_partitions_older_than, ensure_partitions, existing_partitions
from bench.data import World, delay_graph, inbound_graph, runner_graph
from bench.env import BenchFailure
from contacts.models import Contact

MONTHS = 6
STEPS_PER_RUN = 10
RUNS_PER_CONTACT = 10
AUTOMATIONS = 10
PERMUTE = 7919  # prime: run i starts at rank i * PERMUTE mod total, so any first runs spread over the months
TICK_JOBS = 20
ROUNDS = 2


def at_scale(small_runs: int, runs: int, samples: int = 30) -> dict:
    """In organizations of its own (see above), not the bench's."""
    from relay.celery import app

    fill = _Filler(World("bench at scale"), runs)
    started = time.perf_counter()
    fill.grow(small_runs)
    small_fill_s = time.perf_counter() - started
    small_rollup = fill.roll_up()
    ops = _Operations(fill, samples)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        ops.warm_up()
        small = ops.measure()
        started = time.perf_counter()
        fill.grow(runs)
        fill_s = time.perf_counter() - started
        large_rollup = fill.roll_up()
        ops.warm_up()
        large = ops.measure()
    finally:
        app.conf.task_always_eager = previous
    drop = fill.drop_oldest_month()
    rows = []
    for name, small_ms in small.items():
        large_ms = large[name]
        rows.append({"operation": name, "small_p95_ms": small_ms, "large_p95_ms": large_ms,
                     "ratio": round(large_ms / small_ms, 2) if small_ms else 0.0})
    return {"small_runs": small_runs, "small_steps": small_runs * STEPS_PER_RUN, "runs": runs,
            "steps": runs * STEPS_PER_RUN, "months": MONTHS, "samples": samples, "rounds": ROUNDS,
            "fill_seconds": round(fill_s, 1), "small_fill_seconds": round(small_fill_s, 1),
            "rollup_seconds": large_rollup["seconds"], "rollup_hour_rows": large_rollup["hour_rows"],
            "rollup_day_rows": large_rollup["day_rows"], "rollup_six_rows": large_rollup["six_rows"],
            "small_rollup_seconds": small_rollup["seconds"],
            "operations": rows, "worst_ratio": max(row["ratio"] for row in rows), **drop}


def p95_ms(timings: list[float]) -> float:
    ordered = sorted(timings)
    return round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000, 2)


class _Filler:
    """Fills runs [filled, target) with their contacts and step rows; knows how to pick existing rows."""

    def __init__(self, world: World, total: int):
        self.world = world
        self.total = total
        self.filled = 0
        self.now = timezone.now()
        self.span = timedelta(days=30 * MONTHS)
        self.automations = [world.automation(f"Scale {i}", runner_graph()) for i in range(AUTOMATIONS)]
        ensure_partitions(self.now, months_back=MONTHS)

    def grow(self, target: int) -> None:
        start = self.filled
        if target <= start:
            return
        ids = [a.pk for a in self.automations]
        slice_ranks = 100_000
        try:
            inverse = pow(PERMUTE, -1, self.total)  # rank → i
        except ValueError:
            raise BenchFailure(f"the number of runs ({self.total}) must not be a multiple of {PERMUTE}") from None
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
            first_contact, last_contact = start // RUNS_PER_CONTACT, -(-target // RUNS_PER_CONTACT)
            cursor.execute(
                'INSERT INTO "contacts" ("id", "organization_id", "name", "email", "phone", "tags", "custom_fields", '
                '"created_at", "updated_at") SELECT \'ct_scale_\' || c, %s, \'Contact \' || c, \'\', \'\', '
                "'{}', '{}', %s, %s FROM generate_series(%s::bigint, %s::bigint) c",
                [self.world.org.pk, self.now - self.span, self.now, first_contact, last_contact - 1])
            for first_rank in range(self.total - 1, -1, -slice_ranks):  # oldest start first
                params = {"org": self.world.org.pk, "account": self.world.account.pk, "automations": ids,
                          "now": self.now, "span_s": self.span.total_seconds(), "total": self.total,
                          "inverse": inverse, "per_contact": RUNS_PER_CONTACT, "low": start, "high": target - 1,
                          "first_rank": first_rank, "last_rank": max(0, first_rank - slice_ranks + 1),
                          "steps": STEPS_PER_RUN}
                cursor.execute(_RUNS_SQL, params)
                cursor.execute(_STEPS_SQL, params)
            cursor.execute("SET synchronous_commit TO DEFAULT")
            try:  # write the fill's dirty pages now, not during the measurements (needs a superuser)
                cursor.execute("CHECKPOINT")
            except Exception:  # noqa: BLE001 - without the privilege, a checkpoint may land mid-measurement
                pass
            cursor.execute('VACUUM (ANALYZE) "contacts", "automation_runs"')
            # Step rows are append-only and read through indexes: statistics are what matters, and a
            # VACUUM of ten million rows would take longer than writing them.
            cursor.execute('ANALYZE "automation_step_runs"')
            cursor.execute("SELECT count(*) FROM \"automation_runs\" WHERE \"id\" LIKE 'arun_scale_%%'")
            runs = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM \"automation_step_runs\" WHERE \"run_id\" LIKE 'arun_scale_%%'")
            steps = cursor.fetchone()[0]
        if (runs, steps) != (target, target * STEPS_PER_RUN):
            raise BenchFailure(f"the fill wrote {runs} runs and {steps} step rows for {target} runs")
        self.filled = target

    def roll_up(self) -> dict:
        """Rebuild the insights rollup of every closed hour from the step rows; timed, and checked."""
        from automations.insights import rollup

        started = time.perf_counter()
        result = rollup.backfill_rollup()
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute('SELECT coalesce(sum("success"), 0) FROM "automation_node_rollups" WHERE "bucket" = %s '
                           'AND "automation_id" = ANY(%s)', ["hour", [a.pk for a in self.automations]])
            rolled = cursor.fetchone()[0]
            cursor.execute('SELECT count(*) FROM "automation_step_runs" WHERE "run_id" LIKE %s '
                           'AND "executed_at" < %s', ["arun_scale_%", result["rolled_up_until"]])
            closed = cursor.fetchone()[0]
            cursor.execute('SELECT coalesce(sum("runs"), 0) FROM "automation_run_rollups" WHERE "bucket" = %s '
                           'AND "automation_id" = ANY(%s)', ["hour", [a.pk for a in self.automations]])
            rolled_runs = cursor.fetchone()[0]
            cursor.execute('SELECT count(*) FROM "automation_runs" WHERE "id" LIKE %s AND "completed_at" < %s',
                           ["arun_scale_%", result["rolled_up_until"]])
            finished = cursor.fetchone()[0]
            cursor.execute('ANALYZE "automation_node_rollups", "automation_run_rollups"')
        if rolled != closed or rolled_runs != finished or not result["day_rows"] or not result["six_rows"]:
            raise BenchFailure(f"the rollup counts {rolled} steps of the fill's {closed} and {rolled_runs} runs of "
                               f"its {finished} in closed hours, {result['day_rows']} day rows, "
                               f"{result['six_rows']} six-hour rows")
        return {**result, "seconds": round(seconds, 1)}

    def run_ids(self, count: int, rng: random.Random) -> list[str]:
        return [f"arun_scale_{rng.randrange(self.filled)}" for _ in range(count)]

    def contact_ids(self, count: int, rng: random.Random) -> list[str]:
        return [f"ct_scale_{rng.randrange(self.filled // RUNS_PER_CONTACT)}" for _ in range(count)]

    def drop_oldest_month(self) -> dict:
        """Detach and drop the oldest month of step runs; time it and count what it held."""
        oldest = existing_partitions()[0]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{oldest}"')
            rows = cursor.fetchone()[0]
        started = time.perf_counter()
        dropped = drop_partitions_older_than(MONTHS - 1, now=self.now)  # months before the 5 latest ones
        seconds = time.perf_counter() - started
        if dropped != [oldest]:
            raise BenchFailure(f"dropping the oldest month dropped {dropped}, not [{oldest}]")
        return {"drop_partition": oldest, "drop_partition_rows": rows, "drop_partition_ms": round(seconds * 1000, 1)}


# Runs [low, high]: id arun_scale_<i>, automation i mod 10, contact i / 10, finished (every 50th of an
# automation's failed, the next exited), started_at spread.
# Ranks from the oldest start to the newest; run i = rank × PERMUTE⁻¹ mod total, kept when this growth adds it.
_RANKS = """
FROM generate_series(%(first_rank)s::bigint, %(last_rank)s::bigint, -1) k
CROSS JOIN LATERAL (SELECT (k * %(inverse)s) %% %(total)s AS i,
                           %(now)s::timestamptz - make_interval(secs => %(span_s)s * (k + 1) / %(total)s) AS started) r
"""

_RUNS_SQL = f"""
INSERT INTO "automation_runs" ("id", "organization_id", "automation_id", "contact_id", "social_account_id",
    "status", "current_node_key", "context", "exit_reason", "trigger_depth", "started_at", "completed_at",
    "updated_at")
SELECT 'arun_scale_' || i, %(org)s, (%(automations)s::text[])[1 + i %% 10], 'ct_scale_' || (i / %(per_contact)s),
       %(account)s, s.status, 'done', '{{}}',
       CASE s.status WHEN 'completed' THEN 'bench_done' ELSE 'bench_' || s.status END,
       0, started, started + interval '10 seconds', started + interval '10 seconds'
{_RANKS}
CROSS JOIN LATERAL (SELECT CASE (i / 10) %% 50 WHEN 0 THEN 'failed' WHEN 1 THEN 'exited' ELSE 'completed' END
                    AS status) s
WHERE i BETWEEN %(low)s AND %(high)s
"""

# Ten step rows per run, a second apart from its start: computed from i like the run (no read of the runs).
_STEPS_SQL = f"""
INSERT INTO "automation_step_runs" ("run_id", "automation_id", "node_key", "node_kind", "entered_via_port_key",
    "exited_via_port_key", "outcome", "duration_ms", "payload", "executed_at")
SELECT 'arun_scale_' || i, (%(automations)s::text[])[1 + i %% 10], 'node_' || n,
       CASE WHEN n %% 3 = 0 THEN 'message' ELSE 'condition' END, CASE WHEN n = 0 THEN NULL ELSE 'in' END, 'next',
       'success', n, jsonb_build_object('message_id', 'msg_' || i || '_' || n, 'rendered_text', 'Hi, thanks!'),
       started + make_interval(secs => n)
{_RANKS}
CROSS JOIN generate_series(0, %(steps)s::int - 1) n
WHERE i BETWEEN %(low)s AND %(high)s
"""


class _Operations:
    def __init__(self, fill: _Filler, samples: int):
        from django.contrib.auth import get_user_model
        from rest_framework.test import APIClient

        from automations.graph import entrypoints as entrypoint_service
        from automations.models import Entrypoint

        self.world, self.fill, self.samples = fill.world, fill, samples
        self.traffic = World("bench at scale, traffic")
        self.rng = random.Random(19)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.world.api_key}")
        self.traffic_api = APIClient()
        self.traffic_api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.traffic.api_key}")
        user = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-admin")
        self.admin = Client()
        self.admin.force_login(user)
        traffic = self.traffic
        self.delays = traffic.automation("Scale delays", delay_graph())
        self.enrolling = traffic.automation("Scale enroll", inbound_graph())
        self.inbound = traffic.automation("Scale inbound", inbound_graph())
        entrypoint_service.apply(Entrypoint(organization=traffic.org, automation=self.inbound, channel="instagram",
                                            kind="dm_received", config={"keywords": ["scale"]}), create=True)
        self.events = 0

    def _get(self, client, path, params=None, status=200):
        response = client.get(path, params or {})
        if response.status_code != status:
            raise BenchFailure(f"GET {path} {params}: {response.status_code} {response.get('Location', '')} "
                               f"{response.content[:300]!r}")
        return response

    def _api_list(self, path, params=None, want_rows=True):
        body = self._get(self.api, path, params).json()
        if want_rows and not body["data"]:
            raise BenchFailure(f"GET {path} {params}: no rows")
        return body

    def operations(self) -> dict:
        """name → a function doing one sample (given a random source), checked."""
        fill, rng = self.fill, self.rng

        def automation():
            return fill.automations[rng.randrange(AUTOMATIONS)].pk

        def window():
            start = fill.now - timedelta(days=rng.randrange(1, 30 * MONTHS - 1))
            return {"started_after": start.isoformat(), "started_before": (start + timedelta(days=1)).isoformat()}

        def second_page():
            first = self._api_list(f"/v1/automations/{automation()}/runs")
            self._api_list(f"/v1/automations/{automation()}/runs", {"cursor": first["next_cursor"]})

        def run_steps():
            body = self._api_list(f"/v1/automation-runs/{fill.run_ids(1, rng)[0]}/steps")
            if len(body["data"]) != STEPS_PER_RUN:
                raise BenchFailure(f"a run's steps: {len(body['data'])} rows, not {STEPS_PER_RUN}")

        return {
            "API runs list": lambda: self._api_list(f"/v1/automations/{automation()}/runs"),
            "API runs list ?status=failed": lambda: self._api_list(f"/v1/automations/{automation()}/runs",
                                                                   {"status": "failed"}),
            "API runs list ?contact_id=": lambda: self._api_list(
                f"/v1/automations/{fill.automations[0].pk}/runs", {"contact_id": fill.contact_ids(1, rng)[0]},
                want_rows=False),
            "API runs list, a one-day started_at window": lambda: self._api_list(
                f"/v1/automations/{automation()}/runs", window(), want_rows=False),
            "API runs list, second page (cursor)": second_page,
            "API run detail": lambda: self._get(self.api, f"/v1/automation-runs/{fill.run_ids(1, rng)[0]}"),
            "API steps of a run": run_steps,
            "API insights of an automation, 7d": lambda: self._get(
                self.api, f"/v1/automations/{automation()}/insights", {"period": "7d"}),
            "API insights of the organization, 7d": lambda: self._get(self.api, "/v1/automations/insights",
                                                                      {"period": "7d"}),
            "admin run list": lambda: self._get(self.admin, "/admin/automations/automationrun/"),
            "admin run list ?status=failed": lambda: self._get(self.admin, "/admin/automations/automationrun/",
                                                               {"status__exact": "failed"}),
            "admin run page": lambda: self._get(
                self.admin, f"/admin/automations/automationrun/{quote(fill.run_ids(1, rng)[0])}/change/"),
            "admin step-run list": lambda: self._get(self.admin, "/admin/automations/steprun/"),
            "one tick (20 due jobs)": self._tick,
            "one enrollment (API, run executed)": self._enroll,
            "one inbound event (API, run executed)": self._inbound_event,
        }

    def _prepare_tick(self):
        return self.traffic.delayed_runs(self.delays, TICK_JOBS, timezone.now() - timedelta(seconds=1))

    def _tick(self):
        from automations.runtime.scheduler import tick

        report = tick(batch=TICK_JOBS)
        if report.done != TICK_JOBS:
            raise BenchFailure(f"a tick over {TICK_JOBS} due jobs: {report}")

    def _enroll(self):
        contact = Contact.objects.create(organization=self.traffic.org, name="Enrolled")
        response = self.traffic_api.post(f"/v1/automations/{self.enrolling.pk}/enroll", {"contact_id": contact.pk},
                                 format="json")
        if response.status_code != 201:
            raise BenchFailure(f"enroll: {response.status_code} {response.content[:300]!r}")

    def _inbound_event(self):
        self.events += 1
        body = {"event_id": f"scale-{self.fill.filled}-{self.events}", "social_account_id": self.traffic.account.pk,
                "kind": "dm_received", "text": "scale",
                "contact": {"platform_user_id": f"scale-{self.fill.filled}-{self.events}"}}
        response = self.traffic_api.post("/v1/inbound-events", body, format="json")
        if response.status_code != 202 or response.json().get("outcome") != "enrolled":
            raise BenchFailure(f"inbound: {response.status_code} {response.content[:300]!r}")

    def warm_up(self) -> None:
        for name, operation in self.operations().items():
            if name.startswith("one tick"):
                self._prepare_tick()
            operation()

    def measure(self, rounds: int = ROUNDS) -> dict:
        """p95 per operation: the lower of `rounds` rounds of `samples` samples each, the rounds one after
        the other over all operations, so a burst of someone else's load on a shared machine spoils one round
        of an operation, not its figure."""
        results = {}
        for _ in range(rounds):
            for name, operation in self.operations().items():
                timings = []
                for _ in range(self.samples):
                    if name.startswith("one tick"):
                        self._prepare_tick()
                    started = time.perf_counter()
                    operation()
                    timings.append(time.perf_counter() - started)
                results[name] = min(results.get(name, float("inf")), p95_ms(timings))
        return results
