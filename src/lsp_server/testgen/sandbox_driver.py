"""The program that runs *inside* the sandbox for every testgen job, and the pytest plugin that
records what pytest did (``-p _gantry_driver``).

It is shipped into each job as ``_gantry/_gantry_driver.py`` and imports nothing of Gantry: only
the standard library, and pytest, coverage, Hypothesis and CrossHair from the interpreter the
job runs. Each command keeps to its own soft deadline (``--deadline``, seconds from its start)
and writes its results as files, so a step that runs out of time still returns what it did;
the job's hard wall clock (the sandbox's process-group kill) is only the backstop.

Who may write the verdicts. Candidate tests are untrusted code (a model wrote them, and the code
under test may have told it what to write), and whatever runs in a process can rewrite what that
process reports. So the commands that run candidates (``collect``, ``rerun``, ``cover``) never
run one in their own process: the driver, started with ``python -I`` (no project module can
shadow what it imports), runs each pytest as a child in a sandbox of its own, nested in the
job's (bubblewrap: new user, pid, mount, network and IPC namespaces, no /proc), on a fresh copy
of the job's starting files. The child sees neither the driver's files nor its process; its pid
namespace, and every process a test left behind in it, dies with it. The driver then reads the
child's report and exit status, believes them only if they agree (pytest's own last record, its
exit status, equals the status the driver saw: a test that ends the process early, or forges
records and exits, has no such record), and writes the results the host reads. So a candidate
can misreport at most its own run: never the suite's, nor a test's that ran in another process.
The host keeps a test only on its *own* run (``cover`` runs each one alone, under coverage), so
no test is kept on what another wrote. Lying about itself from inside its own process stays
possible, as for any code that runs: the host screens model-written tests for the obvious means
(candidates_model.screen), and a person reads what is kept before it lands.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PROJECT_SITE = "project_site.txt"
"""Beside this file when the project's installed packages are bound in (testgen.project_env)."""


def add_project_site():
    """The project's installed packages, on the path after Gantry's own tools (a project's
    older pytest must not replace the one the driver speaks to); their folder, or None."""
    import site

    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), PROJECT_SITE)) as f:
            folder = f.read().strip()
    except OSError:
        return None
    if not os.path.isdir(folder):  # not bound: a gateway runs this job
        return None
    site.addsitedir(folder)
    return folder


_SITE = add_project_site()  # here, so every pytest child that loads this plugin sees them too


# -- the pytest plugin (in the child) -----------------------------------------------------

_report_file = None
REPORT = "report.jsonl"
"""The child's report, in its own job directory."""


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
        _hypothesis_profile()


def _hypothesis_profile():
    """Property tests run five times over: fewer examples each, and no deadline (a loaded
    machine makes deadlines the flakiness it would report) nor example database (runs must
    not feed each other)."""
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("gantry", max_examples=30, deadline=None, database=None)
    settings.load_profile("gantry")


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


def pytest_sessionfinish(session, exitstatus):
    # The last record: the driver believes a report only when the child exits with this status.
    _record(finished=int(exitstatus))


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
            duration=round(report.duration, 3),
        )


# -- running children ---------------------------------------------------------------------

MAX_REPORT_BYTES = 4 * 1024 * 1024
_PRISTINE = os.path.join(tempfile.gettempdir(), "gantry-pristine")
_RUNS = os.path.join(tempfile.gettempdir(), "gantry-runs")
_PREFIXES = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
"""Where the interpreter the children run lives."""


