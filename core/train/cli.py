"""`python -m core train|resume`: start or continue a run in the foreground (torchrun-aware), with a progress bar."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..config import PRESETS, ConfigError, TrainConfig, parse_overrides
from ..data.cli import hint_dash_names, scan_progress
from ..units import clock
from .loop import run_loop
from .session import run_training


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    base: dict[str, Any] = {}
    if args.config:
        base = TrainConfig.from_json_file(args.config).to_dict()
    if args.preset:
        if args.preset not in PRESETS:
            raise ConfigError("--preset", f"unknown preset {args.preset!r}; valid: {', '.join(PRESETS)}")
        base.update(PRESETS[args.preset])
    direct = {k: getattr(args, k) for k in ("data", "arch", "loss", "resolution", "steps", "minutes", "batch_size",
                                           "device", "seed", "name") if getattr(args, k, None) is not None}
    base.update(direct)
    base.update(parse_overrides(args.set or []))
    return TrainConfig.from_dict(base, source="command line").validate()


class ProgressPrinter:
    """A one-line progress bar on a terminal (plain periodic lines when piped) from loop events."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def status(self, st: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else 10.0) and st.get("state") == "running":
            return
        self.last = now
        step, total = st.get("step", 0), st.get("total_steps") or self.total
        frac = min(1.0, step / total) if total else 0
        bar = "#" * int(frac * 24) + "-" * (24 - int(frac * 24))
        last = st.get("last") or {}
        ld, lg = last.get("loss/d"), last.get("loss/g")
        eta = st.get("eta_s")
        line = (f"[{bar}] {step}/{total}  D {_fmt(ld)}  G {_fmt(lg)}  {st.get('img_per_s') or 0:7.1f} img/s  "
                f"ETA {clock(eta)}")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _fmt(v: Any) -> str:
    return f"{v:7.3f}" if isinstance(v, (int, float)) else "    n/a"


@contextlib.contextmanager
def _stop_on_signals():
    """SIGINT (Ctrl-C) and SIGTERM (torchrun passing on a Ctrl-C, a scheduler's preemption) ask the
    training loop to stop after the current step and write a final checkpoint, instead of killing
    the process mid-step. Yields a function the loop polls."""
    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    old = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield lambda: stop["flag"]
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)


def _train(trainer, quiet: bool = False, tensorboard: bool = False) -> int:
    """Run a prepared trainer in the foreground, printing progress and findings; Ctrl-C stops cleanly."""
    store = trainer.store
    extra = []
    if tensorboard:
        from .tensorboard_hook import TB_DIR, TensorBoardMirror
        extra.append(TensorBoardMirror(trainer))
        print(f"TensorBoard: {store.path / TB_DIR} (tensorboard --logdir {store.path.parent})", file=sys.stderr)
    printer = None if quiet else ProgressPrinter(trainer.cfg.steps)

    def on_event(ev):
        if ev.get("type") in ("finding", "warning", "error", "diverged", "rollback"):
            msg = ev.get("message") or (f"{ev.get('kind')} ({ev.get('severity')}, {ev.get('status')}): "
                                        f"{ev.get('suggestion') or ev.get('explanation', '')}")
            print(f"\n[{ev['type']} at step {ev.get('step')}] {msg}", file=sys.stderr)

    try:
        with _stop_on_signals() as stop_asked:
            final = run_training(trainer, should_stop=stop_asked, on_event=on_event,
                                 on_status=printer.status if printer else None, extra_hooks=extra)
    finally:
        if printer:
            printer.close()
        for hook in extra:
            hook.close()
    print(f"{final}: {store.status.get('message', '')}", file=sys.stderr)
    print(store.path)  # last line of stdout: the run folder, for scripts
    return 0 if final in ("finished", "stopped") else 1


def _check_runs_dir(path: str) -> None:
    """Refuse a runs folder that cannot hold runs before the data is loaded (minutes on a big folder)."""
    p = Path(path).expanduser()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise ConfigError("--runs-dir", f"{q} is a file, not a folder; pass a folder to hold the run folders")
            if not os.access(q, os.W_OK | os.X_OK):
                raise ConfigError("--runs-dir", f"cannot create run folders under {q}: permission denied")
            return


def cmd_train(args) -> int:
    from . import distributed
    from .setup import create_run
    cfg = _config_from_args(args)
    _check_runs_dir(args.runs_dir)
    if getattr(args, "tensorboard", False):
        from .tensorboard_hook import check_available
        check_available()
    if distributed.is_distributed_launch():
        return _train_distributed(lambda: distributed.create_distributed(cfg, args.runs_dir), args)
    print(f"Loading {cfg.data} at {cfg.resolution}px...", file=sys.stderr)
    trainer = create_run(cfg, args.runs_dir, progress=scan_progress if sys.stderr.isatty() else None)
    print(f"Run folder: {trainer.store.path}", file=sys.stderr)
    advice = _advice(args, trainer)
    if advice:
        print(advice, file=sys.stderr)
    if args.announce:
        Path(args.announce).write_text(str(trainer.store.path))
    return _train(trainer, args.quiet, getattr(args, "tensorboard", False))


