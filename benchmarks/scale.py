"""Scale benchmark (issue 10): the whole chain on SF copies of the embedded year, measured per step.

    make bench-scale SF=10        # or: SF=10 .venv/bin/python benchmarks/scale.py [--keep]
    .venv/bin/python benchmarks/scale.py --resume <kept folder> [--snapshot]   # after a failed step

Generates the scale-factor data set (resources/raw/scale_data.py) in a temporary folder, then builds
everything in a temporary lakehouse (LAKEHOUSE_ROOT, DAGSTER_HOME and LAKEHOUSE_SOURCES all point
into it), the same assets `make run` builds (assets/bootstrap.py plans them as two asset
backfills; here one job per step, so each step is measured alone). Each job runs in its own child
process: wall time, and the peak resident memory of the whole
process tree (the step's Python process plus its dbt subprocesses), sampled every 0.2 s.

Nothing is asserted: it prints a per-step table, writes results.json beside the step logs, and
ends with one line ``scale SF=N: build S s, peak M MiB, flights F``. The data set and lakehouse
are removed afterwards (SF=100 writes gigabytes) unless --keep; logs and results.json stay.

Tree memory is the sum of each process's RSS (pages shared between processes count once per
process), read from /proc (Linux), else psutil if installed. "ru_maxrss" is the kernel's
high-water mark of the step's processes (not sampled; see Measured).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(REPO_ROOT)]:  # this tree's code first, before the editable install's
    sys.path.insert(0, str(REPO_ROOT))

from assets.jobs import (  # noqa: E402
    BACKTEST_JOB,
    DAILY_JOB,
    MONITOR_JOB,
    PROMOTE_JOB,
    PUBLISH_JOB,
    REFERENCE_JOB,
    SCORE_JOB,
    TRAIN_JOB,
)
from resources.raw.scale_data import ScaleDataError, ScaleDataset, generate, parse_sf  # noqa: E402

SAMPLE_SECONDS = 0.2
MiB = 2**20

# The assets of `make run`, one child process per job so each is measured alone. "daily" and
# "monthly" ask for the job's whole partition range in one run, as a single-run backfill does.
APPROVAL = {"approver": "bench-scale (bootstrap)", "reason": "first production model of a scale benchmark"}
STEPS: tuple[tuple[str, str, str | None, dict], ...] = (
    ("reference", REFERENCE_JOB, None, {}),
    ("raw -> curated -> features", DAILY_JOB, "daily", {}),
    ("training", TRAIN_JOB, None, {}),
    ("promotion", PROMOTE_JOB, None, {"ops": {"ml__production_model": {"config": APPROVAL}}}),
    ("scoring", SCORE_JOB, "daily", {}),
    ("backtest", BACKTEST_JOB, "monthly", {}),
    ("monitoring", MONITOR_JOB, "monthly", {}),
    ("catalog", PUBLISH_JOB, None, {}),
)
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


# --- child: one job, in process, on the benchmark's DAGSTER_HOME ------------------------------


def run_step(job: str, partitions: str | None, config: dict, result_file: Path) -> int:
    started = time.perf_counter()
    import dagster as dg

    import assets.definitions
    from assets.definitions import build_definitions
    from resources.core.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from resources.core.settings import Settings

    Settings.from_env().ensure()
    defs = build_definitions()
    job_def = defs.resolve_job_def(job)
    tags = {}
    if partitions:
        keys = job_def.partitions_def.get_partition_keys()
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    loaded = time.perf_counter()
    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, run_config={**QUIET, **config}, raise_on_error=False
    )
    done = time.perf_counter()
    result_file.write_text(
        json.dumps(
            {
                "success": result.success,
                "load_s": round(loaded - started, 2),
                "execute_s": round(done - loaded, 2),
                "run_id": result.run_id,
                "partitions": tags,
                "code": str(Path(assets.definitions.__file__).resolve().parent.parent),
            }
        )
    )
    return 0 if result.success else 1


# --- parent: memory of a process tree --------------------------------------------------------


def tree_rss(root: int) -> tuple[int, int]:
    """(sum of RSS in bytes, number of processes) over ``root`` and all its descendants."""
    try:
        procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:  # gone between listing and reading
            pass
    return total, len(procs)


@dataclass
class StepResult:
    step: str
    job: str
    success: bool
    wall_s: float
    load_s: float | None = None  # child start-up: imports and build_definitions (not in make run's per-job time)
    execute_s: float | None = None
    peak_tree_mib: float = 0.0
    ru_maxrss_mib: float = 0.0
    peak_processes: int = 0
    samples: int = 0
    loadavg_1m_start: float = 0.0
    loadavg_1m_end: float = 0.0
    log: str = ""
    partitions: dict = field(default_factory=dict)


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_tree_bytes: int  # largest sampled sum over the tree
    # The kernel's high-water mark (ru_maxrss) over the child and the descendants it reaped: not
    # sampled, but not a clean "largest process" either (a forked child counts, until its exec,
    # the pages it shares with its parent: 200 + 150 MiB processes read 366 MiB in the test).
    largest_process_bytes: int
    peak_processes: int
    samples: int


def measure(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, progress: Path | None = None) -> Measured:
    """Run ``cmd`` to its end, sampling its process tree's RSS every 0.2 s. ``progress`` is
    rewritten every ~10 s, so a run killed from outside still leaves its peak so far."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak, procs, samples = 0, 0, 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, n = tree_rss(proc.pid)
            peak, procs, samples = max(peak, rss), max(procs, n), samples + 1
            if progress is not None and samples % 50 == 1:
                _write_json(
                    progress,
                    {
                        "running_s": round(time.perf_counter() - started, 1),
                        "peak_tree_mib_so_far": round(peak / MiB, 1),
                        "processes": procs,
                    },
                )
            time.sleep(SAMPLE_SECONDS)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    largest = usage.ru_maxrss * 1024  # KiB on Linux
    # A step shorter than one sample still gets a peak, from the kernel's mark.
    return Measured(proc.returncode, time.perf_counter() - started, peak or largest, largest, procs, samples)