def _run_bounded(argv, timeout, stdout=None, cwd=None, env=None):
    """Run argv in its own process group, killed whole at ``timeout``: its exit status, or
    None when it was killed for time."""
    proc = subprocess.Popen(argv, stdout=stdout, cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


class Children:
    """Runs pytest children, each nested in a sandbox of its own on a fresh copy of the job's
    starting files (``isolated``), or, where the user allowed running without a sandbox and
    none can be made, as plain processes on such a copy."""

    def __init__(self, isolated):
        self.isolated = isolated
        self.count = 0
        if os.path.isdir(_PRISTINE):
            shutil.rmtree(_PRISTINE)
        # The starting files, taken before any candidate runs: every child starts from these.
        shutil.copytree(".", _PRISTINE, symlinks=True)
        os.makedirs(_RUNS, exist_ok=True)

    def _bwrap(self, run_dir, env):
        argv = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
        argv += ["--unshare-uts", "--die-with-parent", "--new-session", "--clearenv"]
        for name, value in env.items():
            argv += ["--setenv", name, value]
        # No /proc: through it the driver's files and memory would be in reach.
        argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/proc"]
        argv += ["--bind", run_dir, "/job", "--tmpfs", "/tmp", "--chdir", "/job"]
        # The interpreter, or the project's packages, may live under /tmp (a checkout there):
        # the fresh /tmp would hide them, so they are bound again, read-only.
        for prefix in sorted({os.path.realpath(p) for p in (*_PREFIXES, _SITE) if p}):
            if prefix.startswith("/tmp/"):
                argv += ["--ro-bind", prefix, prefix]
        return [*argv, "--"]

    def probe(self):
        """Why children cannot be isolated here, or None."""
        if not self.isolated:
            return None
        if shutil.which("bwrap") is None:
            return "bubblewrap is not in the sandbox"
        try:
            status = _run_bounded([*self._bwrap("/", {}), "true"], 30)
        except OSError as exc:
            return f"bubblewrap cannot start: {exc}"
        return None if status == 0 else f"bubblewrap cannot nest here (exit status {status})"

    def run(self, argv, timeout, rerun=None, overlay=None):
        """(exit status or None when killed for time, the child's report events, and the path
        of its directory, removed by the caller with ``done``); ``overlay``: relative path ->
        text written over the starting files (a mutant of the target)."""
        self.count += 1
        run_dir = os.path.join(_RUNS, f"run{self.count}")
        shutil.copytree(_PRISTINE, run_dir, symlinks=True)
        for relpath, text in (overlay or {}).items():
            path = os.path.join(run_dir, relpath)
            os.remove(path)  # a link the project left is replaced, not written through
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        env = {k: v for k, v in os.environ.items() if k not in ("PWD", "OLDPWD")}
        env["HOME"] = "/job" if self.isolated else run_dir
        # The plugins installed beside Gantry are not the project's, and loading them costs
        # seconds a run; a project's own (conftest, `-p` in its addopts) still load.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        if rerun is not None:
            env["GANTRY_RERUN"] = str(rerun)  # so a test may tell reruns apart
        if self.isolated:
            command = [*self._bwrap(run_dir, env), *argv]
            status = _run_bounded(command, timeout, stdout=subprocess.DEVNULL)
        else:
            # The job's paths name /job, where a sandbox would have put it.
            path = env.get("PYTHONPATH", "").split(os.pathsep)
            env["PYTHONPATH"] = os.pathsep.join(
                run_dir + p[len("/job") :] if p == "/job" or p.startswith("/job/") else p
                for p in path
            )
            status = _run_bounded(argv, timeout, stdout=subprocess.DEVNULL, cwd=run_dir, env=env)
        return status, _events(os.path.join(run_dir, REPORT)), run_dir

    def done(self, run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)


def _events(path):
    """The child's JSON lines, as far as they parse; its last line, if it is pytest's final
    record, is what makes the report believable."""
    events = []
    try:  # not through a link the child left: it would point into the driver's own files
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            data = f.read(MAX_REPORT_BYTES + 1)
    except OSError:
        return events
    if len(data) > MAX_REPORT_BYTES:
        return [{"broken": "the report is too large"}]
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _verified(status, events):
    """The events, if the child's exit status agrees with pytest's last record; otherwise the
    events without it and a ``broken`` record saying why and which test was running."""
    finished = [e for e in events if "finished" in e]
    if (
        status is not None
        and len(finished) == 1
        and finished[0] is events[-1]
        and finished[0]["finished"] == status
    ):
        return events[:-1]
    started = [e["start"] for e in events if isinstance(e.get("start"), str)]
    why = (
        "out of time"
        if status is None
        else f"the test process ended without pytest's last word (exit status {status})"
    )
    kept = [e for e in events if "finished" not in e]
    return [*kept, {"broken": why, "running": started[-1] if started else None}]


def _pytest_argv(extra):
    argv = [sys.executable, "-m", "pytest", "-p", "_gantry_driver", "-p", "no:randomly"]
    return [
        *argv,
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir=.",
        f"--gantry-report={REPORT}",
        *extra,
    ]


def _write_events(path, events):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)


