"""The model card (markdown) written beside every export: model, data, metrics, files, how to load it."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..fsutil import read_jsonl
from ..generator import LoadedGenerator, truncation_space

# ------------------------------------------------------------------ model card
_NOISE_PREFIXES = ("lr/", "perf/", "mem/", "epoch", "images_seen", "time", "step", "nonfinite")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def training_metrics(run_dir: Path) -> list[tuple[str, float, Any]]:
    """(name, last value, its step) of every logged scalar in metrics.jsonl (losses, D outputs, metric/*)."""
    last: dict[str, tuple[float, Any]] = {}
    for r in read_jsonl(run_dir / "metrics.jsonl")[0]:
        for k, v in r.items():
            if _is_num(v) and not k.startswith(_NOISE_PREFIXES):
                last[k] = (v, r.get("step"))
    return [(k, v, st) for k, (v, st) in last.items()]


def evaluation_metrics(run_dir: Path, step: int) -> list[tuple[str, float, Any, Any]]:
    """(label, value, std, step) per metric from evaluations.jsonl (``python -m core evaluate``), preferring
    rows for the exported step, else the latest row of each metric."""
    best: dict[str, dict[str, Any]] = {}
    for r in read_jsonl(run_dir / "evaluations.jsonl")[0]:
        name, v = r.get("metric"), r.get("value")
        if not isinstance(name, str) or not _is_num(v):
            continue
        label = name + (f" ({r['feature_net']}, n={r['n']})" if r.get("feature_net") and r.get("n") else "")
        prev = best.get(label)
        if prev is None or r.get("step") == step or prev.get("step") != step:
            best[label] = r
    return [(k, r["value"], r.get("std"), r.get("step")) for k, r in best.items()]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def model_card(g: LoadedGenerator, fmt: str, files: list[Path], parity: float | None = None) -> str:
    """Markdown: what the model is, what it was trained on, how well, and how to load this export."""
    from ..models import count_parameters
    cfg = g.cfg
    ds = g.dataset
    name = g.run_dir.name if g.run_dir else g.source.stem
    lines = [*front_matter(g), "", f"# Generator: {name} (step {g.step:,})", "",
             f"Exported {time.strftime('%Y-%m-%d %H:%M')} by GAN Studio as **{fmt}** "
             f"from `{g.source.name}`{' (EMA weights)' if g.uses_ema else ''}.", "",
             "## Model", "", "| Property | Value |", "|---|---|",
             f"| Architecture | {cfg.arch} |", f"| Loss | {cfg.loss} |",
             f"| Resolution | {g.resolution} x {g.resolution} px |",
             f"| Channels | {g.channels} ({'greyscale' if g.channels == 1 else 'RGB'}) |",
             f"| Latent size | {g.latent_dim} (z ~ N(0, I)) |",
             f"| Conditional | {'yes, ' + str(g.num_classes) + ' classes: ' + ', '.join(g.class_names) if g.num_classes else 'no'} |",
             f"| Generator parameters | {count_parameters(g.G, trainable_only=False):,} |",
             f"| Training steps | {g.step:,} |",
             f"| Output | float32 (B, {g.channels}, {g.resolution}, {g.resolution}) in [-1, 1]; "
             f"uint8 = round((x + 1) * 127.5) |", "",
             "## Data", "", "| Property | Value |", "|---|---|",
             f"| Source | `{ds.get('source', cfg.data)}` |",
             f"| Fingerprint | `{ds.get('fingerprint', 'unknown')}` |",
             f"| Images | {ds.get('count', 'unknown'):,} |" if isinstance(ds.get("count"), int)
             else "| Images | unknown |"]
    if ds.get("class_names"):
        lines.append(f"| Classes in the data | {', '.join(map(str, ds['class_names']))} |")
    lines += ["", "## Metrics", ""]
    evals = evaluation_metrics(g.run_dir, g.step) if g.run_dir else []
    logged = training_metrics(g.run_dir) if g.run_dir else []
    if evals or logged:
        lines += ["| Metric | Value | At step |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(v)}{f' ± {_fmt(sd)}' if _is_num(sd) else ''} | {_fmt(st) if st is not None else '—'} |"
                  for k, v, sd, st in evals]
        lines += [f"| {k} (last logged) | {_fmt(v)} | {_fmt(st) if st is not None else '—'} |" for k, v, st in logged]
    else:
        lines.append("No metrics were recorded with this model.")
    if parity is not None:
        lines += ["", f"Checked after export: max |{fmt} - PyTorch| = {parity:.2e} on 4 fixed latents."]
    lines += ["", "## Files", ""] + [f"- `{p.name}`" for p in files]
    lines += ["", "## How to load", "", _how_to(fmt, files[0].name, g), ""]
    if any(p.name.endswith("generate.py") for p in files):
        script = next(p.name for p in files if p.name.endswith("generate.py"))
        lines += ["Without GAN Studio (needs only torch, safetensors, numpy and pillow; same pixels as "
                  "`python -m core generate` for the same seed):", "",
                  f"```bash\npython {script} -n 16 --seed 0 --out samples/"
                  f"{' --class 0' if g.num_classes else ''} --truncation 0.7\n```", ""]
    lines += ["## Which format for what", "", *FORMAT_ADVICE, "",
              "## Training configuration", "", "```json", json.dumps(cfg.to_dict(), indent=2), "```", "",
              "## Notes", "",
              _truncation_note(g),
              "- GAN samples can reproduce training images: check memorisation (Latent explorer → nearest training "
              "images) before publishing samples of private data."]
    return "\n".join(lines) + "\n"


def _truncation_note(g: LoadedGenerator) -> str:
    """Where truncation psi acts for this family: w toward w_avg (stylegan2) or z (the others)."""
    if truncation_space(g.G) == "w":
        return ("- Sample z with `torch.randn(n, latent_dim)`; truncation acts in w: psi < 1 pulls each style "
                "toward the tracked average style (`w = w_avg + psi * (w - w_avg)`, with `mapping(z, y, psi)` "
                "then `synthesis(w)`), trading variety for fidelity; z itself is not truncated.")
    return ("- Sample z with `torch.randn(n, latent_dim)`; truncation acts in z: psi < 1 (resample components "
            "outside [-2, 2], then scale z by psi) trades variety for fidelity.")


FORMAT_ADVICE = [
    "- **safetensors bundle**: keeping and sharing (no code runs when it is loaded), `python -m core generate`, "
    "the studio's explorer, and the bundled `generate.py` anywhere PyTorch runs.",
    "- **torch-export** (`.pt2`, `torch.export.load`): the recommended PyTorch-native program (Python, "
    "AOTInductor, ExecuTorch). Like any program file, load it only from people you trust.",
    "- **onnx**: onnxruntime, TensorRT, OpenVINO, the browser (onnxruntime-web).",
    "- **torchscript**: only for existing TorchScript / LibTorch pipelines: TorchScript is deprecated upstream; "
    "prefer torch-export for new work.",
]


def card_body(md: str) -> str:
    """The card without its YAML front matter, for showing it in a page (markdown would render the YAML as text
    and turn its closing --- into a heading underline)."""
    if md.startswith("---\n"):
        end = md.find("\n---\n", 4)
        if end != -1:
            return md[end + 5:].lstrip("\n")
    return md


def front_matter(g: LoadedGenerator) -> list[str]:
    """Hugging Face model-card metadata (YAML between --- lines), so the card uploads as README.md as is."""
    ds = g.dataset
    source = str(ds.get("source") or g.cfg.data)
    dataset = source if "/" not in source and "\\" not in source else Path(source).name  # no local paths
    tags = ["gan", "gan-studio", g.cfg.arch,
            "conditional-image-generation" if g.num_classes else "unconditional-image-generation"]
    metrics = sorted({str(r[0]).split(" ")[0] for r in (evaluation_metrics(g.run_dir, g.step) if g.run_dir else [])})
    out = ["---", "license: other  # placeholder: choose one (e.g. mit, cc-by-4.0) that the training data allows",
           "library_name: pytorch"]
    if not g.num_classes:  # the Hub has a pipeline tag for unconditional generation only
        out.append("pipeline_tag: unconditional-image-generation")
    out.append("tags:")
    out += [f"- {json.dumps(t)}" for t in tags]
    out += ["datasets:", f"- {json.dumps(dataset)}"]
    out += ["metrics:", *[f"- {json.dumps(m)}" for m in metrics]] if metrics else ["metrics: []"]
    return out + ["---"]


def _how_to(fmt: str, fname: str, g: LoadedGenerator) -> str:
    zdim = g.latent_dim
    y_args = ", y" if g.num_classes else ""
    y_line = f"y = torch.randint(0, {g.num_classes}, (8,))\n" if g.num_classes else ""
    if fmt == "safetensors":
        return ("With GAN Studio (rebuilds the network from the JSON config; nothing in the file is executed):\n\n"
                "```python\nfrom core.generator import generate_seeds, load_bundle\n"
                f"g = load_bundle(\"{fname}\")\nimages = generate_seeds(g, seeds=range(8), truncation=0.7)"
                f"{', class_id=0' if g.num_classes else ''}  # (8, C, H, W) in [-1, 1]\n```\n\n"
                f"or from a shell: `python -m core generate {fname} -n 16 --seed 0 --out samples/`.\n\n"
                "Without GAN Studio the weights are a plain state dict: `safetensors.torch.load_file(...)`; "
                "the architecture is described by the JSON config beside it.")
    if fmt == "torch-export":
        return ("Plain PyTorch, no GAN Studio code needed (a program: load it only if you trust its source):\n\n"
                f"```python\nimport torch\nG = torch.export.load(\"{fname}\").module()\n"
                f"z = torch.randn(8, {zdim})\n{y_line}with torch.no_grad():\n    images = G(z{y_args})  "
                "# (8, C, H, W) in [-1, 1]\n```\n\n"
                "The batch dimension is dynamic; the bundle metadata is inside: "
                "`torch.export.load(path, extra_files={\"gan_studio.json\": \"\"})`.")
    if fmt == "torchscript":
        return ("Plain PyTorch, no GAN Studio code needed (TorchScript is deprecated upstream: prefer torch-export):\n\n"
                f"```python\nimport torch\nG = torch.jit.load(\"{fname}\", map_location=\"cpu\").eval()\n"
                f"z = torch.randn(8, {zdim})\n{y_line}with torch.no_grad():\n    images = G(z{y_args})  "
                "# (8, C, H, W) in [-1, 1]\n```\n\n"
                "The bundle metadata is inside: `torch.jit.load(path, _extra_files={\"gan_studio.json\": \"\"})`.")
    return ("With onnxruntime:\n\n"
            f"```python\nimport numpy as np, onnxruntime as ort\n"
            f"sess = ort.InferenceSession(\"{fname}\", providers=[\"CPUExecutionProvider\"])\n"
            f"z = np.random.randn(8, {zdim}).astype(np.float32)\n"
            + (f"y = np.random.randint(0, {g.num_classes}, 8).astype(np.int64)\n"
               "images = sess.run([\"images\"], {\"z\": z, \"y\": y})[0]" if g.num_classes else
               "images = sess.run([\"images\"], {\"z\": z})[0]")
            + "  # (8, C, H, W) in [-1, 1]\n```\n\nThe batch dimension is dynamic.")