def measure_step(index: int, name: str, job: str, env: dict[str, str], work: Path, code: Path) -> StepResult:
    log = work / "logs" / f"{index:02d}_{job}.log"
    result_file = work / "logs" / f"{index:02d}_{job}.json"
    load_start = os.getloadavg()[0]
    m = measure(
        [sys.executable, str(code / "benchmarks" / "scale.py"), "--step", str(index), "--result", str(result_file)],
        code,
        env,
        log,
        work / "logs" / f"{index:02d}_{job}.progress.json",
    )
    child = json.loads(result_file.read_text()) if result_file.exists() else {}
    return StepResult(
        step=name,
        job=job,
        success=m.returncode == 0 and bool(child.get("success")),
        wall_s=round(m.wall_s, 1),
        load_s=child.get("load_s"),
        execute_s=child.get("execute_s"),
        peak_tree_mib=round(m.peak_tree_bytes / MiB, 1),
        ru_maxrss_mib=round(m.largest_process_bytes / MiB, 1),
        peak_processes=m.peak_processes,
        samples=m.samples,
        loadavg_1m_start=round(load_start, 2),
        loadavg_1m_end=round(os.getloadavg()[0], 2),
        log=str(log),
        partitions=child.get("partitions", {}),
    )


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def _tail(path: str, lines: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# The analyst's question of issue 10: on-time rate by carrier and month over curated.fct_flights.
ANALYST_AGGREGATE = """
    select carrier, date_trunc('month', flight_date) as month, count(*) as flights,
           count(*) filter (where arrived_late = false) / count(arrived_late) as on_time_rate
    from curated.fct_flights group by all order by all"""


def _catalog_counts(lakehouse: Path) -> dict:
    from resources.catalog.publish import connect_catalog
    from resources.core.settings import Settings

    with connect_catalog(Settings(root=lakehouse, env="dev")) as con:
        flights, distinct = con.execute(
            "select count(*), count(distinct flight_id) from curated.fct_flights"
        ).fetchall()[0]
        scores = con.execute("select count(*) from ml.flight_delay_scores").fetchall()[0][0]
        timings = []
        for _ in range(5):  # a fresh analyst connection's first query included (the first of the five)
            t = time.perf_counter()
            rows = len(con.execute(ANALYST_AGGREGATE).fetchall())
            timings.append(time.perf_counter() - t)
    return {
        "fct_flights": flights,
        "distinct_flight_id": distinct,
        "scores": scores,
        "analyst_aggregate_rows": rows,
        "analyst_aggregate_first_s": round(timings[0], 3),
        "analyst_aggregate_median_s": round(sorted(timings)[2], 3),
    }


def print_table(steps: list[StepResult]) -> None:
    print(
        f"{'step':<28} {'job':<16} {'wall s':>8} {'load s':>7} {'tree MiB':>9} {'ru_maxrss MiB':>13} "
        f"{'procs':>5} {'load1m':>7}  status"
    )
    for s in steps:
        load = f"{s.load_s:7.1f}" if s.load_s is not None else f"{'-':>7}"
        print(
            f"{s.step:<28} {s.job:<16} {s.wall_s:8.1f} {load} {s.peak_tree_mib:9.0f} "
            f"{s.ru_maxrss_mib:13.0f} {s.peak_processes:5d} {s.loadavg_1m_end:7.2f}  "
            f"{'ok' if s.success else 'FAILED'}"
        )


def snapshot_code(work: Path) -> Path:
    """The committed tree (git archive HEAD) with its own dbt manifest: a checkout that others
    edit during an hour-long run would otherwise change the code between steps."""
    code = work / "code"
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(code, filter="data")
    subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--profiles-dir", ".", "--quiet"],
        cwd=code / "dbt_project",
        check=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},
    )
    return code


