"""Time the grader: one submission, and a folder of N submissions with 1 and with W workers.

    python -m mlcourse.grading.throughput [--submissions 20] [--workers 2] [--repeat 5] [--cell-sleep 0]

The folder is made of copies of the solution notebooks (all five assignments, in turn), so every
submission runs its full set of tests.  Each setting runs --repeat times, alternating (so a busy
moment of the machine hits both); the medians give the speed-up, the best runs are shown beside
it.  Prints the timings and the speed-up; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from . import grader, runner


def _default_solutions():
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "solutions")


def make_folder(solutions, n, dest, cell_sleep=0.0):
    """dest filled with n copies of the solution notebooks, cycling through them.

    cell_sleep > 0 adds a cell sleeping that long to each copy: grading then waits more than it
    computes, which shows the workers' overlap even on a machine busy with other jobs.
    """
    sources = sorted(f for f in os.listdir(solutions) if f.endswith(".ipynb"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks in {solutions}")
    for i in range(n):
        src = sources[i % len(sources)]
        target = os.path.join(dest, f"{src[:-len('.ipynb')]}_learner{i:03d}.ipynb")  # the name says the assignment
        shutil.copy(os.path.join(solutions, src), target)
        if cell_sleep > 0:
            from ._nb import nbformat
            nb = nbformat.read(target, as_version=4)
            cell = nbformat.v4.new_code_cell(f"import time\ntime.sleep({cell_sleep!r})")
            cell.pop("id", None)
            nb.cells.append(cell)
            nbformat.write(nb, target)
    return dest


def timed(path, workers, limits):
    t0 = time.perf_counter()
    reports = grader.grade_path(path, limits=limits, workers=workers)
    return time.perf_counter() - t0, reports


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mlcourse.grading.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--submissions", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--solutions", default=_default_solutions())
    p.add_argument("--cell-sleep", type=float, default=0.0,
                   help="add a cell sleeping this long to every copy (shows the overlap on a busy machine)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each setting, alternating (medians reported)")
    args = p.parse_args(argv)
    limits = runner.Limits()
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-") as tmp:
        os.makedirs(os.path.join(tmp, "subs"))
        folder = make_folder(args.solutions, args.submissions, os.path.join(tmp, "subs"), args.cell_sleep)
        singles = []
        for name in sorted(os.listdir(args.solutions)):
            if name.endswith(".ipynb"):
                t, reps = timed(os.path.join(args.solutions, name), 1, limits)
                singles.append((name, t, reps[0]))
        print("one submission (wall time, including the child process start):")
        for name, t, r in singles:
            print(f"  {name:<34} {t:6.2f} s   score {r['score']:g}/{r['max_score']:g}")
        print(f"  slowest: {max(t for _, t, _ in singles):.2f} s (target <= 15 s)")
        from .reports import sandbox_line
        print("  " + sandbox_line(singles[0][2]["sandbox"]))
        one, many, full = [], [], True
        for _ in range(args.repeat):  # alternate, so a busy moment of the machine hits both settings
            for workers, times in ((1, one), (args.workers, many)):
                t, reps = timed(folder, workers, limits)
                times.append(t)
                full &= all(r["score"] == r["max_score"] > 0 for r in reps)
        t1, tw = statistics.median(one), statistics.median(many)
        print(f"{args.submissions} submissions, 1 worker:  median {t1:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in one)})")
        print(f"{args.submissions} submissions, {args.workers} workers: median {tw:6.2f} s   "
              f"(runs: {', '.join(f'{t:.2f}' for t in many)})")
        print(f"speed-up of the medians: {t1 / tw:.2f}x (of the best runs: {min(one) / min(many):.2f}x) on "
              f"{os.cpu_count()} CPU(s) (target >= 1.6x with 2 workers); all full marks: {full}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average during the runs: {load:.2f} (other jobs on the machine lower the speed-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
