"""Mutation check: does the suite catch the bugs it claims to guard against?

    python -m benchmarks.mutations [--mutants label-swap,tta-noop] [--out FILE]

For each deliberate bug in ``tests/mutants.py`` (label swap, LGG channel order, TTA flips a no-op,
NaN/Inf clean-up off, an always-empty model, generic reader errors) this runs the tests meant to guard
it with the bug switched on (``pytest -p tests.mutants --mutant NAME``) and records which tests failed:
those killed the mutant. The same tests first run unbroken and must all pass, or a "kill" would mean
nothing. Writes benchmarks/results/mutations.json (with the commit it ran on) and prints a table.

Real data as for the tests (``BRAINSEG_DATA`` or ``../shared/data``); about 10-20 min on 2 busy CPU
cores. Not part of CI (the suite itself runs there); run it after changing the tests or the code they
guard. The code under test is this tree's ``src/`` whatever is installed. The widget tests' event-loop
bound is relaxed to 30 s here (``BRAINSEG_MAX_GAP_S``, unless set) so that machine load cannot pass for a
kill; each kill is recorded with the failing assertion's first line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from .common import REPO, RESULTS, command_line, machine_description, write_json

# mutant -> the tests that must catch it (pytest node ids, relative to the repository root)
GUARDS = {
    "label-swap": [
        "tests/test_cli_outputs.py::test_brats_case_output_is_exact",
        "tests/test_widget_runs.py::test_brats_case_run",
        "tests/test_readme_examples.py::test_segmentation_from_python",
        "tests/test_readme_examples.py::test_scripted_napari_session",
    ],
    "lgg-channels-reversed": [
        "tests/test_cli_errors.py::test_cohort_with_a_broken_case",
        "tests/test_widget_runs.py::test_lgg_patient_run",
        "tests/test_api.py::test_segment_case_and_write_result",
    ],
    "tta-noop": [
        "tests/test_api.py::test_tta_is_the_mean_over_mirrored_inputs",
    ],
    "nan-cleanup-off": [
        "tests/test_api.py::test_nan_voxels_are_background",
        "tests/test_api.py::test_inf_voxels_in_a_volume_are_background",
    ],
    "empty-model": [
        "tests/test_widget_runs.py::test_lgg_single_rgb_slice",
        "tests/test_widget_runs.py::test_3d_stack_into_2d_model_runs_slice_wise",
    ],
    "generic-reader-error": [
        "tests/test_bad_input.py",
        "tests/test_bad_input.py::test_refused_with_one_line",
    ],
}


def run_pytest(node_ids: list[str], mutant: str | None, timeout: float) -> dict:
    """Run ``node_ids`` (optionally with a mutant) in a fresh process; the outcome of each test."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.mutants",
               f"--junitxml={report}", *node_ids]
        if mutant:
            cmd.append(f"--mutant={mutant}")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
        # this check is about what the tests assert on content; the widget's event-loop bound (a timing
        # test, 1 s) fails on a loaded machine whatever the mutant, so it is relaxed here unless set
        env.setdefault("BRAINSEG_MAX_GAP_S", "30")
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - started
        outcomes = _outcomes(report) if report.is_file() else {}
    if not outcomes:  # collection failed (a renamed test?): say so rather than count it as a kill
        raise SystemExit(f"pytest ran no test for {mutant or 'baseline'}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "exit_status": proc.returncode, "outcomes": outcomes,
            "tail": proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""}


def _outcomes(report: Path) -> dict[str, str]:
    """test id -> "passed", "skipped", or "failed: <first line of the failure>" / "error: ...", from JUnit XML."""
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        out[name] = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                out[name] = f"{'failed' if child.tag == 'failure' else 'error'}: {(child.get('message') or '').splitlines()[0][:300] if child.get('message') else ''}"
                break
            if child.tag == "skipped":
                out[name] = "skipped"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", default=",".join(GUARDS), help="comma-separated subset of: " + ", ".join(GUARDS))
    parser.add_argument("--out", type=Path, default=RESULTS / "mutations.json")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run")
    args = parser.parse_args(argv)
    names = [n for n in args.mutants.split(",") if n]
    unknown = sorted(set(names) - set(GUARDS))
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(unknown)}")

    machine = machine_description()
    every_guard = sorted({node for n in names for node in GUARDS[n]})
    baseline = run_pytest(every_guard, None, args.timeout)
    not_passing = {t: o for t, o in baseline["outcomes"].items() if o != "passed"}  # a skip is not a pass either
    print(f"baseline (no mutant): {len(baseline['outcomes'])} tests, {baseline['seconds']} s; not passing: {not_passing or 'none'}")

    results = {}
    for name in names:
        run = run_pytest(GUARDS[name], name, args.timeout)
        killers = {t: o for t, o in sorted(run["outcomes"].items()) if o.startswith(("failed", "error"))}
        results[name] = {"tests": GUARDS[name], "killed_by": killers, "survived_in": sorted(
            t for t, o in run["outcomes"].items() if o == "passed"), "seconds": run["seconds"], "killed": bool(killers)}
        print(f"{name}: {'killed' if killers else 'SURVIVED'} ({len(killers)} of {len(run['outcomes'])} tests, {run['seconds']} s)")

    payload = {
        "command": command_line("mutations", argv),
        "machine": machine,
        "baseline": {"all_passed": not not_passing, "not_passing": not_passing, "seconds": baseline["seconds"]},
        "mutants": results,
        "all_killed": all(r["killed"] for r in results.values()) and not not_passing,
    }
    write_json(args.out, payload)
    print("\n| mutant | killed by | still passing |\n|---|---|---|")
    for name, r in results.items():
        short = lambda ids: ", ".join(i.split("::")[-1] for i in ids) or "-"  # noqa: E731
        print(f"| {name} | {short(list(r['killed_by']))} | {short(r['survived_in'])} |")
    print(f"\nall mutants killed: {payload['all_killed']} -> {args.out}")
    return 0 if payload["all_killed"] else 1


if __name__ == "__main__":
    sys.exit(main())
