"""Print the markdown tables of docs/performance.md from benchmarks/results/*.json.

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _reference(r: dict) -> tuple[str, float]:
    """The clean quantized model of a row: the user's quantized model itself (LSQ), or, for a
    float model quantized by fxfault's own quantizer, the same graph with faults off."""
    m = r["median_ms"]
    return ("faults_off", m["faults_off"]) if "faults_off" in m else ("clean", m["clean"])


def overhead(data: dict) -> str:
    out = ["| model | batch | mode | BER | clean quantized ms | faulty ms | faulty / clean | target |",
           "|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        _, ref = _reference(r)
        ratio = r["median_ms"]["faulty"] / ref
        if r["mode"] == "persistent":
            target, ok = "≤ 1.01", ratio <= 1.01
        elif r["batch"] == 1:
            target, ok = "≤ 1.15", ratio <= 1.15
        elif r["ber"] <= 1e-4:
            target, ok = "≤ 1.03", ratio <= 1.03
        else:
            target, ok = "—", None
        extra = f" (float model: {r['median_ms']['clean']:.1f} ms)" if "faults_off" in r["median_ms"] else ""
        out.append(
            f"| {r['model']} | {r['batch']} | {r['mode']} | {r['ber']:g} | {ref:.1f}{extra} "
            f"| {r['median_ms']['faulty']:.1f} | {ratio:.3f} | {target} {'' if ok is None else mark(ok)} |"
        )
    return "\n".join(out)


def dense(data: dict) -> str:
    out = ["| model | batch | BER | clean quantized ms | fxfault ms | dense-mask ms | dense overhead / fxfault overhead |",
           "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        if "dense_ratio" not in r:
            continue
        m = r["median_ms"]
        _, ref = _reference(r)
        over = m["faulty"] - ref
        k = (m["dense"] - ref) / over if over > 0 else float("inf")
        out.append(
            f"| {r['model']} | {r['batch']} | {r['ber']:g} | {ref:.1f} | {m['faulty']:.1f} | "
            f"{m['dense']:.1f} | {k:.0f}× {mark(k >= 20) if r['ber'] == 1e-6 else ''} |"
        )
    return "\n".join(out)


def noise(data: dict) -> str:
    out = ["| model | batch | runs × rounds | A/A ratio: min | median | max |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        out.append(f"| {r['model']} | {r['batch']} | {r['runs']} × {r['rounds']} | {r['min']:.3f} | "
                   f"{r['median']:.3f} | {r['max']:.3f} |")
    return "\n".join(out)


def profile(data: dict) -> str:
    out = ["| mode | BER | clean ms | faulty ms | difference ms | inside fxfault ms | of which |",
           "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        parts = ", ".join(f"{k.strip()} {v:.2f}" for k, v in r["breakdown_ms"].items())
        out.append(f"| {r['mode']} | {r['ber']:g} | {r['clean_ms']:.1f} | {r['faulty_ms']:.1f} | "
                   f"{r['overhead_ms']:.1f} | {r['inside_fxfault_ms']:.2f} | {parts} |")
    return "\n".join(out)


def memory(data: dict) -> str:
    out = ["| malloc | model | batch | variant | weights MB | extra peak (× weights), median [range] "
           "| transform peak (× weights) |",
           "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        rng = (f" [{r['extra_over_weights_min']:.2f}, {r['extra_over_weights_max']:.2f}]"
               if "extra_over_weights_min" in r else "")
        out.append(
            f"| {r['malloc']} | {r['model']} | {r['batch']} | {r['variant']} | {r['weights_mb']:.1f} | "
            f"{r['extra_over_weights']:.2f}{rng} | {r['transform_peak_over_weights']:.2f} |"
        )
    return "\n".join(out)


def transform(data: dict) -> str:
    out = ["| model | sites | graph nodes | transform time (median of 5) |", "|---|---|---|---|"]
    for r in data["rows"]:
        out.append(f"| {r['model']} | {r['sites']} | {r['nodes']} | {r['median_s']:.2f} s |")
    return "\n".join(out)


def sweep(data: dict) -> str:
    out = ["| mode | trials | seconds | trials / s |", "|---|---|---|---|"]
    for r in data["rows"]:
        out.append(f"| {r['mode']} | {r['trials']} | {r['seconds']:.2f} | {r['trials_per_s']:.1f} |")
    return "\n".join(out)


def main() -> None:
    for name, fn in (("overhead", overhead), ("overhead", dense), ("noise", noise), ("memory", memory),
                     ("transform", transform), ("sweep", sweep), ("profile", profile)):
        data = load(name)
        if data is None:
            print(f"(no results/{name}.json: run benchmarks/bench_{name}.py)\n")
            continue
        print(f"### {name} ({fn.__name__})\n")
        print(fn(data))
        print()
    m = (load("overhead") or load("memory") or {}).get("machine")
    if m:
        print(f"machine: {m}")


if __name__ == "__main__":
    main()
