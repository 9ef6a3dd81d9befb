"""Image-to-image translation (#17): layouts, paired crop/flip, networks, exact resume, the translate CLI."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from translate_data import make_paired, make_unpaired

from core.cli import main
from core.config import ConfigError, TrainConfig, preset
from core.data import DataError
from core.train import create_run, run_training
from core.train.setup import check_resume_changes
from core.train.trainer import Trainer
from core.translate.data import detect_layout, load_translation_data, random_crop_flip
from core.translate.models import PatchDiscriminator, ResnetGenerator, UNetGenerator

TINY = dict(resolution=16, g_width=8, d_width=8, batch_size=4, device="cpu", threads=1, log_every=5,
            sample_every=5, checkpoint_every=5, eval_every=5)


def test_paired_folders_pair_by_name_and_report_the_unmatched(tmp_path):
    root = make_paired(tmp_path / "p", n=6, size=18)
    Image.new("RGB", (18, 18)).save(root / "A" / "lonely.png")
    Image.new("RGB", (18, 18)).save(root / "B" / "other.jpg")
    lay = detect_layout(root, "pix2pix")
    assert lay.kind == "paired" and len(lay.pairs) == 6
    assert all(Path(a).stem == Path(b).stem for a, b in lay.pairs)
    assert lay.unmatched_a == ["lonely.png"] and lay.unmatched_b == ["other.jpg"]
    assert "lonely.png" in lay.notes[-1] and "unmatched: 1 in A, 1 in B" in lay.summary()
    Image.new("RGB", (18, 9)).save(root / "B" / "000.png")  # a pair whose sides differ in size
    lay = detect_layout(root, "pix2pix")
    assert lay.mismatched == [("000.png", (18, 18), (18, 9))] and "1 pairs differ in size" in lay.summary()


def test_side_by_side_images_are_split_down_the_middle(tmp_path):
    root = make_paired(tmp_path / "ab", n=6, size=18, layout="side-by-side")
    Image.new("RGB", (18, 18)).save(root / "square.png")  # not an AB image: left out, and said so
    lay = detect_layout(root, "pix2pix")
    assert lay.kind == "side_by_side" and len(lay.pairs) == 6 and lay.rejected[0][0] == "square.png"
    ds = load_translation_data(str(root), "pix2pix", 16)
    assert ds.paired and ds.channels == 3 and ds.a.shape[1:] == (3, 18, 18)
    # A is the greyscale of B: its three channels are equal, B's are not
    assert (ds.a[:, 0] == ds.a[:, 1]).all() and not (ds.b[:, 0] == ds.b[:, 1]).all()


@pytest.mark.parametrize("names", [("A", "B"), ("trainA", "trainB")])
def test_unpaired_folders_take_any_names(tmp_path, names):
    root = make_unpaired(tmp_path / "u", n=6, size=18, names=names)
    lay = detect_layout(root, "cyclegan")
    assert lay.kind == "unpaired" and len(lay.files_a) == len(lay.files_b) == 6
    ds = load_translation_data(str(root), "cyclegan", 16)
    assert not ds.paired and len(ds.held_a) == len(ds.held_b) == 1 and len(ds.a) == 5


def test_bad_layouts_name_the_folder(tmp_path):
    root = make_unpaired(tmp_path / "u", n=6, size=18)  # A/ and B/ share no names
    with pytest.raises(DataError, match="share no file names"):
        detect_layout(root, "pix2pix")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (18, 18)).save(flat / "x.png")
    with pytest.raises(DataError, match="flat.*A/ and B/"):
        detect_layout(flat, "cyclegan")
    with pytest.raises(DataError, match="no side-by-side AB images"):
        detect_layout(flat, "pix2pix")
    (tmp_path / "e" / "A").mkdir(parents=True)
    (tmp_path / "e" / "B").mkdir()
    with pytest.raises(DataError, match="A: holds no images"):
        detect_layout(tmp_path / "e", "cyclegan")
    few = make_paired(tmp_path / "few", n=3, size=18)
    with pytest.raises(DataError, match="found 3 pairs, need at least 5"):
        load_translation_data(str(few), "pix2pix", 16)


def test_crop_and_flip_are_the_same_on_both_sides_of_a_pair():
    torch.manual_seed(0)
    a = torch.randn(64, 2, 12, 12)
    pair = torch.cat([a, a + 1], 1)
    out = random_crop_flip(pair, 8)
    assert out.shape == (64, 4, 8, 8)
    assert torch.equal(out[:, 2:], out[:, :2] + 1)  # B's crop is A's crop, pixel for pixel
    # every output is a crop of its own input, mirrored or not; both kinds and several offsets occur
    kinds = set()
    for i in range(64):
        for flip in (False, True):
            src = a[i].flip(-1) if flip else a[i]
            for oy in range(5):
                for ox in range(5):
                    if torch.equal(out[i, :2], src[:, oy:oy + 8, ox:ox + 8]):
                        kinds.add((flip, oy, ox))
    assert {f for f, _, _ in kinds} == {False, True} and len(kinds) > 10


def test_network_shapes_and_dropout_only_in_training():
    x = torch.randn(2, 3, 32, 32)
    g = UNetGenerator(3, 3, 32, width=8)
    assert g(x).shape == x.shape and g(x).abs().max() <= 1
    g.train()
    assert not torch.equal(g(x), g(x))  # dropout: the paper's noise
    g.eval()
    assert torch.equal(g(x), g(x))
    assert PatchDiscriminator(6, 32, 8)(torch.cat([x, x], 1)).shape == (2, 1, 14, 14)
    assert PatchDiscriminator(3, 256, 8).n_layers == 3  # the 70 x 70 PatchGAN at full size
    r = ResnetGenerator(3, 3, 16, width=8)
    assert r(torch.randn(2, 3, 16, 16)).shape == (2, 3, 16, 16) and r.n_blocks == 3


def test_task_fields_are_validated_and_locked_on_resume():
    with pytest.raises(ConfigError, match="^task: unknown task"):
        TrainConfig(task="colourise").validate()
    with pytest.raises(ConfigError, match="^direction:"):
        TrainConfig(direction="AB").validate()
    with pytest.raises(ConfigError, match="^loss: pix2pix trains with"):
        TrainConfig(task="pix2pix", loss="wgan-gp").validate()
    with pytest.raises(ConfigError, match="^lr_decay_start:"):
        TrainConfig(lr_decay_start=1.5).validate()
    with pytest.raises(ConfigError, match="^task: cannot change"):
        check_resume_changes(preset("pix2pix"), preset("pix2pix", task="cyclegan"))


@pytest.mark.parametrize("task", ["pix2pix", "cyclegan"])
def test_resume_continues_exactly(tmp_path, task):
    root = make_paired(tmp_path / "p", n=12, size=18) if task == "pix2pix" else make_unpaired(tmp_path / "u", n=8, size=18)
    ds = load_translation_data(str(root), task, 16)
    cfg = preset(task, **{**TINY, "batch_size": 2, "pool_size": 3, "steps": 6})

    def run(t: Trainer, n: int) -> None:
        for _ in range(n):
            t.step()

    a = Trainer(cfg, ds)
    run(a, 6)
    b = Trainer(cfg, ds)
    run(b, 3)
    state = b.state_dict()
    c = Trainer(cfg, ds)
    c.load_state_dict(state)
    run(c, 3)
    nets = lambda t: [t.G, t.D] + ([t.task.G2, t.task.D2] if task == "cyclegan" else [])  # noqa: E731
    for na, nc in zip(nets(a), nets(c)):
        for (k, pa), pc in zip(na.state_dict().items(), nc.state_dict().values()):
            assert torch.equal(pa, pc), k
    assert torch.equal(a.sample_fixed(), c.sample_fixed())
    if task == "cyclegan":  # the pool came back too, and the lr decays linearly over the second half
        assert c.task.pool.filled == a.task.pool.filled > 0
        assert a.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.lr_g * (1 - (5 / 6 - 0.5) / 0.5))


def test_translate_cli_writes_one_output_per_input_both_ways(tmp_path, capsys):
    root = make_unpaired(tmp_path / "u", n=6, size=18)
    t = create_run(preset("cyclegan", data=str(root), steps=5, **TINY), tmp_path / "runs")
    assert run_training(t) == "finished"
    grid = Image.open(sorted((t.store.path / "samples").glob("*.png"))[-1])
    assert grid.size[1] > 5 * 16  # A, G(A), F(G(A)) and B, F(B), G(F(B)): six rows
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / f"out-{direction}"
        assert main(["translate", str(t.store.path), "--input", str(root / "A"), "--out", str(out),
                     "--direction", direction]) == 0
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (root / "A").iterdir())
        assert Image.open(out / "A_000.png").size == (16, 16)
    assert "6/6" in capsys.readouterr().err
    assert main(["translate", str(t.store.path), "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["translate", str(t.store.path), "--input", str(tmp_path / "bad.png"), "--out", str(tmp_path / "o")]) == 2
    assert "bad.png: cannot decode image" in capsys.readouterr().err


def test_pix2pix_run_records_held_out_metrics_and_refuses_the_reverse(tmp_path, capsys):
    import json
    root = make_paired(tmp_path / "p", n=10, size=18)
    t = create_run(preset("pix2pix", data=str(root), steps=10, **TINY), tmp_path / "runs")
    assert run_training(t) == "finished"
    rows = [json.loads(x) for x in (t.store.path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/l1" in r]
    assert [r["step"] for r in evals] == [5, 10] and all(r["eval/psnr"] > 0 and -1 < r["eval/ssim"] <= 1 for r in evals)
    assert {"loss/l1", "loss/g_gan", "loss/d"} <= set(rows[-1])
    assert (t.store.path / "checkpoints" / "best.pt").is_file()
    assert main(["translate", str(t.store.path), "--input", str(root / "A"), "--out", str(tmp_path / "o"),
                 "--direction", "BtoA"]) == 2
    assert "direction: this pix2pix run learned AtoB only" in capsys.readouterr().err


def test_translators_export_with_torch_export_and_onnx():
    pytest.importorskip("onnxruntime")
    import io

    import onnxruntime as ort
    x = torch.randn(1, 3, 16, 16)
    for g in (UNetGenerator(3, 3, 16, width=8).eval(), ResnetGenerator(3, 3, 16, width=8).eval()):
        with torch.no_grad():
            want = g(x)
            assert torch.allclose(torch.export.export(g, (x,)).module()(x), want, atol=1e-5)
        buf = io.BytesIO()
        torch.onnx.export(g, (x,), buf, dynamo=False, opset_version=17)
        sess = ort.InferenceSession(buf.getvalue())
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        assert abs(got - want.numpy()).max() < 1e-4


def test_a_fork_keeps_the_task_and_continues_from_the_weights(tmp_path):
    from core.train import fork_run
    root = make_paired(tmp_path / "p", n=10, size=18)
    t = create_run(preset("pix2pix", data=str(root), steps=5, **TINY), tmp_path / "runs")
    assert run_training(t) == "finished"
    with pytest.raises(ConfigError, match="^task: cannot change"):
        fork_run(t.store.path, {"task": "cyclegan", "loss": "lsgan", "steps": 10})
    f = fork_run(t.store.path, {"l1_weight": 50.0, "steps": 10})
    assert f.step_count == 5 and torch.equal(next(f.G.parameters()), next(t.G.parameters()))
    assert run_training(f) == "finished"


def test_generate_refuses_a_translation_run_in_one_line(tmp_path, capsys):
    root = make_paired(tmp_path / "p", n=6, size=18)
    t = create_run(preset("pix2pix", data=str(root), steps=2, **TINY), tmp_path / "runs")
    assert run_training(t) == "finished" and t.store.path.name.endswith("pix2pix-p")
    assert main(["generate", str(t.store.path), "-n", "2", "--out", str(tmp_path / "g")]) == 2
    assert "is a pix2pix run: translate images with python -m core translate" in capsys.readouterr().err


def test_cyclegan_learns_both_cycles_and_its_decay_keeps_a_rollback(tmp_path):
    root = make_unpaired(tmp_path / "u", n=12, size=18)
    cfg = preset("cyclegan", **{**TINY, "steps": 80, "pool_size": 10})
    t = Trainer(cfg, load_translation_data(str(root), "cyclegan", 16))
    cycles = [float(t.step()["loss/cycle"]) for _ in range(80)]
    assert sum(cycles[-10:]) < 0.6 * sum(cycles[:10]), (cycles[:10], cycles[-10:])
    t2 = Trainer(cfg.replace(steps=100), load_translation_data(str(root), "cyclegan", 16))
    t2.step_count = 60  # past the decay start: the rate is on its way down
    t2.step()
    lr = t2.opt_g.param_groups[0]["lr"]
    for g in t2.opt_g.param_groups:  # what the loop's rollback does
        g["lr"] /= 4
    t2.step()
    assert t2.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.lr_g / 4 * (1 - (61 / 100 - 0.5) / 0.5))
    assert lr == pytest.approx(cfg.lr_g * (1 - 0.1 / 0.5))


def test_ssim_matches_a_window_by_window_computation():
    import numpy as np

    from core.translate.ssim import C1, C2, gaussian_window, ssim
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 14, 14, generator=g)
    y = (x + 0.2 * torch.randn(2, 1, 14, 14, generator=g)).clamp(0, 1)
    w = gaussian_window(11).numpy()
    want = []
    for i in range(2):
        a, b, vals = x[i, 0].double().numpy(), y[i, 0].double().numpy(), []
        for r in range(14 - 10):
            for c in range(14 - 10):
                pa, pb = a[r:r + 11, c:c + 11], b[r:r + 11, c:c + 11]
                ma, mb = (w * pa).sum(), (w * pb).sum()
                va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
                cov = (w * (pa - ma) * (pb - mb)).sum()
                vals.append((2 * ma * mb + C1) * (2 * cov + C2) / ((ma ** 2 + mb ** 2 + C1) * (va + vb + C2)))
        want.append(np.mean(vals))
    assert torch.allclose(ssim(x, y), torch.tensor(want, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(ssim(x, x), torch.ones(2)) and (ssim(x, y) < 0.9).all()
