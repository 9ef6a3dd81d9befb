"""`python -m core evaluate RUN_DIR`: score a run's generator, print a table, append to evaluations.jsonl."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .evaluate import DEFAULT_METRICS, EVALUATIONS, LABELS, LOWER_IS_BETTER, METRICS, evaluate, parse_metrics, record


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run folder")
    p.add_argument("--n", type=int, default=2048, help="generated images (and as many real ones) to compare")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma list of {', '.join(METRICS)} (pr = precision and recall; ppl = perceptual path "
                        f"length, in w for stylegan2, only when named; default: {','.join(DEFAULT_METRICS)})")
    p.add_argument("--ppl-n", dest="ppl_n", type=int, default=2000,
                   help="latent pairs for ppl (perceptual path length; the paper uses 100,000)")
    p.add_argument("--checkpoint", help="checkpoint file, or 'best' for checkpoints/best.pt (default: latest)")
    p.add_argument("--inception-weights", dest="inception_weights",
                   help="path to the FID Inception-v3 weights file (else $GAN_STUDIO_INCEPTION_WEIGHTS / torch hub cache)")
    p.add_argument("--seed", type=int, default=0, help="latents and real-image subset (same seed = same sets)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    p.add_argument("--no-record", dest="record", action="store_false", help=f"do not append to {EVALUATIONS}")


def _checkpoint_path(run_dir: Path, spec: str | None) -> Path | None:
    if not spec:
        return None
    if spec == "best":
        return run_dir / "checkpoints" / "best.pt"
    p = Path(spec).expanduser()
    if not p.exists() and (run_dir / spec).exists():
        p = run_dir / spec
    return p


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.4e}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..runs import RunError
    from ..train.device import pick_device
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir} is not a run folder (no config.json)")
    from ..translate.evaluate import is_translation_run
    if is_translation_run(run_dir):  # pix2pix / cyclegan: pixel scores on held-out items (core/translate/evaluate.py)
        return _evaluate_translation(run_dir, args)
    try:
        metrics = parse_metrics(args.metrics)
        device = pick_device(args.device)
        result = evaluate(run_dir, n=args.n, metrics=metrics, checkpoint=_checkpoint_path(run_dir, args.checkpoint),
                          inception_weights=args.inception_weights, seed=args.seed, batch_size=args.batch_size,
                          device=device, progress=lambda m: print(m, file=sys.stderr), ppl_n=args.ppl_n)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ck = result["checkpoint"]
    compared = (f"{result['n']} generated vs {result['n_real']} real images" if result["n_real"]
                else f"{args.ppl_n} latent pairs")
    print(f"{run_dir.name} at step {result['step']} ({Path(ck).name if ck else '?'}): {compared}")
    rows = [(LABELS.get(r["metric"], r["metric"]), _fmt(r["value"]), _fmt(r["std"]),
             "lower is better" if LOWER_IS_BETTER.get(r["metric"]) else "higher is better", r["feature_net"])
            for r in result["results"]]
    for m, why in result["unavailable"].items():
        short = "no Inception weights offline" if "Inception-v3 weights" in why else why.splitlines()[0]
        rows.append((LABELS.get(m, m.upper()), "unavailable", "", "", short))
    head = ("metric", "value", "± std", "", "feature net")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    for r in result["results"]:
        if r["metric"] == "swd" and r.get("detail", {}).get("levels"):
            print("SWD per pyramid level: " + ", ".join(f"{k} {_fmt(v)}" for k, v in r["detail"]["levels"].items()))
    reasons = list(dict.fromkeys(result["unavailable"].values()))
    for why in reasons:
        print(f"\nnote: {why}", file=sys.stderr)
    if result["results"] and args.record:
        record(run_dir, result)
        print(f"appended {len(result['results'])} rows to {run_dir / EVALUATIONS}", file=sys.stderr)
    return 0 if result["results"] else 1


def _evaluate_translation(run_dir: Path, args: argparse.Namespace) -> int:
    from ..train.device import pick_device
    from ..translate.evaluate import evaluate_translation, print_table
    try:
        result = evaluate_translation(run_dir, _checkpoint_path(run_dir, args.checkpoint), pick_device(args.device),
                                      progress=lambda m: print(m, file=sys.stderr))
    except (ValueError, TypeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_table(run_dir, result)
    if args.record:
        record(run_dir, result)
        print(f"appended {len(result['results'])} rows to {run_dir / EVALUATIONS}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="score a run's generator: SWD, FID, KID, IS, precision/recall, PPL")
    add_args(e)
    e.set_defaults(func=cmd_evaluate)
