"""End-to-end speed and peak memory: our API/CLI versus the reference pipelines, on the same machine.

    python -m benchmarks.speed [--repeats 5] [--device cpu|cuda|all] [--brats-root DIR ...]
                               [--only brats-case,brats-cohort,lgg-patient,lgg-batch]
                               [--configs ours-api,ours-api-fast,ours-api-no-tta,ours-cli,bundle,plain-swi] [--channels-last] [--compile]
                               [--out JSON] [--quick]

Every (benchmark, configuration, device) runs in a fresh Python process, so the peak resident memory
(ru_maxrss) of one never mixes with another; inside it, one untimed warm-up pass (loads weights,
imports, allocator) precedes ``--repeats`` timed passes, and the median is reported. One pass is
end to end: read the case folder(s) -> preprocess -> infer -> write the labels file(s).

Configurations (BraTS):
  ours-api   napari_brainseg.engine.segment.segment_case + write_result (what the widget/CLI run)
  ours-api-fast / ours-api-no-tta   the same with fast=True (member 0 of a fold ensemble, no TTA) /
             tta=False (every member, no TTA); ``benchmarks.speed_ensemble`` runs them on a candidate ensemble
  ours-cli   ``napari-brainseg predict CASES --output DIR --no-overlay`` as a subprocess (timed with
             process start-up and imports; the warm-up pass is not subtracted)
  bundle     the MONAI model-zoo brats_mri_segmentation inference settings: MONAI LoadImage of the 4
             modalities, NormalizeIntensity(nonzero, channel_wise) on the full volume, SegResNet
             (init_filters 16, blocks_down 1,2,2,4, blocks_up 1,1,1; random weights - timing only),
             sliding window 240x240x160, sw_batch_size 1, overlap 0.5, sigmoid > 0.5, labels 1/2/4,
             NIfTI written; fp32 on the CPU, AMP (fp16 autocast) on CUDA as in the bundle
  plain-swi  our network and weights through a plain ``sliding_window_inference`` with MONAI defaults
             (overlap 0.25, constant blending, sw_batch_size 1), full volume (no brain crop), fp32
LGG: ours-api and ours-cli for one patient (all slices) and a batch of validation patients.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common

BRATS_BENCHES = ("brats-case", "brats-cohort")
LGG_BENCHES = ("lgg-patient", "lgg-batch")
BUNDLE_ROI = (240, 240, 160)
QUICK_ROI = (48, 48, 48)  # --quick: the tiny phantom would otherwise be padded to the full window
TARGETS = {"brats_ratio": 0.5, "lgg_patient_s": 0.5, "brats_peak_rss_mb": 2048, "gpu_case_s": 1.0}


# ------------------------------------------------------------------------------------ worker side


def _patch_network(channels_last: bool, compile_: bool) -> None:
    """Make our API use a channels-last and/or torch.compile'd network (cached, so compiled once)."""
    import torch

    from napari_brainseg.engine import segment as engine_segment

    original = engine_segment.load_model
    cache = {}

    class ChannelsLast(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.out_channels = getattr(net, "out_channels", 1)

        def forward(self, x):
            fmt = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
            return self.net(x.contiguous(memory_format=fmt))

    def load(name, device="cpu", members=None):
        key = (name, str(device), members)
        if key not in cache:
            net = original(name, device, members)
            if channels_last:
                fmt = torch.channels_last_3d if name == "brats-unet3d" else torch.channels_last
                net = ChannelsLast(net.to(memory_format=fmt)).eval()
            if compile_:
                compiled = torch.compile(net)
                compiled.out_channels = getattr(net, "out_channels", 1)
                net = compiled
            cache[key] = net
        return cache[key]

    engine_segment.load_model = load


def _ours_api(cases: list[str], out_dir: Path, device: str, fast: bool = False, tta: bool | None = None) -> None:
    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.io.cases import write_result

    for path in cases:
        result, case = segment_case(path, device=device, fast=fast, tta=tta)
        write_result(result, case, out_dir, overwrite=True)


def _ours_cli(cases: list[str], out_dir: Path, device: str) -> None:
    exe = shutil.which("napari-brainseg", path=str(Path(sys.executable).parent)) or shutil.which("napari-brainseg")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_brainseg.cli"]
    cmd += ["predict", *cases, "--output", str(out_dir), "--no-overlay", "--overwrite", "--device", device]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _reference_files(folder: Path):
    from napari_brainseg.io.brats import find_case_files

    files = find_case_files(folder)
    # the bundle's channel order: T1c, T1, T2, FLAIR
    return [str(files.images[m]) for m in ("t1ce", "t1", "t2", "flair")], files


def _reference_pipeline(cases, out_dir: Path, device: str, net, roi, overlap: float, mode: str, amp: bool):
    """MONAI-style: LoadImage -> NormalizeIntensity (full volume) -> sliding window -> sigmoid > 0.5 -> NIfTI."""
    import nibabel as nib
    import numpy as np
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import LoadImage, NormalizeIntensity

    loader = LoadImage(image_only=True, ensure_channel_first=False)
    normalise = NormalizeIntensity(nonzero=True, channel_wise=True)
    dev = torch.device(device)
    for folder in cases:
        paths, _files = _reference_files(Path(folder))
        image = loader(paths)  # (4, x, y, z) MetaTensor, channels stacked
        if image.shape[0] != 4:
            image = image.permute(3, 0, 1, 2) if image.shape[-1] == 4 else image
        affine = np.asarray(image.affine)
        x = normalise(image).as_tensor().float()[None].to(dev)
        with torch.no_grad():
            if amp and dev.type == "cuda":
                with torch.autocast("cuda", dtype=torch.float16):
                    logits = sliding_window_inference(x, roi, 1, net, overlap=overlap, mode=mode)
            else:
                logits = sliding_window_inference(x, roi, 1, net, overlap=overlap, mode=mode)
        regions = (torch.sigmoid(logits.float()) > 0.5)[0].cpu().numpy()  # (3, x, y, z): TC, WT, ET
        labels = np.zeros(regions.shape[1:], np.uint8)
        labels[regions[1]] = 2
        labels[regions[0]] = 1
        labels[regions[2]] = 4
        name = Path(folder).name
        nib.save(nib.Nifti1Image(labels, affine), str(out_dir / f"{name}_seg.nii.gz"))


def _bundle_network(device: str):
    import torch
    from monai.networks.nets import SegResNet

    torch.manual_seed(0)
    net = SegResNet(blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), init_filters=16, in_channels=4,
                    out_channels=3, dropout_prob=0.2)
    return net.to(device).eval()


