"""Speed-benchmark summaries and the markdown report appended to docs/benchmarks.md."""
from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

import torch


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)} if xs else {}


def ratio(res: dict, b: str, a: str) -> dict[str, float]:
    """Per-round ratios b/a (rounds are paired in time), summarised."""
    rb, ra = res[b]["rounds"], res[a]["rounds"]
    return summary([x / y for x, y in zip(rb, ra) if y > 0])


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from ..train.device import physical_cores
    return (f"{model}, {os.cpu_count()} logical / {physical_cores()} physical cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} default intra-op threads, Python {platform.python_version()}")


def fmt(s: dict, nd: int = 1) -> str:
    if not s:
        return "-"
    return f"{s['median']:.{nd}f} ({s['min']:.{nd}f}–{s['max']:.{nd}f})"


def others_busy(r: dict[str, Any]) -> float:
    """The most cores the rest of the machine kept busy during any timed side (the load
    average cannot tell: the benchmark raises it itself)."""
    vals = [max(0.0, c[k]["machine_cores"]["median"] - c[k]["cores"]["median"])
            for c in r.get("configs", []) for k in c.get("ratio", {}) if k in c] + [
        max(0.0, c["textbook"]["machine_cores"]["median"] - c["textbook"]["cores"]["median"])
        for c in r.get("configs", [])]
    ct = r.get("contention")
    if ct:  # only the load-off rounds: with the load on, the busy cores are the load itself
        vals += [max(0.0, ct[k]["machine_cores"]["median"] - ct[k]["cores"]["median"]) for k in ct.get("kept", {})]
    return max(vals, default=0.0)


def to_markdown(r: dict[str, Any]) -> str:
    busy = others_busy(r)
    L = [f"\n## Speed: ours vs the textbook DCGAN loop — {r['date']}{' (quick)' if r['quick'] else ''}\n",
         f"- Machine: {r['machine']} ({r['device']})",
         f"- Data: `{r['folder']}` ({r['images']} images, exported as PNG; both sides read it as 3-channel)",
         f"- Load average (1 min) at start / end: {r['load_start']:.2f} / {r['load_end']:.2f}; other processes "
         f"kept up to {busy:.2f} cores busy while sides were timed"
         + ("  — **contended: the numbers below are not quiet-machine numbers**" if busy >= 0.3 else "  (quiet)"),
         f"- Ceiling (fp32, same run): conv {r['ceiling']['conv_gflops']:.0f} GFLOP/s, "
         f"matmul {r['ceiling']['matmul_gflops']:.0f} GFLOP/s (best of readings at start, before each configuration, at end)"
         + (f"; bf16: conv {r['ceiling']['conv_gflops_bf16']:.0f}, matmul {r['ceiling']['matmul_gflops_bf16']:.0f} "
            "GFLOP/s (the efficiency column uses the bf16 conv ceiling)" if "conv_gflops_bf16" in r["ceiling"] else ""),
         f"- {r['rounds']} alternating rounds of ~{r['round_s']:g} s per side after warm-up; "
         "images/s as median (min–max); ratio = median of per-round ratios",
         f"- Command: `{r['command']}`", "",
         "| res | batch | textbook img/s | ours img/s | ours ÷ textbook | GFLOP/iter (tb / ours) | ours GFLOP/s "
         "| ours ÷ conv ceiling | cores used (tb / ours) | others busy (cores) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["configs"]:
        fl = c["flops_per_iter"]
        L.append(f"| {c['resolution']} | {c['batch']} | {fmt(c['textbook']['img_s'])} | {fmt(c['ours']['img_s'])} "
                 f"| **{c['ratio']['ours']['median']:.2f}×** ({c['ratio']['ours']['min']:.2f}–"
                 f"{c['ratio']['ours']['max']:.2f}) | {fl['textbook'] / 1e9:.1f} / {fl['ours'] / 1e9:.1f} "
                 f"| {c['gflops_achieved']['ours']:.0f} | {c['gflops_achieved']['ours'] / r['ceiling'].get('conv_gflops_bf16', r['ceiling']['conv_gflops']):.0%} "
                 f"| {c['textbook']['cores']['median']:.2f} / {c['ours']['cores']['median']:.2f} "
                 f"| {max(0.0, c['ours']['machine_cores']['median'] - c['ours']['cores']['median']):.2f} |")
    extra = [(c, k) for c in r["configs"] for k in c["ratio"] if k != "ours"]
    if extra:
        L += ["", "Variants of ours timed in the same rounds (ratio to the textbook loop):", "",
              "| res | batch | variant | img/s | ÷ textbook | ÷ ours (default) | cores | compile time |",
              "|---|---|---|---|---|---|---|---|"]
        for c, k in extra:
            rel = ratio(c, k, "ours")
            compile_time = f"{c['compile_s'][k]:.0f} s" if k in c["compile_s"] else "-"
            L.append(f"| {c['resolution']} | {c['batch']} | {k} | {fmt(c[k]['img_s'])} | {c['ratio'][k]['median']:.2f}× "
                     f"| {rel['median']:.2f}× | {c[k]['cores']['median']:.2f} | {compile_time} |")
    fs, sc = r.get("first_sample"), r.get("scan")
    L.append("")
    if fs:
        L.append(f"- Start → first sample grid at 32×32 (create_run + run() in a thread, studio thread policy, "
                 f"{fs['threads']} thread): **{fs['first_sample_s']:.2f} s** (create_run {fs['create_run_s']:.2f} s; "
                 f"first metrics row, i.e. step 1 done: {fs['first_metrics_row_s'] or float('nan'):.2f} s)")
    if sc:
        L.append(f"- Scan + decode + cache of the folder ({sc['images']} images, 32 px): cold {sc['cold_s']:.2f} s, "
                 f"warm {sc['warm_s']:.2f} s")
    ct = r.get("contention")
    if ct:
        L += ["", f"Competing load `{ct['load']}` switched on/off (SIGSTOP/SIGCONT) between alternating rounds, "
              f"{ct['resolution']}×{ct['resolution']} batch {ct['batch']}:", "",
              "| loop | threads | img/s, load off | img/s, load on | kept (on ÷ off) | cores used off / on |",
              "|---|---|---|---|---|---|"]
        for name, kept in ct["kept"].items():
            L.append(f"| {name} | {ct['threads'][name]} | {fmt(ct[name]['img_s'])} | {fmt(ct[name + '@load']['img_s'])} "
                     f"| **{kept['median']:.2f}×** ({kept['min']:.2f}–{kept['max']:.2f}) "
                     f"| {ct[name]['cores']['median']:.2f} / {ct[name + '@load']['cores']['median']:.2f} |")
        if ct.get("vs_headless_all_threads"):
            v = ct["vs_headless_all_threads"]
            L.append(f"\n- ours (adaptive threads) with the load on ÷ ours pinned to all cores with the load off: "
                     f"**{v['median']:.2f}×** ({v['min']:.2f}–{v['max']:.2f})")
        if ct.get("tuner"):
            L.append(f"- thread tuner at the end: {ct['tuner']}")
    return "\n".join(L) + "\n"


def append_doc(doc: Path, text: str) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    if not doc.exists():
        doc.write_text("# Benchmarks\n", encoding="utf-8")
    with open(doc, "a", encoding="utf-8") as f:
        f.write(text)
