"""`--profile`: pyinstrument over the runner (direct advances) and over one 200-job tick, written as text
to bench/results/profile-runner.txt and profile-tick.txt (both git-ignored)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from bench.data import World, delay_graph, runner_graph


def profile(world: World, out_dir: Path, runs: int = 300, jobs: int = 200) -> dict:
    from pyinstrument import Profiler

    from automations.runtime.runner import advance
    from automations.runtime.scheduler import tick

    written = {}
    automation = world.automation("Profile runner", runner_graph())
    ids = world.active_runs(automation, runs)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for run_id in ids:
        advance(run_id)
    profiler.stop()
    written["runner"] = _write(profiler, out_dir / "profile-runner.txt")

    automation = world.automation("Profile tick", delay_graph())
    world.delayed_runs(automation, jobs, timezone.now() - timedelta(seconds=1))
    profiler = Profiler(interval=0.0005)
    profiler.start()
    tick(batch=jobs)
    profiler.stop()
    written["tick"] = _write(profiler, out_dir / "profile-tick.txt")
    return written


def _write(profiler, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    return str(path)