def run_worker(spec: dict) -> dict:
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if spec.get("channels_last") or spec.get("compile"):
        _patch_network(spec.get("channels_last", False), spec.get("compile", False))
    device, config, cases = spec["device"], spec["config"], spec["cases"]
    out_dir = Path(tempfile.mkdtemp(prefix="brainseg-speed-"))
    if config == "ours-api":
        def once():
            _ours_api(cases, out_dir, device)
    elif config == "ours-api-fast":  # one network of a fold ensemble, no TTA (segment(fast=True))
        def once():
            _ours_api(cases, out_dir, device, fast=True)
    elif config == "ours-api-no-tta":  # every network of a fold ensemble, without the TTA it may default to
        def once():
            _ours_api(cases, out_dir, device, tta=False)
    elif config == "ours-cli":
        def once():
            _ours_cli(cases, out_dir, device)
    elif config == "bundle":
        net = _bundle_network(device)
        roi = tuple(spec.get("bundle_roi") or BUNDLE_ROI)

        def once():
            _reference_pipeline(cases, out_dir, device, net, roi, 0.5, "constant", amp=True)
    elif config == "plain-swi":
        from napari_brainseg.engine.registry import get_spec, load_model

        net = load_model("brats-unet3d", device)
        roi = get_spec("brats-unet3d").patch_size

        def once():
            _reference_pipeline(cases, out_dir, device, net, roi, 0.25, "constant", amp=False)
    else:
        raise SystemExit(f"unknown configuration {config}")

    cuda = device.startswith("cuda")

    cpu_times = []  # CPU seconds (this process and its children) per timed pass: on a shared core, waiting does not count

    def cpu_now() -> float:
        return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))

    def timed():
        if cuda:
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), cpu_now()
        once()
        if cuda:
            torch.cuda.synchronize()
        cpu_times.append(cpu_now() - cpu)
        return time.perf_counter() - start

    first = timed() if spec.get("warmup", True) else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    del cpu_times[:]
    times = [timed() for _ in range(int(spec["repeats"]))]
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "times_s": [round(t, 4) for t in times],
        "median_s": statistics.median(times),
        "min_s": min(times),
        "first_s": first,
        "cpu_median_s": statistics.median(cpu_times),
        "peak_rss_mb": round(max(usage, children) if config == "ours-cli" else usage, 1),
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "torch_threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------------------ parent side