def _children(args):
    children = Children(isolated=True)
    problem = children.probe()
    if problem is not None and args.allow_unisolated:
        # The user let jobs run unsandboxed, and this one is: nothing can be nested in it.
        print(f"gantry: candidates run unisolated: {problem}", file=sys.stderr)
        children.isolated = False
    elif problem is not None:
        print(f"gantry: candidates cannot be isolated: {problem}", file=sys.stderr)
        sys.exit(3)
    return children


def _read_ids(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def collect(args):
    children = _children(args)
    end = time.monotonic() + args.deadline
    status, events, run_dir = children.run(
        _pytest_argv(["--collect-only", *args.paths]), end - time.monotonic()
    )
    children.done(run_dir)
    _write_events(args.out, _verified(status, events))


def rerun(args):
    """Run the node ids ``args.runs`` times, each time in another seeded random order and in a
    child of its own, until the deadline: a run cut off by it is left incomplete and the runs
    after it are not made."""
    children = _children(args)
    end = time.monotonic() + args.deadline
    ids = _read_ids(args.ids)
    os.makedirs(args.report_dir, exist_ok=True)
    for run in range(args.runs):
        left = end - time.monotonic()
        if left < 1:
            break
        order = list(ids)
        random.Random(args.seed * 1000 + run).shuffle(order)
        extra = [f"--gantry-test-timeout={args.test_timeout}", *order]
        status, events, run_dir = children.run(_pytest_argv(extra), left, rerun=run)
        children.done(run_dir)
        _write_events(os.path.join(args.report_dir, f"run{run}.jsonl"), _verified(status, events))
        if status is None:
            break


def _measured(run_dir, source):
    """coverage.py's JSON report of the target (``source``, where the child saw it) from the
    data file the child left: read and reported here, by the driver, not by the child."""
    import coverage

    data_file = os.path.join(run_dir, ".gantry.coverage")
    if os.path.islink(data_file) or not os.path.isfile(data_file):
        return None
    cov = coverage.Coverage(data_file=data_file, branch=True)
    cov.load()
    report = os.path.join(run_dir, "..", f"{os.path.basename(run_dir)}.json")
    try:
        cov.json_report(morfs=[source], outfile=report)
        with open(report, encoding="utf-8") as f:
            files = json.load(f)["files"]
    finally:
        if os.path.exists(report):
            os.remove(report)
    return next(iter(files.values()), None)


def cover(args):
    """Run the suite alone, then each candidate alone, each under coverage in a child of its
    own: per run, whether it passed and which of the target's lines and branches it ran. A
    candidate is judged on its own run only."""
    children = _children(args)
    end = time.monotonic() + args.deadline
    suite = _read_ids(args.suite) if args.suite else []
    out = {"target": args.include, "runs": {}}
    runs = ([("suite", suite)] if suite else []) + [(c, [c]) for c in _read_ids(args.ids)]
    for name, ids in runs:
        left = end - time.monotonic()
        if left < 1:
            break
        argv = [sys.executable, "-m", "coverage", "run", "--branch"]
        argv += ["--data-file=.gantry.coverage", f"--include={args.include}", "-m", "pytest"]
        argv += _pytest_argv([f"--gantry-test-timeout={args.test_timeout}", *ids])[3:]
        status, events, run_dir = children.run(argv, left)
        events = _verified(status, events)
        seen = os.path.join("/job" if children.isolated else run_dir, args.include)
        try:
            measured = _measured(run_dir, seen)
        except Exception as exc:  # a data file the child garbled measures nothing
            print(f"gantry: coverage of {name} unreadable: {exc}", file=sys.stderr)
            measured = None
        children.done(run_dir)
        outcomes = {e["nodeid"]: e for e in events if isinstance(e.get("nodeid"), str)}
        failed = [e for e in outcomes.values() if e.get("outcome") != "passed"]
        broken = next((e["broken"] for e in events if "broken" in e), None)
        missing = [i for i in ids if i not in outcomes]
        detail = broken or (failed[0].get("exception") or "failed" if failed else "")
        out["runs"][name] = {
            "passed": not (broken or failed or missing),
            "detail": detail or ("it did not run" if missing else ""),
            "coverage": measured,
        }
        if status is None:
            break
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)


