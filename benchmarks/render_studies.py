"""Markdown for the smaller benchmark studies (one function per results file), used by ``benchmarks.report``.

Each takes the parsed JSON and returns a titled section; the machine line comes from ``report``.
"""

from __future__ import annotations

from .format import fmt, machine_line

REGIONS = ("TC", "WT", "ET")


def _section(title: str, payload: dict, intro: str, header: list[str], rows: list[list]) -> str:
    lines = [f"### {title}", "", machine_line(payload), ""]
    if intro:
        lines += [intro, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_overlap(payload: dict) -> str:
    rows = [[k, fmt(v["infer_s"], 2), *(fmt(v[f"dice_{r}"]) for r in REGIONS)] for k, v in payload["mean"].items()]
    return _section("Sliding-window overlap (brats-unet3d)", payload, "Mean over the validation cases.",
                    ["overlap", "inference s", "Dice TC", "Dice WT", "Dice ET"], rows)


def render_postprocess(payload: dict) -> str:
    rows = []
    for model, by_rule in payload["mean"].items():
        shipped = payload.get("shipped_fraction", {}).get(model)
        for rule, m in by_rule.items():
            dice = " / ".join(fmt(m[f"dice_{r}"]) for r in REGIONS) if "dice_TC" in m else fmt(m["dice"])
            hd95 = " / ".join(fmt(m[f"hd95_{r}"], 1) for r in REGIONS) if "hd95_TC" in m else "-"
            mark = " (shipped)" if str(shipped) == rule else ""
            rows.append([model, f"{rule}{mark}", dice, hd95, m.get("cases")])
    return _section("Component clean-up rule", payload,
                    "Components smaller than this fraction of the largest are dropped ('none': keep all; 1: largest only).",
                    ["model", "rule", "Dice (TC / WT / ET)", "HD95 mm (TC / WT / ET)", "cases"], rows)


def render_orientation(payload: dict) -> str:
    rows = [[c["case"], c["axcodes"], *(fmt(c["as_stored"][r]) for r in REGIONS), *(fmt(c["model_grid"][r]) for r in REGIONS)]
            for c in payload["cases"]]
    mean = payload["mean"]
    rows.append(["**mean**", "", *(fmt(mean["as_stored"][r]) for r in REGIONS), *(fmt(mean["model_grid"][r]) for r in REGIONS)])
    return _section("Orientation: as stored vs through the model grid", payload, f"Cases under `{payload.get('root')}`.",
                    ["case", "axcodes", "stored TC", "stored WT", "stored ET", "grid TC", "grid WT", "grid ET"], rows)


def render_real_scans(payload: dict) -> str:
    rows = [[r["case"], r["variant"], " / ".join(fmt(r["variant_dice"].get(k)) for k in REGIONS),
             " / ".join(fmt(r["reference"].get(k)) for k in REGIONS), fmt(r.get("mean_change"))] for r in payload["rows"]]
    return _section("Real-scan variants", payload, "Dice (TC / WT / ET) of each variant against the reference run.",
                    ["case", "variant", "variant Dice", "reference Dice", "mean change"], rows)


def render_mutations(payload: dict) -> str:
    rows = [[name, len(m["tests"]), len(m["killed_by"]), ", ".join(m["survived_in"]) or "-", "**killed**" if m["killed"] else "**survived**"]
            for name, m in payload["mutants"].items()]
    base = payload.get("baseline", {})
    return _section("Mutation check", payload, f"Unbroken baseline: all guard tests pass: {fmt(base.get('all_passed'))}.",
                    ["mutant", "guard tests", "failed (killed it)", "passed anyway", "verdict"], rows)


def render_network_step(payload: dict) -> str:
    rows = [[r["network"], fmt(r["parameters_m"], 2), fmt(r["median_step_s"], 3)] for r in payload["runs"]]
    return _section("Training step per network", payload,
                    f"Forward + backward, batch {payload.get('batch')}, {payload.get('precision')}, {payload.get('threads')} thread(s).",
                    ["network", "parameters (M)", "median step s"], rows)


def render_uncertainty(payload: dict) -> str:
    rows = [[score, fmt(s["spearman_rho"], 2), f"{s['worst_flagged']} of {s['n_worst_10pct']}"]
            for score, s in payload["summary"].items()]
    return _section("Confidence vs Dice", payload, f"{payload.get('what')} Groups: {', '.join(payload.get('groups', []))}; "
                    f"{payload.get('n_cases')} cases.", ["score", "Spearman rho with Dice", "worst 10 % flagged"], rows)


def render_uncertainty_brats(payload: dict) -> str:
    def row(name: str, s: dict) -> list:
        mean = s.get("confidence_vs_mean_dice") or {}
        regions = s.get("confidence_vs_region_dice") or {}
        own = s.get("region_confidence_vs_region_dice") or {}
        flagged = f"{mean['worst_flagged']} of {mean['n_worst_10pct']}" if mean else "-"
        return [name, s["n_cases"], fmt(s["mean_dice"]), fmt(mean.get("spearman_rho"), 2),
                *(fmt(regions.get(r), 2) for r in REGIONS), flagged, " / ".join(fmt(own.get(r), 2) for r in REGIONS)]

    rows = [row(d, s) for d, s in payload["by_dataset"].items()] + [row("**pooled**", payload["pooled"])]
    misplaced = "; ".join(f"{m['case']} (TC {fmt(m['dice_TC'], 2)}, WT {fmt(m['dice_WT'], 2)}: confidence rank "
                          f"{m['confidence_rank']} of {m['of']})" for m in payload.get("misplaced_core", [])) or "none"
    candidates = "; ".join(f"{name} {fmt(c['spearman_rho'], 2)} ({c['worst_flagged']} of {c['n_worst_10pct']} worst flagged)"
                           for name, c in (payload["pooled"].get("candidates_vs_mean_dice") or {}).items())
    return _section("Confidence vs Dice on BraTS", payload,
                    f"{payload.get('what')} Model: {payload.get('model')}; cases: {payload.get('cases')}. "
                    f"Misplaced cores (rank 1 = least confident): {misplaced}."
                    + (f" Candidate scores, pooled Spearman vs mean Dice: {candidates}." if candidates else ""),
                    ["cases", "n", "mean Dice", "Spearman vs mean Dice", *(f"vs {r} Dice" for r in REGIONS),
                     "worst 10 % flagged", "own-region confidence vs Dice TC / WT / ET"], rows)


def render_uncertainty_wrong_core(payload: dict) -> str:
    def cells(r: dict) -> list:
        return [fmt(r["confidence"]), fmt(r["confidence_TC"]), fmt(r["dice_TC"], 2), fmt(r["core_centroid_mm"], 0),
                fmt(r["core_other_hemisphere"])]

    rows = [[r["case"], *(f"{a} -> {b}" for a, b in zip(cells(r["unaltered"]), cells(r["t1ce_mirrored"])))]
            for r in payload["per_case"]]
    return _section("A core in the wrong hemisphere (T1ce mirrored)", payload,
                    f"{payload.get('what')} Median confidence drop {fmt(payload.get('median_confidence_drop'))}; "
                    f"core moved to the other hemisphere in {payload.get('cases_core_moved_to_other_hemisphere')} of "
                    f"{payload.get('n_cases')}.",
                    ["case (unaltered -> edited)", "confidence", "TC confidence", "TC Dice", "core centroid from the true core (mm)",
                     "core in the other hemisphere"], rows)


def render_core_flag(payload: dict) -> str:
    def counts(o: dict, key: str) -> str:
        return f"{o[key]['flagged']} of {o[key]['of']}"

    rows = []
    for name, study in ((n, payload[n]) for n in ("brats", "lgg") if n in payload):
        flag, base = study["chosen_folds"][study["score"]], study["chosen_folds"][study["baseline"]["score"]]
        for score, threshold, chosen, checked in (
                (study["score"], study["threshold"], flag, study["check_folds"]),
                (f"{study['baseline']['score']} (baseline)", study["baseline"]["threshold"], base,
                 study["baseline"]["check_folds"])):
            for folds, o in ((f"{study['chosen_on_folds']} (choosing)", chosen), (f"{study['checked_on_folds']} (checking)", checked)):
                rows.append([name, f"{score} < {threshold:.2f}", folds, f"{o['n_flagged']} of {o['n_cases']}",
                             counts(o, "worst_10pct"), counts(o, "misplaced_core") if o["misplaced_core"]["of"] else "-",
                             f"{counts(o, 'good_false_alarms')} ({fmt(o['false_alarm_rate'], 2)})"])
    return _section("The 'check this core' flag", payload, payload.get("what", ""),
                    ["data", "flag", "folds", "flagged", "worst 10 % flagged", "misplaced cores flagged",
                     "good cases flagged (false alarm rate)"], rows)


def render_cli_startup(payload: dict) -> str:
    rows = [[name, run.get("tree"), fmt(run.get("cpu_s"), 2), fmt(run.get("user_s"), 2), fmt(run.get("wall_s"), 1),
             fmt(run.get("peak_mib"), 0), len(run.get("runs", [])) or "-"]
            for name, run in (("before", payload["before"]), ("after", payload["after"]))]
    loads = payload.get("load_1min") or []
    notes = [f"{payload.get('what')} {payload.get('how', '')}"]
    if loads:
        notes.append(f"Load average (1 min) before each run: {min(loads):.1f}-{max(loads):.1f}.")
    if "labels_identical" in payload:
        notes.append(f"Labels identical, before vs after: {payload['labels_identical']}.")
    for name, run in (payload.get("monai_import_cpu_s") or {}).items():
        notes.append(f"`import monai` {name}: {fmt(run['median_s'], 2)} s CPU (median).")
    if payload.get("verdict"):
        notes.append(payload["verdict"])
    return _section("CLI start-up (one BraTS case, whole process)", payload, " ".join(notes),
                    ["tree", "commit", "CPU s (median)", "user s", "wall s", "peak MiB", "runs"], rows)


def render_train_precision(payload: dict) -> str:
    rows = [[r["config"], r["batch"], "x".join(map(str, r["patch"])), fmt(r["fp32_step_s"], 3), fmt(r["bf16_step_s"], 3),
             fmt(r["bf16_speed_up"], 2)] for r in payload["runs"]]
    device = payload.get("device", "cpu")
    return _section(f"Training step: fp32 vs bf16 ({device})", payload,
                    f"Minimum of {payload.get('steps')} steps, {payload.get('threads')} thread(s).",
                    ["config", "batch", "patch", "fp32 s", "bf16 s", "bf16 speed-up"], rows)


def render_skull_strip(payload: dict) -> str:
    if "summary" in payload:  # skull_strip.json: the LGG kaggle_3m heads (benchmarks.skull_strip)
        return render_skull_strip_heads(payload)
    rows = [[r["case"], fmt(r["foreground_ml"], 1), fmt(r["exact_zero_background"])] for r in payload.get("rows", [])]
    largest = payload.get("largest") or {}
    stripped = ", ".join(payload.get("would_be_stripped") or []) or "none"
    return _section("Skull-stripping trigger (foreground volume)", payload,
                    f"{payload.get('cases')} cases; threshold {fmt(payload.get('threshold_ml'), 0)} mL; largest "
                    f"{largest.get('case')} {fmt(largest.get('foreground_ml'), 1)} mL; would be stripped: {stripped}.",
                    ["case", "foreground mL", "exact-zero background"], rows)


def render_skull_strip_heads(payload: dict) -> str:
    rows = [[r["patient"], r.get("slices"), "yes" if r.get("stripped") else "no", fmt(r.get("foreground_ml"), 1),
             fmt(r.get("brain_ml"), 1), f"{r.get('tumour_inside')} / {r.get('tumour_voxels')}"]
            for r in payload.get("rows", [])]
    summary = payload.get("summary") or {}
    text = "; ".join(f"{k}: {v}" for k, v in summary.items() if not isinstance(v, (dict, list)))
    return _section("Skull-stripping on the LGG kaggle_3m heads", payload, text,
                    ["patient", "slices", "stripped", "foreground mL", "brain mL", "tumour voxels inside"], rows)


def render_training_learning(payload: dict) -> str:
    rows = [[r["seed"], fmt(r["loss_drop"]), " / ".join(fmt(v) for v in r["dice_untrained"]),
             " / ".join(fmt(v) for v in r["dice_trained"]), fmt(r["dice_gain"]), fmt(r.get("train_wall_s"), 1)]
            for r in payload["per_seed"]]
    return _section("Training learns (quick-lgg)", payload,
                    f"{payload.get('what')}; {payload.get('steps_per_epoch')} steps per epoch. Smallest loss drop "
                    f"{fmt(payload.get('min_loss_drop'))}, smallest Dice gain {fmt(payload.get('min_dice_gain'))}.",
                    ["seed", "loss drop", "Dice untrained (per patient)", "Dice trained", "Dice gain", "train s"], rows)


def render_speed_ensemble(payload: dict) -> str:
    """benchmarks.speed_ensemble: each BraTS setting's end-to-end time against the bundle's, on one CPU."""
    ratios = {r["setting"]: r for r in payload.get("ratios", [])}
    rows = []
    for run in payload["runs"]:
        ratio = ratios.get(run["setting"], {})
        verdict = {True: "**meets**", False: "**misses**"}.get(ratio.get("meets_target"), "-")
        rows.append([run["setting"], fmt(run.get("median_s"), 1), fmt(run.get("cpu_median_s"), 1),
                     fmt(run.get("first_s"), 1), fmt(run.get("peak_rss_mb"), 0), fmt(ratio.get("ratio_to_bundle"), 2),
                     fmt(ratio.get("cpu_ratio_to_bundle"), 2), verdict, run.get("error", "")])
    candidate = payload.get("candidate") or {}
    intro = (f"Case {payload.get('case')}, end to end (read, segment, write), median of {payload.get('repeats')} "
             f"after a warm-up; target: at most {payload.get('target_ratio')}x the bundle. Ensemble: "
             + (", ".join(f"{k} {v}" for k, v in candidate.items()) if candidate else "the registry's model")
             + (f". Conditions: {payload['conditions']}" if payload.get("conditions") else ""))
    text = _section("BraTS fold ensemble: speed against the MONAI bundle settings", payload, intro,
                    ["setting", "median s", "CPU s", "warm-up s", "peak RSS MB", "ratio to bundle",
                     "CPU-time ratio", "target (wall)", "note"], rows)
    study = payload.get("window_study")
    if study:
        lines = ["", "", f"One {'x'.join(map(str, study['patch']))} window through one member, {study['threads']} "
                 f"thread(s), {study['autocast']}; {study.get('clock', 'wall-clock')} seconds per window (fastest of the "
                 "interleaved repeats):", ""]
        lines += [f"- {k}: {fmt(v, 2)}" for k, v in study["seconds_per_window_min"].items()]
        text += "\n".join(lines)
    return text


def render_gpu_check(payload: dict) -> str:
    """benchmarks.gpu_check: GPU against CPU labels, run-to-run stability, the real out-of-memory path."""
    rows = []
    for c in payload["cases"]:
        oom = c["oom_fallback"]
        dice = ", ".join(f"{k.removeprefix('dice_label_')}: {fmt(v)}" for k, v in c["gpu_vs_cpu"].items()
                         if k.startswith("dice_label_") and k != "dice_label_0")
        rows.append([c["case"], c["method"], fmt(c["cpu"]["seconds"], 2), fmt(c["gpu_median_s"], 3),
                     max(c["gpu_runs_voxels_differing_from_first"] or [0]), fmt(c["gpu_vs_cpu"]["voxel_agreement"], 5),
                     dice, oom.get("error") or f"{oom['device_used']}: " + "; ".join(oom["messages"][:2])
                     + ("; labels = CPU's" if oom.get("labels_equal_cpu_reference") else "")])
    return _section("The inference path on a GPU", payload,
                    f"torch {payload.get('torch')}; segment_case times (no file writing); out-of-memory run with "
                    "the GPU allocator capped.",
                    ["case", "method", "CPU s", "GPU s (median)", "voxels differing between GPU runs",
                     "GPU = CPU voxels", "Dice per label vs CPU", "capped-memory run"], rows)


def render_precision_check(payload: dict) -> str:
    """benchmarks.precision_check: one case under fp32, fp16 and bf16 autocast."""
    rows = []
    for mode, r in payload["runs"].items():
        peak = (r.get("largest_layer_outputs") or [[None, None]])[0]
        rows.append([mode, ", ".join(f"{k}: {v}" for k, v in r["labels"].items()), r.get("non_finite_probabilities", ""),
                     fmt(r.get("equal_labels"), 5) if "equal_labels" in r else "", "; ".join(r.get("messages", [])),
                     f"{peak[0]}: {peak[1]}" if peak[0] else ""])
    return _section(f"Precision on {payload.get('device')}: {payload.get('case')} ({payload.get('model')})", payload,
                    "Autocast forced per row; the product recomputes non-finite probabilities in fp32.",
                    ["precision", "voxels per label", "non-finite probabilities", "labels = reference",
                     "messages", "largest layer output (fp16)"], rows)


RENDERERS = {
    "overlap": render_overlap, "postprocess": render_postprocess, "orientation": render_orientation,
    "real_scans": render_real_scans, "mutations": render_mutations, "network_step": render_network_step,
    "uncertainty": render_uncertainty, "uncertainty_brats": render_uncertainty_brats,
    "uncertainty_wrong_core": render_uncertainty_wrong_core, "cli_startup": render_cli_startup, "train_precision": render_train_precision,
    "skull_strip": render_skull_strip, "training_learning": render_training_learning,
    "speed_brats_ensemble": render_speed_ensemble, "core_flag": render_core_flag,
    "gpu_check": render_gpu_check, "precision_check": render_precision_check,
}
