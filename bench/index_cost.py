"""`python -m bench.index_cost INDEX [INDEX …] [--rounds N] [--runs N]`: what indexes cost the runner's
writes. On one bench database, (b)'s in-process runner is measured in alternating rounds with the named
indexes of automation_runs dropped and recreated (same definitions, read from pg_indexes), so the machine's
drift lands on both sides; prints runs/s per round and the range on each side."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.index_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("indexes", nargs="+")
    parser.add_argument("--rounds", type=int, default=3, help="rounds on each side (default 3)")
    parser.add_argument("--runs", type=int, default=600, help="runs per round (default 600)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from bench import env

    env.prepare()
    import django

    django.setup()
    from django.db import connection

    from bench.data import World
    from bench.scenarios import runner_direct

    original, name = env.create_database()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [args.indexes])
            definitions = dict(cursor.fetchall())
        missing = set(args.indexes) - set(definitions)
        if missing:
            print(f"bench.index_cost: no such index: {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
        world = World()
        figures = {"with": [], "without": []}
        for _ in range(args.rounds):
            for side in ("with", "without"):
                with connection.cursor() as cursor:
                    for index, definition in definitions.items():
                        cursor.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
                                       if side == "with" else f'DROP INDEX IF EXISTS "{index}"')
                result = runner_direct(world, args.runs, budget_s=60.0)
                figures[side].append(result["runs_per_s"])
                print(f"{side:>7} {', '.join(definitions)}: {result['runs_per_s']} runs/s "
                      f"({result['runs']} runs)", flush=True)
        print(json.dumps({side: {"runs_per_s": values, "min": min(values), "max": max(values)}
                          for side, values in figures.items()}))
    finally:
        env.drop_database(original, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