def launch(spec: dict, timeout: float | None, module: str = "speed") -> dict:
    """Run one configuration in a fresh ``python -m benchmarks.<module> --worker`` process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
        spec_path = fh.name
    result_path = spec_path + ".out"
    cmd = [*common.module_command(module), "--worker", spec_path, "--worker-out", result_path]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=common.REPO)
    wall = time.perf_counter() - started
    try:
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            return {"error": f"exit {proc.returncode}: {tail[0]}", "process_wall_s": wall}
        out = json.loads(Path(result_path).read_text())
        out["process_wall_s"] = round(wall, 2)
        return out
    finally:
        for p in (spec_path, result_path):
            Path(p).unlink(missing_ok=True)


def pick_cases(args, tmp: Path) -> dict[str, list[str]]:
    if args.quick:
        quick = common.quick_cases(tmp)
        return {"brats-case": [str(quick["brats"])], "brats-cohort": [str(quick["brats"])] * 2,
                "lgg-patient": [str(quick["lgg"])], "lgg-batch": [str(quick["lgg"])] * 2}
    found, missing = common.brats_val_folders(args.data, args.brats_root, tmp)
    if missing:
        print(f"warning: BraTS validation cases not found: {', '.join(missing)}", file=sys.stderr)
    if not found:
        raise SystemExit("no BraTS case found: give --brats-root or set BRAINSEG_DATA")
    # the cohort: validation cases shipped in the shared data (reproducible by anyone with it), else the first N
    shipped = [f for f in found if (args.data / "brats" / "BraTS2018" / f"{f.name}.tar.xz").is_file()]
    cohort = (shipped if len(shipped) >= 2 else found)[: args.cohort_size]
    cases = {"brats-case": [str(found[0])], "brats-cohort": [str(c) for c in cohort]}
    if args.only is None or any(b in args.only for b in LGG_BENCHES):  # BraTS alone needs no LGG data
        lgg = common.lgg_val_folders(args.data)
        cases.update({"lgg-patient": [str(lgg[0])], "lgg-batch": [str(p) for p in lgg[: args.lgg_batch]]})
    return cases


def targets(runs: list[dict], accuracy_path: Path, cases: dict | None = None) -> tuple[dict, list[dict]]:
    from .references import BRATS_REFERENCES

    def get(bench, config, device):
        for r in runs:
            if r["benchmark"] == bench and r["config"] == config and r["device"] == device and not r.get("error"):
                return r
        return None

    ratios, out = {}, []
    ours, bundle, plain = (get("brats-case", c, "cpu") for c in ("ours-api", "bundle", "plain-swi"))
    if ours and bundle:
        ratios["brats-case cpu: ours-api / bundle"] = ours["median_s"] / bundle["median_s"]
    if ours and plain:
        ratios["brats-case cpu: ours-api / plain-swi"] = ours["median_s"] / plain["median_s"]
    for bench in ("brats-cohort",):
        o, b = get(bench, "ours-api", "cpu"), get(bench, "bundle", "cpu")
        if o and b:
            ratios[f"{bench} cpu: ours-api / bundle"] = o["median_s"] / b["median_s"]
    for dev in ("cuda",):
        o, b = get("brats-case", "ours-api", dev), get("brats-case", "bundle", dev)
        if o and b:
            ratios[f"brats-case {dev}: ours-api / bundle"] = o["median_s"] / b["median_s"]

    ratio = ratios.get("brats-case cpu: ours-api / bundle")
    dice_note, dice_ok = "no accuracy.json: Dice condition not checked", None
    if accuracy_path.is_file():
        acc = json.loads(accuracy_path.read_text())
        ours_dice = acc.get("results", {}).get("brats", {}).get("no_tta", {}).get("mean", {}).get("dice_mean")
        ref = BRATS_REFERENCES[0]["dice_mean"]
        if ours_dice is not None and not acc.get("quick"):
            dice_ok = ours_dice >= ref
            dice_note = (f"validation mean Dice {ours_dice:.3f} vs bundle's published {ref:.4f} "
                         "(different validation splits)")
    if ratio is None:
        out.append({"target": "BraTS case end to end <= 0.5x bundle settings (CPU) at >= validation Dice",
                    "measured": "not measured", "result": "not measured"})
    else:
        time_ok = ratio <= TARGETS["brats_ratio"]
        result = "pass" if time_ok and dice_ok else ("fail" if not time_ok or dice_ok is False else "time pass, Dice unchecked")
        out.append({"target": "BraTS case end to end <= 0.5x bundle settings (CPU) at >= validation Dice",
                    "measured": f"ratio {ratio:.2f} ({ours['median_s']:.1f} s vs {bundle['median_s']:.1f} s); {dice_note}",
                    "result": result})
    # one patient's time depends on its slice count, so the batch's mean per patient decides too
    lgg, batch = get("lgg-patient", "ours-api", "cpu"), get("lgg-batch", "ours-api", "cpu")
    measured = []
    if lgg:
        who = f" ({cases['lgg-patient'][0]})" if cases and cases.get("lgg-patient") else ""
        measured.append(f"one patient{who}: {lgg['median_s']:.2f} s")
    if batch:
        measured.append(f"mean per patient over a batch of {batch['cases']}: {batch['median_s'] / batch['cases']:.2f} s")
    seconds = [r["median_s"] / r.get("cases", 1) for r in (lgg, batch) if r]
    out.append({"target": "LGG patient (all slices) end to end < 0.5 s on CPU",
                "measured": "; ".join(measured) or "not measured",
                "result": ("pass" if max(seconds) < TARGETS["lgg_patient_s"] else "fail") if seconds else "not measured"})
    rss = ours["peak_rss_mb"] if ours else None
    out.append({"target": "peak RAM < 2 GB for a 240x240x155 case on CPU (ours-api, whole process RSS)",
                "measured": f"{rss:.0f} MB" if rss else "not measured",
                "result": ("pass" if rss < TARGETS["brats_peak_rss_mb"] else "fail") if rss else "not measured"})
    gpu = get("brats-case", "ours-api", "cuda")
    if gpu:
        name = gpu.get("gpu_name") or "GPU"
        per_case = gpu["median_s"]
        result = ("pass" if per_case < TARGETS["gpu_case_s"] else "fail") + ("" if "H100" in name else f" (on {name}, not an H100)")
        out.append({"target": "< 1 s per BraTS case on one H100", "measured": f"{per_case:.2f} s on {name}",
                    "result": result})
    else:
        out.append({"target": "< 1 s per BraTS case on one H100", "measured": "not measured: no GPU",
                    "result": "not measured"})
    return ratios, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per configuration (median reported)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="all = CPU, plus CUDA when available")
    parser.add_argument("--only", default=None,
                        help="benchmarks to run (default all four; --quick: brats-case,lgg-patient)")
    parser.add_argument("--configs", default=None,
                        help="configurations (default ours-api,ours-cli,bundle,plain-swi; --quick: no ours-cli)")
    parser.add_argument("--cohort-size", type=int, default=2, help="BraTS cases in the cohort benchmark")
    parser.add_argument("--lgg-batch", type=int, default=18, help="LGG validation patients in the batch benchmark")
    parser.add_argument("--channels-last", action="store_true", help="also run ours-api with channels-last tensors")
    parser.add_argument("--compile", action="store_true", help="also run ours-api with torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each worker (default torch's)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per configuration before giving up")
    parser.add_argument("--accuracy", type=Path, default=common.RESULTS / "accuracy.json",
                        help="accuracy results, for the Dice condition of the BraTS target")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = run_worker(json.loads(args.worker.read_text()))
        args.worker_out.write_text(json.dumps(result))
        return 0

    import torch

    out = args.out or common.RESULTS / ("quick/speed.json" if args.quick else "speed.json")
    repeats = 1 if args.quick else args.repeats
    devices = ["cpu"] if args.device == "cpu" else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    if args.device == "all":
        devices.insert(0, "cpu")
    if args.device == "cuda" and not devices:
        print("no CUDA GPU: nothing to run on cuda", file=sys.stderr)
    only = args.only or ("brats-case,lgg-patient" if args.quick else ",".join(BRATS_BENCHES + LGG_BENCHES))
    benches = [b.strip() for b in only.split(",") if b.strip()]
    config_list = args.configs or ("ours-api,bundle,plain-swi" if args.quick else "ours-api,ours-cli,bundle,plain-swi")
    configs = [c.strip() for c in config_list.split(",") if c.strip()]
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None

    tmp = Path(tempfile.mkdtemp(prefix="brainseg-speed-cases-"))
    cases = pick_cases(args, tmp)
    plan = []
    for bench in benches:
        for device in devices:
            names = configs if bench in BRATS_BENCHES else [c for c in configs if c.startswith("ours-")]
            variants = [(c, {}) for c in names]
            if "ours-api" in names and (bench in ("brats-case", "lgg-patient")):
                if args.channels_last:
                    variants.append(("ours-api", {"channels_last": True}))
                if args.compile:
                    variants.append(("ours-api", {"compile": True}))
            for config, extra in variants:
                plan.append((bench, device, config, extra))

    payload = {
        "benchmark": "speed",
        "command": common.command_line("speed", argv),
        "quick": args.quick,
        "repeats": repeats,
        "machine": common.machine_description(),
        "models": common.model_cards(),
        "cases": {k: [Path(c).name for c in v] for k, v in cases.items()},
        "settings": {
            "ours": "segment_case: brain bounding-box crop, z-score, the registry's brats-unet3d (members, window: "
                    "models in this file), overlap 0.25, Gaussian "
                    "blending, sw_batch_size 2, autocast (bf16 where the device has it: CPUs with AMX/AVX512-BF16, CUDA GPUs since Ampere; else fp32)",
            "bundle": "SegResNet(16, (1,2,2,4), (1,1,1)), full volume, roi 240x240x160, overlap 0.5, sw_batch_size 1, "
                      "fp32 on CPU / fp16 autocast on CUDA; random weights"
                      + (f"; --quick: roi {QUICK_ROI}" if args.quick else ""),
            "plain-swi": "our brats-unet3d weights, full volume, sliding_window_inference defaults "
                         "(overlap 0.25, constant blending, sw_batch_size 1), fp32",
        },
        "runs": [],
    }
    for bench, device, config, extra in plan:
        label = config + "".join(f"+{k.replace('_', '-')}" for k in extra)
        spec = {"config": config, "device": device, "cases": cases[bench], "repeats": repeats,
                "warmup": not args.quick, "threads": args.threads, **extra}
        if args.quick:
            spec["bundle_roi"] = list(QUICK_ROI)
        print(f"{bench} {label} {device} ...", file=sys.stderr, flush=True)
        result = launch(spec, args.timeout)
        run = {"benchmark": bench, "config": label, "device": device, "cases": len(cases[bench]), **result}
        if device == "cuda":
            run["gpu_name"] = gpu_name
        if config == "ours-cli":
            run["note"] = "includes process start-up"
        payload["runs"].append(run)
        print(f"  {json.dumps({k: run[k] for k in run if k in ('median_s', 'peak_rss_mb', 'error')})}",
              file=sys.stderr, flush=True)
        common.write_json(out, payload)
    payload["ratios"], payload["targets"] = targets(payload["runs"], args.accuracy, payload.get("cases"))
    if args.quick:
        for target in payload["targets"]:
            target["result"] = "n/a (--quick phantom)"
    common.write_json(out, payload)
    shutil.rmtree(tmp, ignore_errors=True)

    from . import report

    print(report.render_speed(payload))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
