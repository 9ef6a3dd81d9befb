"""The translation task a Trainer delegates to when cfg.task != "generate": networks, data order, the
pix2pix and CycleGAN steps, the triplet grid, held-out L1/PSNR and the resumable state."""
from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from ..losses import get_loss
from ..train.replay import ReplayBuffer
from ..train.sampler import TensorBatchSampler
from ..train.syncbn import convert_batchnorm
from .data import TranslationDataset, center_crop, random_crop_flip
from .models import build_translation_models
from .ssim import ssim

N_FIXED = 8  # columns of the triplet grid: the loop writes sample grids 8 images a row


def from_image_dataset(ds) -> TranslationDataset:
    """A stand-in paired dataset from plain images (A = B = the images): what a step costs does not
    depend on the pixels, so the estimate and the benchmarks can time a translation run on any data."""
    from .data import Layout
    x = ds.images
    n_hold = min(8, len(x) // 5)
    return TranslationDataset(a=x[n_hold:], b=x[n_hold:], held_a=x[:n_hold], held_b=x[:n_hold], paired=True,
                              channels=ds.channels, resolution=ds.resolution, fingerprint=ds.fingerprint,
                              source=ds.source, layout=Layout(ds.source, "paired"))


def _average_grads(params) -> None:
    """Average the gradients of ``params`` over the ranks: one all-reduce of one flat buffer, which is
    DDP's gradient sync without its bucketing (the nets are small). Every rank calls it in the same
    order, with the same parameters (gradient-less ones contribute zeros)."""
    import torch.distributed as dist
    ps = [p for p in params if p.requires_grad]
    if not ps:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    i = 0
    for p, g in zip(ps, grads):
        n = g.numel()
        p.grad = flat[i:i + n].view_as(p).clone() if p.grad is None else p.grad.copy_(flat[i:i + n].view_as(p))
        i += n


class TranslationTask:
    """Fills in the parts of trainer ``t`` that a generate run builds itself (G, D, optimisers, sampler,
    scalers) and runs its step. CycleGAN's second pair is ``G2`` (output domain -> input domain) and
    ``D2`` (judges the input domain); ``t.G`` always maps the run's direction, so export, checkpoint
    checks and sampling see the translator."""

    def __init__(self, t: Any, ds):  # t: core.train.trainer.Trainer (not imported: no cycle)
        cfg = t.cfg
        # Under torchrun every rank builds the same nets (same seed), trains on its shard of the data
        # (the samplers below) and averages its gradients with the others before each update (_update).
        self.distributed = t.world_size > 1 or (torch.distributed.is_available() and torch.distributed.is_initialized())
        ds = ds if isinstance(ds, TranslationDataset) else from_image_dataset(ds)
        self.t, self.cfg, self.ds = t, cfg, ds
        self.cyclegan = cfg.task == "cyclegan"
        dev = t.device
        c = self.c = ds.channels
        t.dataset, t.num_classes, t.ema, t.replay, t.channels_last, t.fast_path = ds, 0, None, None, False, False
        t.G, t.D = (m.to(dev) for m in build_translation_models(cfg, c))
        g_params, d_params = list(t.G.parameters()), list(t.D.parameters())
        if self.cyclegan:
            self.G2, self.D2 = (m.to(dev) for m in build_translation_models(cfg, c))
            g_params += list(self.G2.parameters())
            d_params += list(self.D2.parameters())
        if t.world_size > 1:  # one BatchNorm over the global batch (pix2pix), as in a generate run
            nets = [t.G, t.D] + ([self.G2, self.D2] if self.cyclegan else [])
            for m in nets:
                convert_batchnorm(m)
        betas = (cfg.beta1, cfg.beta2)
        t.opt_g = torch.optim.Adam(g_params, lr=cfg.lr_g, betas=betas)
        t.opt_d = torch.optim.Adam(d_params, lr=cfg.lr_d, betas=betas)
        t.scaler_g = torch.amp.GradScaler("cuda", enabled=t.precision.use_scaler)
        t.scaler_d = torch.amp.GradScaler("cuda", enabled=t.precision.use_scaler)
        self.loss = get_loss(cfg.loss)
        a_in = cfg.direction == "AtoB"
        if ds.paired:  # A and B of a pair travel together through one sampler (and one crop)
            t.sampler = TensorBatchSampler(torch.cat([ds.a, ds.b], 1), None, cfg.batch_size, dev, cfg.seed,
                                           t.rank, t.world_size)
            self.sampler_b = None
        else:
            t.sampler = TensorBatchSampler(ds.a, None, cfg.batch_size, dev, cfg.seed, t.rank, t.world_size)
            self.sampler_b = TensorBatchSampler(ds.b, None, cfg.batch_size, dev, cfg.seed + 1, t.rank, t.world_size)
        # The image pools (Shrivastava et al. 2017, as CycleGAN uses them): half of each fake batch a D
        # sees comes from its pool of past fakes; the experience-replay buffer is that pool.
        self.pool = self.pool2 = None
        if self.cyclegan and cfg.pool_size > 0:
            self.pool = ReplayBuffer(0.5, cfg.batch_size, dev, capacity=cfg.pool_size)
            self.pool2 = ReplayBuffer(0.5, cfg.batch_size, dev, capacity=cfg.pool_size)
        # The fixed inputs of the triplet grid: the held-out items, topped up with training items.
        ha, hb = ds.held_a, ds.held_b
        r = cfg.resolution
        if ds.paired and len(ha) < N_FIXED:
            k = N_FIXED - len(ha)
            ha = torch.cat([ha, center_crop(ds.a[:k], r)])
            hb = torch.cat([hb, center_crop(ds.b[:k], r)])
        elif not ds.paired:
            ha = torch.cat([ha, center_crop(ds.a[:N_FIXED], r)])[:N_FIXED]
            hb = torch.cat([hb, center_crop(ds.b[:N_FIXED], r)])[:N_FIXED]
        # Whole rows of 8 (the grid's width) even for a tiny folder: the few items repeat.
        ha, hb = ha[torch.arange(N_FIXED) % len(ha)], hb[torch.arange(N_FIXED) % len(hb)]
        fa, fb = (ds.to_float(x.contiguous()).to(dev) for x in (ha, hb))
        self.fixed_in, self.fixed_out = (fa, fb) if a_in else (fb, fa)
        ea, eb = ds.held_a, ds.held_b  # eval/l1 on held-out pairs only (never trained on)
        self.eval_in, self.eval_tg = (ds.to_float(x).to(dev) for x in ((ea, eb) if a_in else (eb, ea)))
        if t.world_size > 1:  # same initial weights everywhere (above), own crops and dropout per rank
            torch.manual_seed(cfg.seed + 1_000_003 * t.rank)
        t.step_count, t.images_seen, t.last_message, t.resumed_from = 0, 0, "", None
        t.extra_state, t.finishing, t.best_requested, t.train_seconds = {}, False, False, 0.0

    # ------------------------------------------------------------------ step
    def _batches(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) batches, cropped to the resolution with random offsets and mirrors: paired
        sides get the same ones (one crop of concat(A, B)), unpaired sides their own."""
        t, r, c = self.t, self.cfg.resolution, self.c
        x = t.sampler.next()[0]
        if self.sampler_b is None:
            x = random_crop_flip(x, r)
            a, b = x[:, :c], x[:, c:]
        else:
            a, b = random_crop_flip(x, r), random_crop_flip(self.sampler_b.next()[0], r)
        return (a, b) if self.cfg.direction == "AtoB" else (b, a)

    def _set_lr(self) -> None:
        """CycleGAN: constant, then linear to 0 at the end of the plan (steps or minutes). The rate
        the line starts from lives in each param group ("base_lr", so checkpoints keep it); a rate
        changed from outside (the loop's rollback divides it by 4) rescales that base."""
        start = self.cfg.lr_decay_start
        p = self.t.progress()
        f = 1.0 if p <= start or start >= 1 else max(0.0, 1.0 - (p - start) / (1.0 - start))
        for opt in (self.t.opt_g, self.t.opt_d):
            for g in opt.param_groups:
                g.setdefault("base_lr", g["lr"])
                last = g.get("last_lr")
                if last and g["lr"] != last:
                    g["base_lr"] *= g["lr"] / last
                g["lr"] = g["last_lr"] = g["base_lr"] * f

    def _update(self, opt, scaler, loss, want_norm: bool, params) -> torch.Tensor | None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.distributed:
            _average_grads(params)
        norm = None
        if want_norm:
            scaler.unscale_(opt)
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())
        scaler.step(opt)
        scaler.update()
        return norm

    def step(self, want_grad_norms: bool = False) -> dict[str, torch.Tensor]:
        t = self.t
        t.G.train()
        t.D.train()
        if self.cyclegan:
            self.G2.train()
            self.D2.train()
            self._set_lr()
        x, y = self._batches()
        out = self._cyclegan(x, y, want_grad_norms) if self.cyclegan else self._pix2pix(x, y, want_grad_norms)
        t.step_count += 1
        t.images_seen += x.shape[0] * t.world_size
        return {k: v.detach() for k, v in out.items()}

    def _pix2pix(self, x: torch.Tensor, y: torch.Tensor, want: bool) -> dict[str, torch.Tensor]:
        t, cfg, loss = self.t, self.cfg, self.loss
        # D judges (input, output) pairs: a conditional GAN. Its loss is halved, as in the paper, so
        # D learns more slowly than G. Autocast covers the forward passes only.
        t.D.requires_grad_(True)
        with t._autocast():
            fake = t.G(x)
            d_real = t.D(torch.cat([x, y], 1)).float()
            d_fake = t.D(torch.cat([x, fake.detach()], 1)).float()
            loss_d = 0.5 * loss.d_loss(d_real, d_fake, real_target=1.0 - cfg.label_smoothing)
        gd = self._update(t.opt_d, t.scaler_d, loss_d, want, list(t.D.parameters()))
        t.D.requires_grad_(False)
        with t._autocast():
            g_gan = loss.g_loss(t.D(torch.cat([x, fake], 1)).float())
            l1 = (fake.float() - y).abs().mean()
        gg = self._update(t.opt_g, t.scaler_g, g_gan + cfg.l1_weight * l1, want, list(t.G.parameters()))
        t.D.requires_grad_(True)
        out = {"loss/d": loss_d, "loss/g": g_gan, "loss/g_gan": g_gan, "loss/l1": l1,
               "d/real": loss.d_output(d_real).mean(), "d/fake": loss.d_output(d_fake).mean(),
               "diag/copy_l1": (fake.float() - x).abs().mean()}
        if want:
            out.update({"grad/d": gd, "grad/g": gg})
        return out

    def _cyclegan(self, x: torch.Tensor, y: torch.Tensor, want: bool) -> dict[str, torch.Tensor]:
        """Zhu et al. 2017's step: both generators against both (frozen) Ds with cycle and identity
        terms, then both Ds on real vs pooled fakes (each loss halved, as in the paper)."""
        t, cfg, loss = self.t, self.cfg, self.loss
        G, F_, D, D2 = t.G, self.G2, t.D, self.D2
        D.requires_grad_(False)
        D2.requires_grad_(False)
        idt_w = cfg.cycle_weight * cfg.identity_weight
        identity = torch.zeros((), device=x.device)
        with t._autocast():
            fake_y, fake_x = G(x), F_(y)
            rec_x, rec_y = F_(fake_y), G(fake_x)
            g_gan = loss.g_loss(D(fake_y).float()) + loss.g_loss(D2(fake_x).float())
            cycle = (rec_x.float() - x).abs().mean() + (rec_y.float() - y).abs().mean()
            total = g_gan + cfg.cycle_weight * cycle
            if idt_w > 0:  # G fed its own output domain should change nothing
                identity = (G(y).float() - y).abs().mean() + (F_(x).float() - x).abs().mean()
                total = total + idt_w * identity
        gg = self._update(t.opt_g, t.scaler_g, total, want, [*G.parameters(), *F_.parameters()])
        D.requires_grad_(True)
        D2.requires_grad_(True)
        rt = 1.0 - cfg.label_smoothing
        fy, fx = fake_y.detach().float(), fake_x.detach().float()
        if self.pool is not None:
            fy, fx = self.pool.mix(fy), self.pool2.mix(fx)
        with t._autocast():
            d_real, d_fake = D(y).float(), D(fy).float()
            loss_d_b = 0.5 * loss.d_loss(d_real, d_fake, real_target=rt)
            loss_d_a = 0.5 * loss.d_loss(D2(x).float(), D2(fx).float(), real_target=rt)
        gd = self._update(t.opt_d, t.scaler_d, loss_d_a + loss_d_b, want, [*D.parameters(), *D2.parameters()])
        # d_a judges the input domain, d_b the output one (named for the AtoB direction)
        out = {"loss/d": loss_d_b, "loss/g": g_gan, "loss/g_gan": g_gan, "loss/cycle": cycle, "loss/identity": identity,
               "loss/d_a": loss_d_a, "loss/d_b": loss_d_b, "d/real": loss.d_output(d_real).mean(),
               "d/fake": loss.d_output(d_fake).mean(), "diag/copy_l1": (fake_y.float() - x).abs().mean()}
        if want:
            out.update({"grad/d": gd, "grad/g": gg})
        return out

    # ------------------------------------------------------------------ samples and evaluation
    def _eval_mode(self):
        nets = [self.t.G] + ([self.G2] if self.cyclegan else [])
        modes = [n.training for n in nets]

        @contextlib.contextmanager
        def ctx():
            for n in nets:
                n.eval()
            try:
                with torch.no_grad(), self.t._autocast():
                    yield
            finally:
                for n, m in zip(nets, modes):
                    n.train(m)
        return ctx()

    def sample_fixed(self) -> torch.Tensor:
        """pix2pix: a row of inputs, a row of outputs, a row of targets (each column one triplet).
        CycleGAN: A, G(A), F(G(A)), then B, F(B), G(F(B)). Float in [-1, 1] on the CPU."""
        t, x, y = self.t, self.fixed_in, self.fixed_out
        with self._eval_mode():
            if self.cyclegan:
                fy, fx = t.G(x), self.G2(y)
                rows = [x, fy, self.G2(fy), y, fx, t.G(fx)]
            else:
                rows = [x, t.G(x), y]
        return torch.cat([r.float() for r in rows]).clamp(-1, 1).cpu()

    def evaluate(self) -> dict[str, float]:
        """Held-out L1, PSNR and SSIM (pixels in [0, 1]) of the eval-mode generator, and how far its
        output is from its input (pix2pix; empty without held-out pairs)."""
        if not self.ds.paired or not len(self.eval_in):
            return {}
        with self._eval_mode():
            out = self.t.G(self.eval_in).float()
        tg = self.eval_tg
        l1 = (out - tg).abs().mean() / 2  # [-1, 1] -> [0, 1] pixel units
        mse = ((out - tg) / 2).pow(2).flatten(1).mean(1)
        psnr = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
        copy = (out - self.eval_in).abs().mean() / 2
        ss = ssim((out.clamp(-1, 1) + 1) / 2, (tg + 1) / 2).mean()
        return {"eval/l1": float(l1), "eval/psnr": float(psnr), "eval/ssim": float(ss), "eval/copy_l1": float(copy)}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        t = self.t
        rng = {"torch": torch.get_rng_state()}
        if t.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(t.device)
        rng_ranks = None
        if t.world_size > 1:  # every rank crops and drops out on its own: keep each rank's generator state
            import torch.distributed as dist
            rng_ranks = [None] * t.world_size
            dist.all_gather_object(rng_ranks, {k: v.cpu() for k, v in rng.items()})
        extra = {"sampler_b": self.sampler_b.state_dict() if self.sampler_b is not None else None}
        if self.cyclegan:
            extra.update(G2=self.G2.state_dict(), D2=self.D2.state_dict(),
                         pool=self.pool.state_dict() if self.pool else None,
                         pool2=self.pool2.state_dict() if self.pool2 else None)
        return {"step": t.step_count, "images_seen": t.images_seen, "config": t.cfg.to_dict(),
                "G": t.G.state_dict(), "D": t.D.state_dict(), "G_ema": None,
                "opt_g": t.opt_g.state_dict(), "opt_d": t.opt_d.state_dict(),
                "scaler_g": t.scaler_g.state_dict(), "scaler_d": t.scaler_d.state_dict(),
                "sampler": t.sampler.state_dict(), "rng": rng, "rng_ranks": rng_ranks,
                "dataset": {"fingerprint": self.ds.fingerprint, "count": len(self.ds), "channels": self.c, "num_classes": 0},
                "extra": t.extra_state, "time": time.time(), "train_seconds": t.train_seconds, "translate": extra}

    def load_state_dict(self, s: dict[str, Any], weights_only: bool = False) -> None:
        t = self.t
        t.G.load_state_dict(s["G"])
        t.D.load_state_dict(s["D"])
        extra = s.get("translate") or {}
        if self.cyclegan:
            self.G2.load_state_dict(extra["G2"])
            self.D2.load_state_dict(extra["D2"])
        t.step_count, t.images_seen = int(s["step"]), int(s.get("images_seen", 0))
        t.extra_state = dict(s.get("extra") or {})
        if weights_only:
            t.train_seconds = 0.0
            return
        t.train_seconds = float(s.get("train_seconds") or 0.0)
        t.opt_g.load_state_dict(s["opt_g"])
        t.opt_d.load_state_dict(s["opt_d"])
        t.scaler_g.load_state_dict(s["scaler_g"])
        t.scaler_d.load_state_dict(s["scaler_d"])
        t.sampler.load_state_dict(s["sampler"])
        if self.sampler_b is not None and extra.get("sampler_b"):
            self.sampler_b.load_state_dict(extra["sampler_b"])
        for pool, key in ((self.pool, "pool"), (self.pool2, "pool2")):
            if pool is not None and extra.get(key):
                pool.load_state_dict(extra[key])
        rng, ranks = s["rng"], s.get("rng_ranks")
        if t.world_size > 1 and ranks and len(ranks) == t.world_size:
            rng = ranks[t.rank]
        torch.set_rng_state(rng["torch"])
        if t.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], t.device)

    def weights_finite(self) -> bool:
        nets = [self.t.G, self.t.D] + ([self.G2, self.D2] if self.cyclegan else [])
        flags = [torch.isfinite(p).all() for m in nets for p in m.parameters()]
        return bool(torch.stack(flags).all())


