"""Run every benchmark suite and regenerate the tables: one command (``make bench-all``).

Each suite (``_report.SUITES``) runs as its own process, one after another (they would skew each other's
timings), with a throwaway ``valkey-server`` of its own. Its markdown report and JSON rows go to
``benchmarks/results/latest/<suite>.md`` / ``.json``; then

* ``benchmarks/results/latest.md`` gets every suite's full report, with its command and duration;
* the generated block ``speed`` of ``README.md`` and ``latest`` of ``benchmarks/README.md`` get the
  headline table (agentmem's p50 next to its raw floor and the peers', from the JSON of every suite that
  has run, this time or before) and the run's commands.

Dated sections of ``benchmarks/README.md`` ("Session N") stay as the records of the runs they name.

Usage::

    python benchmarks/run_all.py [--long] [--only core,store] [--skip crewai]

``--long`` adds the 100k sizes (about an hour more). A suite that fails is reported and the others still
run; the exit status is then 1 and its previous results stay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import SUITES, Suite, demote, headline, splice, suite  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LATEST = HERE / "results" / "latest"


def command(s: Suite, long: bool, json_path: Path, scratch: Path) -> list[str]:
    """The suite's command line (the interpreter running this script, the suite's arguments, its JSON)."""
    args = [sys.executable, str(HERE / s.script), *(s.long if long else s.quick), "--json", str(json_path)]
    if s.name == "crewai":  # its embedded-backend rows need a database file of their own
        args += ["--embedded-url", f"sqlite:///{scratch / 'crewai.db'}"]
    return args


def shown(argv: list[str]) -> str:
    """A command as the report shows it: relative to the repository, without ``--json``, scratch files
    as placeholders."""
    parts = [Path(argv[0]).name if argv[0] == sys.executable else argv[0], *argv[1:]]
    if "--json" in parts:  # where the rows went is the runner's business, not the reader's
        at = parts.index("--json")
        del parts[at : at + 2]
    out = []
    for p in parts:
        p = p.replace(str(ROOT) + os.sep, "")
        if p.startswith("sqlite:///"):
            p = "sqlite:///<tmp>/crewai.db"
        out.append(p)
    return shlex.join(["python" if out[0].startswith("python") else out[0], *out[1:]])


def run_suite(s: Suite, long: bool, scratch: Path) -> tuple[bool, float, str]:
    """Run one suite; its report and JSON replace the previous ones only when it succeeded."""
    LATEST.mkdir(parents=True, exist_ok=True)
    fresh_json = scratch / f"{s.name}.json"
    argv = command(s, long, fresh_json, scratch)
    print(f"== {s.name}: {shown(argv)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not fresh_json.exists():
        print(f"!! {s.name} failed (exit {done.returncode}); its previous results stay", file=sys.stderr)
        return False, seconds, shown(argv)
    (LATEST / f"{s.name}.json").write_text(fresh_json.read_text())
    meta = {"command": shown(argv), "seconds": round(seconds), "at": _now(), "commit": _commit()}
    (LATEST / f"{s.name}.meta.json").write_text(json.dumps(meta, indent=2))
    (LATEST / f"{s.name}.md").write_text(done.stdout)
    return True, seconds, shown(argv)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if done.returncode == 0 else "?"


def load() -> tuple[dict[str, Any], dict[str, Any]]:
    """Every suite's latest JSON and meta (suites never run are absent)."""
    results, metas = {}, {}
    for s in SUITES:
        data, meta = LATEST / f"{s.name}.json", LATEST / f"{s.name}.meta.json"
        if data.exists() and meta.exists():
            results[s.name] = json.loads(data.read_text())
            metas[s.name] = json.loads(meta.read_text())
    return results, metas


def runs_table(metas: dict[str, Any]) -> str:
    lines = ["| suite | command | run at | commit | seconds |", "|---|---|---|---|--:|"]
    for s in SUITES:
        if s.name in metas:
            m = metas[s.name]
            lines.append(f"| {s.name} | `{m['command']}` | {m['at']} | {m['commit']} | {m['seconds']} |")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def write_reports(results: dict[str, Any], metas: dict[str, Any]) -> None:
    table = headline(results)
    regenerate = "Regenerate with `make bench-all` (`python benchmarks/run_all.py`; `--long` adds 100k)."
    speed = (
        f"{table}\n\nOne run per suite on this machine ({machine()}); ratios of p50s (agentmem ÷ floor: "
        "lower is better, 1.00x is the floor; peer ÷ agentmem: above 1 means agentmem is faster). "
        f"{regenerate} Every row, the targets and the method: `benchmarks/README.md`."
    )
    readme = ROOT / "README.md"
    readme.write_text(splice(readme.read_text(), "speed", speed))
    bench_readme = HERE / "README.md"
    latest = (
        f"{table}\n\n{regenerate} The runs:\n\n{runs_table(metas)}\n\nEach suite's full report (every "
        "row, its targets and checks): [`results/latest.md`](results/latest.md)."
    )
    bench_readme.write_text(splice(bench_readme.read_text(), "latest", latest))
    parts = [
        "# Latest benchmark run\n",
        f"Generated by `benchmarks/run_all.py` ({machine()}). {regenerate}\n",
        "## Headline\n",
        table,
        "",
    ]
    for s in SUITES:
        report = LATEST / f"{s.name}.md"
        if s.name in metas and report.exists():
            m = metas[s.name]
            parts += [
                f"## {s.title}\n",
                f"`{m['command']}` -- {m['at']}, commit {m['commit']}, {m['seconds']} s\n",
                demote(report.read_text().strip(), 2),
                "",
            ]
    (HERE / "results" / "latest.md").write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true", help="also the 100k sizes")
    ap.add_argument("--only", help="comma-separated suites to run (the others' previous results stay)")
    ap.add_argument("--skip", default="", help="comma-separated suites not to run")
    ap.add_argument("--render-only", action="store_true", help="run nothing; rewrite the tables from results")
    args = ap.parse_args(argv)
    try:
        chosen = [suite(n.strip()) for n in args.only.split(",")] if args.only else list(SUITES)
        skipped = {suite(n.strip()).name for n in args.skip.split(",") if n.strip()}
    except KeyError as exc:
        ap.error(str(exc.args[0]))
    failed = []
    if not args.render_only:
        with tempfile.TemporaryDirectory() as scratch:
            for s in chosen:
                if s.name in skipped:
                    continue
                ok, seconds, _ = run_suite(s, args.long, Path(scratch))
                print(f"== {s.name}: {'done' if ok else 'FAILED'} in {seconds:.0f} s", file=sys.stderr)
                if not ok:
                    failed.append(s.name)
    results, metas = load()
    write_reports(results, metas)
    print(headline(results))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