def _advice(args, trainer) -> str | None:
    """Without --preset or --config, the preset core.recommend picks for this folder, and why (a tip: the run goes on)."""
    report = trainer.dataset.report
    if args.preset or args.config or report is None:  # a built-in dataset has no scan to judge by
        return None
    from ..recommend import recommend_for_scan
    r = recommend_for_scan(report, gpu=trainer.device.type != "cpu")
    if r.preset == "default" and trainer.cfg.arch == "dcgan":
        return None  # already what we would pick
    return f"Tip: {r.reason} Next time try: {r.as_cli()}"


def cmd_resume(args) -> int:
    from . import distributed
    from .setup import resume_run
    changes = parse_overrides(args.set or [])
    if getattr(args, "tensorboard", False):
        from .tensorboard_hook import check_available
        check_available()
    if distributed.is_distributed_launch():
        return _train_distributed(lambda: distributed.resume_distributed(args.run_dir, args.steps, args.minutes,
                                                                          changes), args)
    trainer = resume_run(args.run_dir, steps=args.steps, minutes=args.minutes, changes=changes)
    print(f"Resuming {trainer.store.path} at step {trainer.step_count}", file=sys.stderr)
    return _train(trainer, args.quiet, getattr(args, "tensorboard", False))


def _train_distributed(make, args) -> int:
    """Under torchrun: rank 0 prints and owns the run folder; the other ranks train silently."""
    from . import distributed
    trainer, in_step = None, False
    try:
        trainer = make()
        if trainer.rank == 0:
            if getattr(args, "announce", None):
                Path(args.announce).write_text(str(trainer.store.path))
            print(f"Run folder: {trainer.store.path} ({trainer.world_size} processes)", file=sys.stderr)
            code = _train(trainer, args.quiet, getattr(args, "tensorboard", False))
        else:
            with _stop_on_signals() as stop_asked:  # every rank stops together, with a final checkpoint
                final = run_loop(trainer, (), should_stop=stop_asked)  # hooks run on rank 0 only
            if final not in ("finished", "stopped"):
                print(f"rank {trainer.rank}: {final}: {trainer.last_message}", file=sys.stderr)
            code = 0 if final in ("finished", "stopped") else 1
        # finished/stopped come from the step budget or the ranks' shared stop decision, so every
        # rank ends together; a failure may be this rank's alone, and the others would never reach a barrier.
        in_step = code == 0
        return code
    finally:
        distributed.shutdown(trainer, in_step)


def field_help(name: str) -> str:
    """A config field's own help text and default, so `train --help` says what the studio says."""
    f = TrainConfig.__dataclass_fields__[name]
    # argparse formats help with %: a literal percent in a help text must be doubled.
    return f"{f.metadata.get('help', '')} (default: {f.default})".replace("%", "%%")


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a new run")
    for flag, name, kind in (("--data", "data", str), ("--arch", "arch", str), ("--loss", "loss", str),
                             ("--resolution", "resolution", int), ("--steps", "steps", int),
                             ("--minutes", "minutes", float), ("--batch-size", "batch_size", int),
                             ("--device", "device", str), ("--seed", "seed", int)):
        t.add_argument(flag, dest=name, type=kind, help=field_help(name))
    hint_dash_names(t, "--data", "--data")
    t.add_argument("--name", help="run name used in the folder name")
    t.add_argument("--preset", help=f"one of: {', '.join(PRESETS)}")
    t.add_argument("--config", help="a saved config JSON (a run's config.json works)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config field (repeatable)")
    t.add_argument("--runs-dir", default="runs", help="folder that holds the run folders (default: runs)")
    t.add_argument("--quiet", action="store_true", help="no progress bar; findings and the final line only")
    t.add_argument("--announce", metavar="FILE", help="write the run folder's path to FILE once it exists "
                   "(lets a launcher such as the studio find a torchrun job's folder)")
    t.add_argument("--tensorboard", action="store_true",
                   help="also mirror metrics, sample grids and findings into RUN/tb/ for TensorBoard "
                        "(tensorboard --logdir runs); needs pip install tensorboard")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    r.add_argument("run_dir")
    r.add_argument("--steps", type=int, help="new total step count")
    r.add_argument("--minutes", type=float, help="new total training time in minutes, counting earlier sessions "
                   "(0 = no time limit)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="change a non-structural field (e.g. lr_g)")
    r.add_argument("--quiet", action="store_true", help="no progress bar; findings and the final line only")
    r.add_argument("--tensorboard", action="store_true",
                   help="also mirror metrics, sample grids and findings into RUN/tb/ for TensorBoard "
                        "(tensorboard --logdir runs); needs pip install tensorboard")
    r.set_defaults(func=cmd_resume)