def mutate(args):
    """Mutants of the target on the lines the candidates run: each is run against the suite
    (with the tests kept so far), and each one the suite lets pass against the candidates, each
    alone, until one fails on it: that candidate kills a mutant the suite misses."""
    import importlib.util

    # By its path: the driver runs with -I, so nothing on a path the project shapes is imported.
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gantry_mutants.py")
    loader = importlib.util.spec_from_file_location("_gantry_mutants", here)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    children = _children(args)
    end = time.monotonic() + args.deadline
    with open(args.target, encoding="utf-8") as f:
        source = f.read()
    lines = {int(n) for n in args.lines.split(",") if n.strip().isdigit()}
    suite = _read_ids(args.suite) if args.suite else []
    alive = _read_ids(args.ids)
    out = {"mutants": []}
    timeout = f"--gantry-test-timeout={args.test_timeout}"
    for what, text in module.mutants(source, lines, args.limit, args.seed):
        if not alive or end - time.monotonic() < 1:
            break
        record = {"mutant": what, "suite": "none", "killed_by": None}
        if suite:
            passed = _passes(children, [timeout, *suite], end, {args.target: text})
            if passed is None:
                break
            record["suite"] = "passed" if passed else "failed"
        if record["suite"] != "failed":
            for node in list(alive):
                if end - time.monotonic() < 1:
                    break
                if _passes(children, [timeout, node], end, {args.target: text}) is False:
                    record["killed_by"] = node
                    alive.remove(node)
                    break
        out["mutants"].append(record)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)


def _passes(children, pytest_args, end, overlay):
    """Whether every test passed on the mutant: True, False, or None when time ran out."""
    status, events, run_dir = children.run(
        _pytest_argv(pytest_args), end - time.monotonic(), overlay=overlay
    )
    children.done(run_dir)
    if status is None and end - time.monotonic() < 1:
        return None
    events = _verified(status, events)
    outcomes = [e for e in events if isinstance(e.get("nodeid"), str)]
    broken = any("broken" in e for e in events)
    # A mutant that hangs a test, or ends its process, is noticed as much as a failed assert.
    return status == 0 and not broken and all(e.get("outcome") == "passed" for e in outcomes)


# -- the engines (they run no candidate) ---------------------------------------------------


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
    env = dict(os.environ)
    if _SITE is not None:  # last on its path, as here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), _SITE]))
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
            finished = _run_bounded(argv, share, stdout=out, env=env) is not None
        if finished:
            os.rename(path + ".part", path)


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
    for name in ("collect", "rerun", "cover", "mutate"):
        p = sub.add_parser(name)
        p.add_argument("--deadline", type=float, required=True)
        p.add_argument("--test-timeout", type=float, default=10.0)
        p.add_argument(
            "--allow-unisolated",
            action="store_true",
            help="where no sandbox can be nested (an unsandboxed job), run tests as processes",
        )
        if name == "collect":
            p.add_argument("paths", nargs="*")
            p.add_argument("--out", required=True)
        elif name == "mutate":
            p.add_argument("ids")
            p.add_argument("--suite", default=None)
            p.add_argument("--target", required=True)
            p.add_argument("--lines", required=True)
            p.add_argument("--limit", type=int, default=12)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--out", required=True)
        elif name == "rerun":
            p.add_argument("ids")
            p.add_argument("--runs", type=int, required=True)
            p.add_argument("--seed", type=int, required=True)
            p.add_argument("--report-dir", required=True)
        else:
            p.add_argument("ids")
            p.add_argument("--suite", default=None)
            p.add_argument("--include", required=True)
            p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    commands = {"ghostwrite": ghostwrite, "crosshair": crosshair}
    commands.update(collect=collect, rerun=rerun, cover=cover, mutate=mutate)
    commands[args.command](args)


if __name__ == "__main__":
    main()
