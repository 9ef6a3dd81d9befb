"""Streamlit AppTest checks of every studio page: empty, with broken run folders, Start and Stop."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from polling import wait_for
from streamlit.testing.v1 import AppTest

from core.config import TrainConfig
from core.runs import load_run

ROOT = Path(__file__).resolve().parents[1]

APP = str(ROOT / "studio" / "app.py")
PAGES = ("pages/data.py", "pages/train.py", "pages/monitor.py", "pages/runs.py", "pages/latent.py", "pages/export.py",
         "pages/translate.py")
TINY = dict(resolution=16, batch_size=8, g_width=8, d_width=8, latent_dim=16, steps=3000, log_every=5,
            sample_every=20, checkpoint_every=1000)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gs-cache")


@pytest.fixture
def runs(tmp_path, monkeypatch, cache_dir) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(root))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(cache_dir))
    st.cache_resource.clear()
    yield root
    st.cache_resource.clear()  # on_release shuts the JobManager down (stops and joins its threads)


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if page and page != "pages/data.py":
        at.switch_page(page).run()
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ------------------------------------------------------------------ fake run folders
def png(path: Path, size: int = 36, color=(120, 60, 200)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def make_run(root: Path, name: str, state: str = "finished", steps: int = 100, rows: int = 20,
             config: bool = True, updated: float | None = None) -> Path:
    import torch

    p = root / name
    (p / "samples").mkdir(parents=True)
    (p / "checkpoints").mkdir()
    cfg = TrainConfig(**{**TINY, "steps": steps}).to_dict()
    if config:
        (p / "config.json").write_text(json.dumps({"config": cfg, "versions": {}, "created": time.time(),
                                                   "dataset": {"source": "shapes", "count": 8000}}))
    (p / "status.json").write_text(json.dumps({"state": state, "step": steps if state == "finished" else steps // 2,
                                               "total_steps": steps, "updated": updated or time.time(),
                                               "img_per_s": 500.0, "eta_s": 3.0, "elapsed_s": 10.0}))
    with open(p / "metrics.jsonl", "w") as f:
        for i in range(rows):
            f.write(json.dumps({"step": i * 5, "time": time.time(), "loss/d": 1.0 - i / 100, "loss/g": 0.7 + i / 50,
                                "d/real": 0.6, "d/fake": 0.4, "grad/g": 0.5, "grad/d": 1.1, "lr/g": 2e-4,
                                "lr/d": 2e-4, "perf/img_per_s": 500.0}) + "\n")
    with open(p / "events.jsonl", "w") as f:
        f.write(json.dumps({"type": "state", "time": time.time(), "step": 0, "state": "running",
                            "message": "Training on cpu"}) + "\n")
    for s in (0, 50, 100):
        png(p / "samples" / f"step_{s:07d}.png")
    png(p / "reals.png", color=(20, 160, 90))
    torch.save({"step": steps}, p / "checkpoints" / f"step_{steps:07d}.pt")
    return p


BROKEN = {
    "no-config": lambda root: make_run(root, "00001-noconfig", config=False),
    "torn-metrics": lambda root: _append(make_run(root, "00002-torn") / "metrics.jsonl", '{"step": 105, "loss/d": 0.'),
    "bad-checkpoint": lambda root: (make_run(root, "00003-badckpt") / "checkpoints" / "step_0000100.pt").write_bytes(
        b"not a checkpoint"),
    "failed": lambda root: _fail(make_run(root, "00004-failed", state="failed")),
}
EXPECT = {  # text naming the problem, shown on the Monitor and Runs pages
    "no-config": "config.json",
    "torn-metrics": "metrics.jsonl",
    "bad-checkpoint": "step_0000100.pt",
    "failed": "CUDA out of memory",
}


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _fail(p: Path) -> None:
    _append(p / "events.jsonl", json.dumps({"type": "error", "time": time.time(), "step": 50,
                                            "message": "RuntimeError: CUDA out of memory (tried to allocate 2 GiB)"})
            + "\n")


# ------------------------------------------------------------------ rendering
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_with_empty_runs_root(runs, page):
    at = app(page)
    assert_ok(at)
    if page in ("pages/monitor.py", "pages/runs.py"):
        assert any("No runs yet" in t for t in texts(at, "info"))


@pytest.mark.parametrize("kind", list(BROKEN))
def test_pages_render_with_a_broken_run(runs, kind):
    make_run(runs, "00000-good")
    BROKEN[kind](runs)
    broken = next(p for p in runs.iterdir() if p.name != "00000-good")
    messages = {}
    for page in PAGES:
        at = app(page)
        assert_ok(at)
        messages[page] = texts(at, "warning") + texts(at, "error")
    assert any(EXPECT[kind] in m for m in messages["pages/runs.py"]), messages["pages/runs.py"]
    # The Monitor shows the newest run by default: the broken one.
    at = app("pages/monitor.py")
    assert at.selectbox(key="monitor_run").value == str(broken)
    assert any(EXPECT[kind] in m for m in texts(at, "warning") + texts(at, "error")), messages
    if kind == "failed":
        assert any("failed" in m and "CUDA out of memory" in m for m in texts(at, "error"))
    assert not any("Traceback" in m for ms in messages.values() for m in ms)


def test_monitor_shows_findings_and_controls_an_external_run(runs):
    """A run trained by another process (CLI) is controlled through control.json."""
    p = make_run(runs, "00000-cli", state="running")
    _append(p / "events.jsonl", json.dumps({
        "type": "finding", "time": time.time(), "step": 40, "kind": "d_overpowering", "severity": "critical",
        "status": "started", "evidence": {"d/real": 0.99}, "explanation": "D wins.", "suggestion": "Lower lr_d.",
        "fix": {"lr_d": 1e-4}}) + "\n")
    at = app("pages/monitor.py")
    assert_ok(at)
    md = " ".join(texts(at, "markdown"))
    assert "critical finding" in md
    assert any("D wins" in t for t in texts(at, "error"))
    at.button(key="ctl_pause").click().run()
    assert json.loads((p / "control.json").read_text())["state"] == "paused"
    at.button(key="ctl_ckpt").click().run()
    assert json.loads((p / "control.json").read_text())["checkpoint_seq"] == 1
    at.button(key="ctl_stop").click().run()
    assert json.loads((p / "control.json").read_text())["state"] == "stopped"


def test_monitor_tells_about_a_rollback(runs):
    """on_diverge=rollback: the Monitor says where the run diverged and what it went back to."""
    p = make_run(runs, "00000-rolled", state="running")
    _append(p / "events.jsonl", json.dumps({
        "type": "rollback", "time": time.time(), "step": 60, "diverged_at": 75, "checkpoint": "checkpoints/step_0000060.pt",
        "message": "Diverged at step 75 (non-finite loss/d); rolled back to step 60 (step_0000060.pt) and continued "
                   "with both learning rates divided by 4 (lr_g=5e-05, lr_d=5e-05). This happens once per run."}) + "\n")
    at = app("pages/monitor.py")
    assert_ok(at)
    assert any("rolled back to step 60" in t for t in texts(at, "info")), texts(at, "info")


def test_event_log_says_what_each_file_event_wrote(runs):
    p = make_run(runs, "00000-files")
    _append(p / "events.jsonl", "".join(json.dumps(e) + "\n" for e in (
        {"type": "sample", "time": time.time(), "step": 40, "path": "samples/step_0000040.png"},
        {"type": "checkpoint", "time": time.time(), "step": 40, "path": "checkpoints/step_0000040.pt",
         "reason": "final"})))
    at = app("pages/monitor.py")
    assert_ok(at)
    messages = [m for df in at.dataframe for m in df.value.get("message", [])]
    assert "Saved checkpoints/step_0000040.pt (end of this session)" in messages, messages
    assert "Saved samples/step_0000040.png" in messages


def test_time_budgeted_run_shows_its_minutes_budget_everywhere(runs):
    """A run that ended on its 4-minute budget far below its step count is shown as done, against
    its minutes, on the Runs card and in the Monitor header (not 1,570 / 1,000,000)."""
    p = make_run(runs, "00000-timed", steps=10**6)
    meta = json.loads((p / "config.json").read_text())
    meta["config"]["minutes"] = 4.0
    (p / "config.json").write_text(json.dumps(meta))
    status = json.loads((p / "status.json").read_text())
    (p / "status.json").write_text(json.dumps({**status, "step": 1570, "elapsed_s": 240.0}))
    for page in ("pages/runs.py", "pages/monitor.py"):
        at = app(page)
        assert_ok(at)
        bars = at.get("progress")
        assert bars and all(b.proto.value == 100 for b in bars), page
    assert any("step 1,570 / 4 min" in b.proto.text for b in app("pages/runs.py").get("progress"))
    # A finished run keeps its last measured speed, labelled as such.
    speed = {m.label: m.value for m in app("pages/monitor.py").metric}
    assert speed.get("Images / s (last)") == "500", speed


def test_stale_run_is_interrupted_and_resumable(runs):
    make_run(runs, "00000-stale", state="running", updated=time.time() - 3600)
    at = app("pages/monitor.py")
    assert_ok(at)
    assert any("Resume" in t for t in texts(at, "warning"))


def test_runs_page_delete_needs_confirmation(runs):
    p = make_run(runs, "00000-old")
    at = app("pages/runs.py")
    go = at.button(key="del_00000-old_go")
    assert go.disabled
    at.checkbox(key="del_00000-old_sure").check().run()
    at.button(key="del_00000-old_go").click().run()
    assert_ok(at)
    assert not p.exists()


def test_runs_page_never_deletes_an_active_run(runs):
    p = make_run(runs, "00000-live", state="running")
    at = app("pages/runs.py")
    assert_ok(at)
    at.checkbox(key="del_00000-live_sure").check().run()
    at.button(key="del_00000-live_go").click().run()
    assert p.exists()  # the popover is disabled and core.runs.delete_run refuses an active run


# ------------------------------------------------------------------ data and train pages
def test_data_page_scans_a_folder_and_prefills_train(runs, tmp_path):
    folder = tmp_path / "imgs"
    for i in range(12):
        png(folder / f"img_{i:02d}.png", size=24, color=(i * 20, 100, 50))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    (folder / "notes.txt").write_text("hi")
    at = app("pages/data.py")
    at.segmented_control(key="data_source").set_value("Image folder").run()
    at.text_input(key="data_folder").input(str(folder))  # typed, then one click on Scan (a form)
    scan = next(b for b in at.button if b.label == "Scan")
    scan.click().run()
    assert_ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Usable images"] == "12" and metrics["Rejected"] == "1" and metrics["Ignored"] == "1"
    assert any("broken.png" in str(df.value) for df in at.dataframe)
    assert len(at.get("image")) >= 1  # the grid of real images
    at.button(key="use").click().run()  # scanning only looks: "Use for training" selects it
    at.switch_page("pages/train.py").run()
    assert_ok(at)
    assert at.text_input(key="cfg_data").value == str(folder.resolve())


def test_data_page_shows_and_clears_the_dataset_cache(runs, tmp_path, monkeypatch):
    import hashlib

    from core.data.cache import write_cache
    own = tmp_path / "own-cache"
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(own))
    key = hashlib.sha1(b"cats").hexdigest()  # entries are named by their fingerprint
    write_cache(key, (2, 1, 16, 16), lambda im, lab: None, {"source": "/data/cats"}, own)
    at = app()  # the page's preview of the built-in "shapes" adds an entry of its own
    assert_ok(at)
    assert any("2 dataset(s)" in e.label for e in at.expander), [e.label for e in at.expander]
    assert any("/data/cats" in list(df.value["source"]) for df in at.dataframe)
    at.button(key="cache_clear").click().run()
    assert_ok(at)
    assert not list(own.rglob(f"{key}.*"))
    assert not any("/data/cats" in list(df.value["source"]) for df in at.dataframe if "source" in df.value)


def test_train_page_validation_names_the_field(runs):
    at = app("pages/train.py")
    at.number_input(key="cfg_lr_g").set_value(0.0).run()
    assert_ok(at)
    errs = texts(at, "error")
    assert any("lr_g" in e for e in errs), errs
    assert at.button(key="start").disabled


def test_train_page_preset_fills_fields(runs):
    at = app("pages/train.py")
    at.selectbox(key="cfg_preset").set_value("wgan-gp").run()
    assert_ok(at)
    assert at.selectbox(key="cfg_loss").value == "wgan-gp"
    assert at.number_input(key="cfg_n_critic").value == 5
    assert at.text_input(key="cfg_data").value == "shapes"  # the user's data is kept


def test_train_page_enables_exactly_the_widgets_the_loss_uses(runs):
    """lsgan uses label smoothing (its real target); wgan trains with RMSprop, which has no betas."""
    at = app("pages/train.py")
    at.selectbox(key="cfg_loss").set_value("lsgan").run()
    assert_ok(at)
    assert not at.number_input(key="cfg_label_smoothing").disabled
    assert not at.number_input(key="cfg_beta1").disabled and not at.number_input(key="cfg_beta2").disabled
    assert at.toggle(key="cfg_g_saturating").disabled and at.number_input(key="cfg_clip_value").disabled
    at.selectbox(key="cfg_loss").set_value("wgan").run()
    assert_ok(at)
    assert at.number_input(key="cfg_beta1").disabled and at.number_input(key="cfg_beta2").disabled
    assert at.number_input(key="cfg_label_smoothing").disabled and not at.number_input(key="cfg_clip_value").disabled
    at.number_input(key="cfg_eval_every").set_value(0).run()
    assert at.number_input(key="cfg_eval_samples").disabled and at.selectbox(key="cfg_eval_metric").disabled


def test_start_then_stop(runs):
    at = app("pages/train.py")
    for k, v in TINY.items():
        w = at.selectbox(key=f"cfg_{k}") if k == "resolution" else at.number_input(key=f"cfg_{k}")
        w.set_value(v)
    at.run()
    assert_ok(at)
    at.button(key="start").click().run()
    assert_ok(at)
    assert at.title[0].value == "Monitor"  # st.switch_page after a successful start
    run_dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1
    run = run_dirs[0]
    assert wait_for(lambda: load_run(run).step > 0, 60), load_run(run).status
    at.switch_page("pages/monitor.py").run()  # AppTest keeps its own page choice between runs
    assert_ok(at)
    assert at.selectbox(key="monitor_run").value == str(run)
    # A second Start (another click, another tab) must not start a duplicate.
    at2 = app("pages/train.py")
    assert at2.button(key="start").disabled
    # The sidebar's "Training now" card (AppTest runs app.py's fragments only before a page switch).
    at3 = app()
    assert any("Training now" in t for t in texts(at3, "markdown"))
    assert len(at3.get("page_link")) == 1  # "Open in Monitor"
    at.button(key="ctl_stop").click().run()
    assert_ok(at)
    assert wait_for(lambda: load_run(run).state == "stopped", 60), load_run(run).status
    at.run()
    assert any("Stopped" in t for t in texts(at, "markdown"))
    assert len([p for p in runs.iterdir() if p.is_dir()]) == 1


def _real_run(runs: Path, steps: int = 40) -> Path:
    """A finished run trained for real (tiny), through the same JobManager the studio holds."""
    from studio import state

    jm = state.job_manager()
    run = jm.start(TrainConfig(**{**TINY, "steps": steps, "checkpoint_every": 20}))
    assert wait_for(lambda: jm.active() is None, 90)
    assert load_run(run).state == "finished", load_run(run).status
    return Path(run)


def test_fork_and_resume_from_the_runs_page(runs):
    src = _real_run(runs)
    at = app("pages/runs.py")
    assert_ok(at)
    key = f"fork_{src.name}"
    at.number_input(key=f"{key}_steps").set_value(60)
    at.number_input(key=f"{key}_lr_d").set_value(1e-4)
    at.button(key=f"{key}_go").click().run()
    assert_ok(at)
    assert at.title[0].value == "Monitor"
    forks = [p for p in runs.iterdir() if p.is_dir() and p != src]
    assert len(forks) == 1
    fork = load_run(forks[0])
    assert fork.meta["forked_from"]["run"] == src.name and fork.config["lr_d"] == 1e-4
    assert wait_for(lambda: load_run(forks[0]).state == "finished", 90), load_run(forks[0]).status

    at = app("pages/runs.py")
    key = f"res_{src.name}"
    at.number_input(key=f"{key}_steps").set_value(60)
    at.button(key=f"{key}_go").click().run()
    assert_ok(at)
    assert wait_for(lambda: load_run(src).state == "finished" and load_run(src).step == 60, 90), load_run(src).status


def test_data_page_notices_folder_changes(runs, tmp_path):
    folder = tmp_path / "watched"
    for i in range(8):
        png(folder / f"a_{i}.png", size=20, color=(10 * i, 0, 0))
    at = app("pages/data.py")
    at.segmented_control(key="data_source").set_value("Image folder").run()
    at.text_input(key="data_folder").input(str(folder))
    next(b for b in at.button if b.label == "Scan").click().run()
    assert {m.label: m.value for m in at.metric}["Usable images"] == "8"
    assert not any("changed since the scan" in t for t in texts(at, "warning"))
    png(folder / "new_one.png", size=20)
    png(folder / "new_two.png", size=20)
    assert wait_for(lambda: any("changed since the scan" in t for t in texts(at.run(), "warning")), 20, every=0.25)
    at.button(key="rescan").click().run()
    assert_ok(at)
    assert {m.label: m.value for m in at.metric}["Usable images"] == "10"


# ------------------------------------------------------------------ sample quality, findings, evaluate, DDP
def _chart_specs(at: AppTest) -> list[str]:
    return [str(c.proto.spec) for c in at.get("plotly_chart")]


def test_monitor_sample_quality_chart_marks_the_best_step(runs):
    p = make_run(runs, "00000-scored", rows=20)
    with open(p / "metrics.jsonl", "a") as f:
        for step, v in ((100, 40.0), (200, 25.0), (300, 31.0)):
            f.write(json.dumps({"step": step, "loss/d": 0.9, "metric/swd": v, "metric/swd_16px": v,
                                "quality/score": v, "perf/eval_s": 0.5}) + "\n")
    _append(p / "events.jsonl", json.dumps({"type": "metric", "time": time.time(), "step": 200, "metric": "swd",
                                            "value": 25.0, "best": True, "best_value": 25.0, "best_step": 200})
            + "\n")
    at = app("pages/monitor.py")
    assert_ok(at)
    specs = _chart_specs(at)
    quality = [s for s in specs if "Sample quality" in s]
    assert len(quality) == 1, specs
    assert "SWD (no downloaded weights)" in quality[0] and "best (step 200)" in quality[0]
    assert "FID" not in quality[0]
    assert not any("metric/swd_16px" in s or "Other" in s for s in specs)  # no duplicate generic chart
    assert any("Best SWD" in t and "step 200" in t for t in texts(at, "caption"))

    make_run(runs, "00001-unscored", rows=20)  # newest: shown by default; no quality rows yet
    at = app("pages/monitor.py")
    assert_ok(at)
    assert not any("Sample quality" in s for s in _chart_specs(at))
    assert any("scored every 1,000 steps" in t for t in texts(at, "caption"))


def _finding(step: int, kind: str, severity: str, status: str, **extra) -> str:
    return json.dumps({"type": "finding", "time": time.time() + step / 1000, "step": step, "kind": kind,
                       "severity": severity, "status": status, "evidence": {"d/real": 0.99},
                       "explanation": f"{kind} explained.", "suggestion": "Lower lr_d.", **extra}) + "\n"


def test_monitor_escalated_finding_and_fork_with_its_fix(runs, monkeypatch):
    from core.jobs import JobManager

    p = make_run(runs, "00000-diag")
    fix = {"lr_d": 5e-5, "instance_noise": 0.1, "n_critic": 2}
    _append(p / "events.jsonl", _finding(40, "d_dominance", "warning", "started", fix=fix)
            + _finding(60, "d_dominance", "critical", "escalated", since=40, fix=fix)
            + _finding(30, "vanishing_gradients", "warning", "started", fix={"lr_g": 1e-4})
            + _finding(70, "vanishing_gradients", "warning", "cleared", since=30, fix={}))
    calls = []

    def fake_fork(self, run_dir, changes):  # noqa: ANN001
        calls.append((Path(run_dir), dict(changes)))
        return Path(run_dir)

    monkeypatch.setattr(JobManager, "fork", fake_fork)
    at = app("pages/monitor.py")
    assert_ok(at)
    errors = texts(at, "error")
    assert any("D dominance" in e and "escalated to critical at step 60" in e and "since step 40" in e
               for e in errors), errors
    assert "critical finding" in " ".join(texts(at, "markdown"))
    assert not any("Vanishing gradients" in e for e in errors + texts(at, "warning"))  # cleared: resolved
    assert any("resolved" in t and "vanishing gradients" in t and "cleared at step 70" in t
               for t in texts(at, "markdown"))
    at.button(key="fix_d_dominance_go").click().run()
    assert_ok(at)
    assert len(calls) == 1 and calls[0][0] == p
    assert {k: calls[0][1][k] for k in fix} == fix, calls


def _set_tiny_ddp(at: AppTest, steps: int = 6) -> None:
    at.selectbox(key="cfg_resolution").set_value(16)
    for k, v in dict(g_width=8, d_width=8, latent_dim=16, batch_size=4, steps=steps, threads=1).items():
        at.number_input(key=f"cfg_{k}").set_value(v)
    at.selectbox(key="cfg_device").set_value("cpu")
    at.run()
    at.number_input(key="train_cpu_procs").set_value(2).run()


def _eval_table(at: AppTest) -> list[str]:
    return [m for df in at.dataframe if "feature network" in df.value.columns for m in df.value["metric"]]


def test_train_with_two_cpu_processes_then_evaluate(runs):
    """Advanced: CPU processes = 2 starts a torchrun (gloo DDP) job; Monitor and Runs show it; Evaluate scores it."""
    from core.metrics import inception_weights_available
    from studio import state

    at = app("pages/train.py")
    _set_tiny_ddp(at)
    assert_ok(at)
    assert any("torchrun" in t and "4 × 2 = 8" in t for t in texts(at, "caption"))
    assert "torchrun --standalone --nproc-per-node 2" in at.code[0].value
    at.button(key="start").click().run()
    assert_ok(at)
    assert at.title[0].value == "Monitor"
    run = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    job = state.job_manager().job_for(run)
    assert job is not None and job.proc is not None and job.nproc == 2
    assert wait_for(lambda: not job.alive, 120), load_run(run).status
    assert load_run(run).state == "finished" and load_run(run).step == 6
    at = app("pages/monitor.py")  # a fresh session: the old tree's run labels ("running") are stale now
    assert_ok(at)
    assert at.selectbox(key="monitor_run").value == str(run)
    md = " ".join(texts(at, "markdown"))
    assert "Finished" in md and "DDP ×2 (gloo)" in md

    at = app("pages/runs.py")
    assert_ok(at)
    assert "Finished" in " ".join(texts(at, "markdown"))
    key = f"eval_{run.name}"
    assert at.number_input(key=f"{key}_n").value == 512
    at.number_input(key=f"{key}_n").set_value(64)
    weights = inception_weights_available()
    at.multiselect(key=f"{key}_metrics").set_value(["swd"] if weights else ["swd", "fid"])
    at.button(key=f"{key}_go").click().run()
    assert_ok(at)
    assert any("SWD (no downloaded weights)" in t and "step 6" in t for t in texts(at, "success")), texts(at, "success")
    if not weights:
        assert any("FID not computed" in t and "Inception" in t for t in texts(at, "warning")), texts(at, "warning")
    rows = [json.loads(ln) for ln in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in rows] == ["swd"] and rows[0]["n"] == 64 and rows[0]["step"] == 6
    assert _eval_table(at) == ["SWD (no downloaded weights)"]
    at = app("pages/runs.py")  # a fresh session still shows the recorded table
    assert _eval_table(at) == ["SWD (no downloaded weights)"]


def test_torchrun_job_shows_live_and_stops(runs):
    """A torchrun job is the active job like a thread job: sidebar card, Monitor, Stop via control.json."""
    from studio import state

    jm = state.job_manager()
    cfg = TrainConfig(**{**TINY, "batch_size": 4, "steps": 100_000, "threads": 1, "device": "cpu",
                         "log_every": 2, "checkpoint_every": 100_000})
    run = jm.start_torchrun(cfg, 2)
    job = jm.active()
    assert job is not None and job.run_dir == Path(run) and job.nproc == 2 and job.proc is not None
    at3 = app()
    assert any("Training now" in t for t in texts(at3, "markdown"))
    assert any("torchrun, 2 processes" in t for t in texts(at3, "caption"))
    at = app("pages/monitor.py")
    assert_ok(at)
    assert at.selectbox(key="monitor_run").value == str(run)
    assert wait_for(lambda: load_run(run).state == "running" and load_run(run).step > 0, 60), load_run(run).status
    at.run()
    at.button(key="ctl_stop").click().run()
    assert_ok(at)
    assert json.loads((Path(run) / "control.json").read_text())["state"] == "stopped"
    assert wait_for(lambda: not job.alive, 60)
    assert load_run(run).state == "stopped", load_run(run).status
    assert jm.active() is None


def test_train_page_gpus_to_use_launches_torchrun(runs, monkeypatch):
    """With GPUs (simulated: 2), "GPUs to use" > 1 makes Start call JobManager.start_torchrun(cfg, n)."""
    import torch

    from core.jobs import JobManager

    at = app("pages/train.py")
    assert_ok(at)
    assert not [w for w in at.number_input if w.key == "train_gpus"]  # no GPU here: hidden
    assert at.number_input(key="train_cpu_procs").value == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    calls = []

    def fake_torchrun(self, cfg, nproc, timeout=600.0):  # noqa: ANN001
        calls.append((cfg, nproc))
        return make_run(runs, "00000-ddp", state="running")

    monkeypatch.setattr(JobManager, "start_torchrun", fake_torchrun)
    monkeypatch.setattr(JobManager, "start", lambda *a, **k: pytest.fail("a thread job was started"))
    at = app("pages/train.py")
    assert_ok(at)
    assert not [w for w in at.number_input if w.key == "train_cpu_procs"]  # the run goes to CUDA
    gpus = at.number_input(key="train_gpus")
    assert gpus.value == 1 and gpus.max == 2 and "global batch" in gpus.help
    gpus.set_value(2).run()
    assert any("global batch 64 × 2 = 128" in t for t in texts(at, "caption")), texts(at, "caption")
    at.button(key="start").click().run()
    assert_ok(at)
    assert len(calls) == 1 and calls[0][1] == 2 and calls[0][0].batch_size == 64
    assert at.title[0].value == "Monitor"
