"""Number and machine formatting shared by the benchmark renderers (``report``, ``render_studies``)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def machine_line(payload: dict) -> str:
    m = payload.get("machine", {})
    if isinstance(m, str):  # a hand-written record (early cli_startup.json)
        return f"_Machine: {m}; command `{payload.get('command') or payload.get('how')}`_"
    gpu = m.get("gpu") or {}
    v = m.get("versions", {})
    return (f"_Machine: {m.get('cpu')} ({m.get('cpu_affinity') or m.get('cpu_cores_logical')} cores, "
            f"{m.get('ram_gb')} GB RAM, bf16 {_bf16(m)}), GPU "
            f"{gpu.get('name', 'none')}; torch {v.get('torch')}, monai {v.get('monai')}, numpy {v.get('numpy')}; "
            f"commit {_commit_note(m.get('git_commit'))}; {m.get('date')}; command `{payload.get('command')}`"
            + (" **(--quick: synthetic phantoms, numbers meaningless)**" if payload.get("quick") else "") + "_")


def _bf16(machine: dict) -> str:
    if not machine.get("cpu_bf16"):
        return "no"
    flags = machine.get("cpu_bf16_flags")
    return f"yes: {', '.join(flags)}" if flags else "yes (AMX or AVX512-BF16, not recorded which)"


def _commit_note(commit) -> str:
    """The commit a result came from, flagged when that tree had uncommitted changes or the code moved on since."""
    if not commit:
        return "unknown"
    text = str(commit)[:12]
    if str(commit).endswith("+dirty"):
        text += " **with uncommitted changes** (the exact code is not in git)"
    later = _later_code_commits(str(commit).removesuffix("+dirty"))
    if later:
        text += f" ({later} commit(s) changing src/ since, when rendered)"
    return text


def _later_code_commits(commit: str) -> int | None:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-list", "--count", f"{commit}..HEAD", "--", "../src"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None
