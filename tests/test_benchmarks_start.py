"""The benchmark scripts start and write their JSON (tiny synthetic phantoms, one repetition).

Benchmarks are not tests: this only proves that ``python -m benchmarks.<name> --quick`` runs end to end, so a
refactor cannot silently break them. The real runs are documented in benchmarks/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_brainseg.engine.registry import get_spec

REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_accuracy_quick(tmp_path):
    out = tmp_path / "accuracy.json"
    proc = run_script("accuracy", "--out", str(out))
    payload = json.loads(out.read_text())
    assert payload["quick"] and payload["machine"]["versions"]["torch"]
    for model in ("lgg", "brats"):
        assert set(payload["results"][model]) == {"no_tta", "tta"}
        assert payload["results"][model]["no_tta"]["per_case"]
    assert (tmp_path / "accuracy_overlays.png").stat().st_size > 0
    assert "MONAI model zoo" in proc.stdout and "Buda" in proc.stdout


def test_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    run_script("speed", "--only", "brats-case", "--configs", "ours-api,bundle", "--out", str(out))
    payload = json.loads(out.read_text())
    runs = {r["config"]: r for r in payload["runs"]}
    assert set(runs) == {"ours-api", "bundle"}
    assert all(not r.get("error") and r["median_s"] > 0 and r["peak_rss_mb"] > 0 for r in runs.values()), runs
    assert "brats-case cpu: ours-api / bundle" in payload["ratios"]
    assert any("H100" in t["target"] for t in payload["targets"])


@pytest.mark.skipif(not (os.environ.get("DISPLAY") or shutil.which("xvfb-run")), reason="needs a display or Xvfb")
def test_widget_quick(tmp_path):
    out = tmp_path / "widget.json"
    run_script("widget_responsiveness", "--out", str(out))
    payload = json.loads(out.read_text())
    run = payload["runs"][0]
    assert run["finished"] and run["layer_added"] and run["max_gap_ms"] > 0
    assert run["inference_max_gap_ms"] > 0 and run["adding_max_gap_ms"] > 0
    assert payload["napari_add_labels"][0]["max_gap_ms"] > 0
    # a fresh process: torch loads behind the docked widget, not while it is being docked
    assert payload["open_widget"]["torch_imported_before"] is False and payload["open_widget"]["warm_up_s"] > 0


def test_report_renders(tmp_path):
    (tmp_path / "speed.json").write_text(json.dumps({"command": "speed.py", "repeats": 1, "runs": [
        {"benchmark": "brats-case", "config": "ours-api", "device": "cpu", "cases": 1, "median_s": 2.0,
         "min_s": 1.9, "peak_rss_mb": 900.0}], "targets": [{"target": "t", "measured": "m", "result": "pass"}]}))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report", "--results", str(tmp_path)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    assert "| brats-case | ours-api | cpu | 2.00 |" in proc.stdout and "accuracy.json: not run yet" in proc.stdout


def test_overlap_quick(tmp_path):
    out = tmp_path / "overlap.json"
    run_script("overlap", "--out", str(out))
    payload = json.loads(out.read_text())
    assert set(payload["mean"]) == {"0.25", "0.5"} and payload["per_case"]


def test_postprocess_quick(tmp_path):
    out = tmp_path / "postprocess.json"
    run_script("postprocess", "--fractions", "none,0.1", "--out", str(out))
    payload = json.loads(out.read_text())
    assert set(payload["mean"]) == {"lgg-unet2d", "brats-unet3d"}
    assert all(set(by_rule) == {"none", "0.1"} for by_rule in payload["mean"].values())
    assert payload["shipped_fraction"]["lgg-unet2d"] == get_spec("lgg-unet2d").min_component_fraction


def test_network_step_quick(tmp_path):
    out = tmp_path / "network_step.json"
    run_script("network_step", "--out", str(out))
    runs = json.loads(out.read_text())["runs"]
    assert len(runs) == 3 and all(r["median_step_s"] > 0 and r["parameters_m"] > 0 for r in runs)


def test_report_renders_every_results_file():
    """Each JSON in benchmarks/results/ has a renderer (benchmarks.report / render_studies) and renders."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report"], capture_output=True, text=True, check=True, cwd=REPO)
    assert "no renderer yet" not in proc.stdout
    for result in (REPO / "benchmarks" / "results").glob("*.json"):
        assert f"_From `results/{result.name}`._" in proc.stdout, result.name
