"""The program that runs *inside* the sandbox for every testgen job, and the pytest plugin that
records what pytest did (``-p _gantry_driver``).

It is shipped into each job as ``_gantry/_gantry_driver.py`` and imports nothing of Gantry: only
the standard library, and pytest, coverage, Hypothesis and CrossHair from the interpreter the
job runs. Each command keeps to its own soft deadline (``--deadline``, seconds from its start)
and writes its results as files, so a step that runs out of time still returns what it did;
the job's hard wall clock (the sandbox's process-group kill) is only the backstop.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

# -- the pytest plugin ---------------------------------------------------------------------

_report_file = None


def pytest_addoption(parser):
    parser.addoption("--gantry-report", default=None, help="write JSON lines of outcomes here")
    parser.addoption("--gantry-test-timeout", type=float, default=0, help="seconds per test")


class TestTimeout(Exception):
    """A test ran past --gantry-test-timeout (raised in it by SIGALRM, as pytest-timeout's
    signal method does): a test that hangs fails alone instead of eating the whole run."""


def pytest_configure(config):
    global _report_file
    path = config.getoption("--gantry-report")
    if path:
        _report_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at unconfigure


def pytest_unconfigure(config):
    if _report_file is not None:
        _report_file.close()


def _record(**fields):
    if _report_file is not None:
        _report_file.write(json.dumps(fields) + "\n")
        _report_file.flush()  # a rerun killed for time still tells which test was running


def pytest_collection_finish(session):
    for item in session.items:
        _record(collected=item.nodeid)


def pytest_collectreport(report):
    if report.failed:
        _record(collect_error=report.nodeid, longrepr=str(report.longrepr)[-4000:])


def pytest_runtest_logstart(nodeid, location):
    _record(start=nodeid)


def _alarm(signum, frame):
    raise TestTimeout("the test ran past its time limit")


def _hookwrapper(function):
    import pytest

    return pytest.hookimpl(hookwrapper=True)(function)


@_hookwrapper
def pytest_runtest_call(item):
    limit = item.config.getoption("--gantry-test-timeout")
    if limit:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if limit:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@_hookwrapper
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.outcome != "passed":
        excinfo = call.excinfo
        _record(
            nodeid=report.nodeid,
            when=report.when,
            outcome=report.outcome,
            assertion=bool(excinfo and excinfo.errisinstance(AssertionError)),
            exception=excinfo.typename if excinfo else None,
            longrepr=report.longreprtext[-4000:] if report.failed else "",
        )


# -- commands ------------------------------------------------------------------------------


def _run_bounded(argv, timeout, stdout=None):
    """Run argv in its own process group, killed whole at ``timeout``; True if it finished."""
    proc = subprocess.Popen(argv, stdout=stdout, start_new_session=True)
    try:
        proc.wait(timeout=max(timeout, 0.1))
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False


def ghostwrite(args):
    import importlib

    from hypothesis.extra import ghostwriter

    module = importlib.import_module(args.module)
    things = [getattr(module, name) for name in args.symbols] or [module]
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(ghostwriter.magic(*things, style="pytest"))


def crosshair(args):
    end = time.monotonic() + args.deadline
    targets = [f"{args.module}.{name}" for name in args.symbols] or [args.module]
    os.makedirs(args.out_dir, exist_ok=True)
    for index, target in enumerate(targets):
        left = end - time.monotonic()
        share = left / (len(targets) - index)  # what is left, shared among what is left
        if share < 1:
            break
        argv = [sys.executable, "-m", "crosshair", "cover", target]
        argv += ["--example_output_format=pytest", f"--per_condition_timeout={share * 0.7:.1f}"]
        # Stop once 50 paths in a row found no new coverage: a loop over a string has endless
        # paths, and without this its search takes the whole share (8 s instead of 2 here).
        argv += ["--max_uninteresting_iterations=50"]
        path = os.path.join(args.out_dir, f"{index:03d}.py")
        with open(path + ".part", "w", encoding="utf-8") as out:
            finished = _run_bounded(argv, share, stdout=out)
        if finished:
            os.rename(path + ".part", path)


def _pytest(args, extra, timeout):
    argv = [sys.executable, "-m", "pytest", "-p", "_gantry_driver", "-p", "no:randomly"]
    argv += ["-p", "no:cacheprovider", "-q", "--rootdir=.", *extra]
    return _run_bounded(argv, timeout, stdout=subprocess.DEVNULL)


def rerun(args):
    """Run the node ids ``args.runs`` times, each time in another seeded random order, until
    the deadline: a run cut off by it is left incomplete and the runs after it are not made."""
    end = time.monotonic() + args.deadline
    with open(args.ids, encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    for run in range(args.runs):
        left = end - time.monotonic()
        if left < 1:
            break
        order = list(ids)
        random.Random(args.seed * 1000 + run).shuffle(order)
        report = os.path.join(args.report_dir, f"run{run}.jsonl")
        extra = [f"--gantry-report={report}", f"--gantry-test-timeout={args.test_timeout}"]
        if not _pytest(args, [*extra, *order], left):
            with open(report, "a", encoding="utf-8") as f:
                f.write(json.dumps({"incomplete": True}) + "\n")
            break


def cover(args):
    """Run the node ids once under coverage.py, a dynamic context per test: the JSON report of
    the run, and per test the target's lines and arcs it ran."""
    import coverage
    import pytest

    with open(args.ids, encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    target = os.path.abspath(args.include)
    cov = coverage.Coverage(branch=True, include=[target], data_file=".gantry.coverage")

    class Contexts:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_protocol(self, item, nextitem):
            cov.switch_context(item.nodeid)
            yield
            cov.switch_context("")

    cov.start()
    try:
        pytest.main(
            ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "--rootdir=.", *ids],
            plugins=[Contexts()],
        )
    finally:
        cov.stop()
        cov.save()
    cov.json_report(outfile=args.json, include=[target])
    data = cov.get_data()
    per_test = {}
    for context in data.measured_contexts():
        if not context:
            continue
        data.set_query_context(context)
        per_test[context] = {
            "lines": sorted(data.lines(target) or ()),
            "arcs": sorted(data.arcs(target) or ()),
        }
    with open(args.contexts, "w", encoding="utf-8") as f:
        json.dump(per_test, f)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="_gantry_driver")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ghostwrite")
    p.add_argument("module")
    p.add_argument("symbols", nargs="*")
    p.add_argument("--out", required=True)
    p = sub.add_parser("crosshair")
    p.add_argument("module")
    p.add_argument("symbols", nargs="*")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("rerun")
    p.add_argument("ids")
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--report-dir", required=True)
    p.add_argument("--test-timeout", type=float, default=10.0)
    p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("cover")
    p.add_argument("ids")
    p.add_argument("--include", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--contexts", required=True)
    args = parser.parse_args(argv)
    if args.command == "rerun":
        os.makedirs(args.report_dir, exist_ok=True)
    {"ghostwrite": ghostwrite, "crosshair": crosshair, "rerun": rerun, "cover": cover}[
        args.command
    ](args)


if __name__ == "__main__":
    main()