def benchmark(sf: int, keep: bool, workdir: Path | None, snapshot: bool = False, resume: Path | None = None) -> int:
    """``resume``: a kept folder of a run that stopped; its failed step and the ones after it run
    again with this tree's code, on its data set and lakehouse, the steps it completed kept."""
    if resume is not None:
        work = resume.resolve()
        earlier = json.loads((work / "results.json").read_text())
        sf = earlier["sf"]
    else:
        work = Path(tempfile.mkdtemp(prefix=f"bench-scale-sf{sf}-", dir=workdir)).resolve()
        (work / "logs").mkdir()
    data, lakehouse, home = work / "data", work / "lakehouse", work / "dagster_home"
    if snapshot:
        shutil.rmtree(work / "code", ignore_errors=True)
    code = snapshot_code(work) if snapshot else REPO_ROOT
    home.mkdir(exist_ok=True)
    # The instance config of `make run` (run queue, pools, run monitoring), in a home of our own.
    shutil.copyfile(code / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    print(
        f"[bench-scale] SF={sf} in {work}"
        + (f", code of {_git('rev-parse', 'HEAD')[:12]} in {code}" if snapshot else "")
        + (" (resumed)" if resume else ""),
        flush=True,
    )

    if resume is not None:
        dataset = ScaleDataset(**earlier["dataset"])
        generate_s = earlier["generate_s"]
        done = [StepResult(**s) for s in earlier["steps"] if s["success"]]
    else:
        started = time.perf_counter()
        dataset = generate(sf, data)
        generate_s = time.perf_counter() - started
        done = []
        print(
            f"[bench-scale] generated {dataset.flights:,} flights over {dataset.days} days, {dataset.planes:,} "
            f"planes ({dataset.bytes_written / MiB:,.0f} MiB) in {generate_s:.1f}s",
            flush=True,
        )

    env = {
        **os.environ,
        "LAKEHOUSE_ENV": "dev",
        "LAKEHOUSE_ROOT": str(lakehouse),
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_SOURCES": dataset.sources_file,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # dbt's subprocess imports our plugin (resources/) too: from the code being measured.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    results_file = work / "results.json"
    results = {
        "sf": sf,
        "complete": False,
        "success": False,
        "flights_generated": dataset.flights,
        "generate_s": round(generate_s, 1),
        "dataset": asdict(dataset),
        "steps": [],
        "host": {
            "cpus": os.cpu_count(),
            "mem_total_mib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MiB),
        },
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty_files": len(_git("status", "--porcelain").splitlines())},
        "work_dir": str(work),
        "code": "git archive HEAD" if snapshot else "working tree",
    }
    if resume is not None:  # which code measured which steps
        failed = [s for s in earlier["steps"] if not s["success"]]
        results["resumed"] = [
            *earlier.get("resumed", []),
            {"from_step": len(done), "git": results["git"], "failed_before": failed},
        ]
        results["git"] = earlier["git"]
    steps: list[StepResult] = list(done)
    for index, (name, job, _, _) in enumerate(STEPS):
        if index < len(done):
            continue
        step = measure_step(index, name, job, env, work, code)
        steps.append(step)
        print(
            f"[bench-scale] {name} ({job}): {'ok' if step.success else 'FAILED'} in {step.wall_s:.1f}s, "
            f"peak {step.peak_tree_mib:,.0f} MiB",
            flush=True,
        )
        # Written after every step: a run stopped after an hour still leaves what it measured.
        results["steps"] = [asdict(s) for s in steps]
        _write_json(results_file, results)
        if not step.success:
            print(f"--- last lines of {step.log} ---\n{_tail(step.log)}\n---")
            break
    build_s = round(sum(s.wall_s for s in steps), 1)
    peak = max(s.peak_tree_mib for s in steps)
    ok = len(steps) == len(STEPS) and all(s.success for s in steps)
    counts = _catalog_counts(lakehouse) if ok else {}
    sizes = {"data_set_bytes": dataset.bytes_written, "lakehouse_bytes": _tree_bytes(lakehouse)}
    results |= {
        "complete": True,
        "success": ok,
        "build_s": build_s,
        "peak_tree_mib": peak,
        "catalog": counts,
        "sizes": sizes,
        "loadavg_end": os.getloadavg(),
        "kept": keep or not ok,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _write_json(results_file, results)
    if ok and not keep:  # everything but the logs and results (the pipeline may add folders beside the root)
        for path in work.iterdir():
            if path.name not in ("logs", results_file.name):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()

    print()
    print_table(steps)
    print(
        f"\ndata set: {dataset.bytes_written / MiB:,.0f} MiB generated in {generate_s:.1f}s; "
        f"lakehouse: {sizes['lakehouse_bytes'] / MiB:,.0f} MiB"
        + (f"; catalog: {counts['fct_flights']:,} flights, {counts['scores']:,} scores" if counts else "")
    )
    if counts:
        print(
            f"analyst aggregate (on-time rate by carrier and month, {counts['analyst_aggregate_rows']} rows) on "
            f"the published catalog: first {counts['analyst_aggregate_first_s']:.3f} s, "
            f"median of 5 {counts['analyst_aggregate_median_s']:.3f} s"
        )
    scoring = next((s for s in steps if s.job == SCORE_JOB and s.execute_s), None)
    if counts and scoring is not None:
        print(
            f"scoring: {counts['scores']:,} flights in {scoring.execute_s:.1f} s of run time "
            f"({counts['scores'] / scoring.execute_s:,.0f} rows/s end to end, the run's own overhead included)"
        )
    print(f"results: {results_file}" + ("" if ok and not keep else f" (data and lakehouse kept in {work})"))
    if not ok:
        failed = steps[-1]
        print(
            f"scale SF={sf}: FAILED at {failed.step} ({failed.job}) after {build_s} s, peak {peak:,.0f} MiB, "
            f"flights {dataset.flights}"
        )
        return 1
    print(f"scale SF={sf}: build {build_s:.0f} s, peak {peak:.0f} MiB, flights {counts['fct_flights']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/scale.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sf", default=None, help="scale factor (default: the SF environment variable)")
    parser.add_argument("--keep", action="store_true", help="keep the data set and lakehouse")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder (default: TMPDIR)")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="run the committed code (git archive HEAD), not the working tree others may be editing",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="a kept folder of a run that failed: run its failed step and the rest with this code",
    )
    parser.add_argument("--step", type=int, default=None, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step is not None:
        _, job, partitions, config = STEPS[args.step]
        return run_step(job, partitions, config, args.result)
    if args.resume is not None:
        return benchmark(0, True, None, args.snapshot, resume=args.resume)
    raw = args.sf if args.sf is not None else os.environ.get("SF")
    if raw is None:
        print("bench-scale: give a scale factor: make bench-scale SF=10 (or --sf 10)", file=sys.stderr)
        return 2
    try:
        sf = parse_sf(raw)
    except ScaleDataError as exc:
        print(f"bench-scale: {exc}", file=sys.stderr)
        return 2
    return benchmark(sf, args.keep, args.workdir, args.snapshot)


if __name__ == "__main__":
    sys.exit(main())
