"""Trainer: builds G, D, optimisers, EMA and precision from a TrainConfig and runs one GAN step at a time."""
from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data import DiffAugment, ImageDataset
from ..losses import feature_matching_loss, get_loss, gradient_penalty, r1_penalty, r1_penalty_fp32
from ..models import build_models
from ..models.progressive import Progression
from ..runs import RunStore
from .d_terms import DTerms
from .device import choose_threads, configure_cuda_math, pick_device, pick_precision, use_channels_last
from .ema import EMA
from .regularizers import LazyRegularizers
from .replay import ReplayBuffer
from .rmsprop import ScalerAwareRMSprop
from .sampler import TensorBatchSampler
from .schedule import Schedule
from .syncbn import bn_sync, convert_batchnorm
from .threads import make_thread_tuner

N_FIXED = 64  # samples in the fixed-latent grid (8 x 8)
NOISE_KEY = "instance_noise"  # extra_state: where the instance-noise line was re-anchored (resume, fork)


class Trainer:
    """One GAN training session over an in-memory dataset, optionally writing a run folder.

    ``step()`` does n_critic discriminator updates and one generator update and returns 0-d
    tensors (no host sync); ``loop.run_loop`` (usually through ``session.run_training``) drives
    it with logging, samples, checkpoints and cooperative stop/pause.
    """

    def __init__(self, cfg: TrainConfig, dataset: ImageDataset, store: RunStore | None = None,
                 shared_cpu: bool = False, rank: int = 0, world_size: int = 1,
                 device: torch.device | None = None, fast_path: bool = True):
        self.cfg = cfg.validate()
        self.dataset = dataset
        self.store = store
        self.rank, self.world_size = rank, world_size
        self.device = device or pick_device(cfg.device)
        self.precision = pick_precision(cfg, self.device)
        self.thread_tuner = make_thread_tuner(cfg, self.device, shared_cpu, world_size)
        self._fixed_threads = (choose_threads(cfg, shared_cpu, world_size=world_size)
                               if self.device.type == "cpu" else None)
        self.apply_threads()
        torch.manual_seed(cfg.seed)
        self.task = None  # image-to-image translation (cfg.task != generate): nets, data and step in core/translate
        if cfg.task != "generate":
            from ..translate.step import TranslationTask
            self.task = TranslationTask(self, dataset)
            return
        self.num_classes = dataset.num_classes if cfg.conditional else 0
        self.G, self.D = build_models(cfg, dataset.channels, self.num_classes)
        self.G.to(self.device)
        self.D.to(self.device)
        if world_size > 1:  # one BatchNorm over the global batch, as a single process would compute
            convert_batchnorm(self.G)
            convert_batchnorm(self.D)
        # Fast paths that leave the mathematics unchanged (tests/test_fastpath.py checks that);
        # ``fast_path=False`` is the plain reference path. See docs/performance.md for the measurements.
        self.fast_path = fast_path
        if fast_path and self.device.type == "cuda":
            configure_cuda_math()
        self.channels_last = fast_path and use_channels_last(self.device, cfg.arch)
        if self.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.loss = get_loss(cfg.loss)
        self.opt_g, self.opt_d = self._optimizers()
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.precision.use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.precision.use_scaler)
        self.ema = EMA(self.G, cfg.ema) if cfg.ema > 0 else None
        self.prog = Progression(cfg) if cfg.progressive else None  # ProGAN growing: stage and alpha from images seen
        self.augment = DiffAugment(cfg.diffaug_policies) if cfg.diffaug_policies else None
        self.sampler = TensorBatchSampler(dataset.images, dataset.labels if self.num_classes else None,
                                          cfg.batch_size, self.device, cfg.seed, rank, world_size)
        # Networks used for the forward passes (DDP-wrapped, possibly compiled); state lives in G and D.
        self.G_fwd: Callable = self.G
        self.D_fwd: Callable = self.D
        # DDP wrappers whenever this process is a rank of a job (torchrun initialised the process
        # group), one-process jobs included: a 1-GPU torchrun run then takes the same NCCL + DDP
        # path as a multi-GPU one.
        if world_size > 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Buffers (BN running stats) are kept in step by GlobalBatchNorm, not by a broadcast per
            # forward; the one sync at construction is harmless (every rank built the same nets).
            # forward_sync_buffers replaces the deprecated broadcast_buffers in newer torch
            # releases; older ones (2.11 on some GPU images) only know broadcast_buffers.
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                       else {"broadcast_buffers": False})
            # Progressive growing leaves the blocks of later stages out of the graph until their stage.
            self.G_fwd = DDP(self.G, device_ids=ids, find_unused_parameters=cfg.progressive, **no_sync)
            self.D_fwd = DDP(self.D, device_ids=ids, find_unused_parameters=cfg.progressive, **no_sync)
        if cfg.compile:
            self.G_fwd, self.D_fwd = torch.compile(self.G_fwd), torch.compile(self.D_fwd)
        # R1 is a gradient of D's output with respect to its input, differentiated again: the
        # training forward D(real) serves when it is eager and fp32. A compiled D cannot be
        # differentiated twice (aot_autograd has no double backward), and an autocast forward
        # would give half-precision gradients of gradients that underflow, so those take R1 from
        # an eager fp32 pass of their own, as the gradient penalty always does.
        self.r1_reuses_d_real = cfg.uses_r1 and not cfg.compile and self.precision.autocast_dtype is None
        # Lazy R1 / path length (every k-th step, k-fold weight) and the running pl_mean.
        self.regs = LazyRegularizers(cfg, self.G, self.device, world_size)
        # ADA, FastGAN's reconstruction, R2 (each off unless asked) and experience replay.
        self.terms = DTerms(cfg, self.D, self.device)
        self.replay = ReplayBuffer(cfg.replay, cfg.batch_size, self.device) if cfg.replay > 0 else None
        # R3GAN's cosine schedules of lr, beta2 and the R1/R2 weights (schedule_images > 0), set before each step.
        self.sched = Schedule(cfg, world_size) if cfg.schedule_images > 0 else None
        # The G phase calls D directly: it needs no DDP gradient sync for D (D has no grads there).
        self.D_plain: Callable = torch.compile(self.D) if cfg.compile else self.D
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(N_FIXED, cfg.latent_dim, generator=gen).to(self.device)
        # Conditional grids: one class per row, so each row shows what G makes of that class.
        self.fixed_y = (torch.arange(N_FIXED) // 8 % self.num_classes).to(self.device) if self.num_classes else None
        if world_size > 1:  # same initial weights everywhere (above), different noise per rank (below)
            torch.manual_seed(cfg.seed + 1_000_003 * rank)
        self.step_count = 0
        self.images_seen = 0
        self.last_message = ""  # how the last run_loop() ended, in words
        self.resumed_from = None  # the checkpoint path this trainer continued from, if any
        self.extra_state: dict[str, Any] = {}  # hooks' resumable state (e.g. best metric so far)
        self.finishing = False  # True during a run's last log step: hooks may do end-of-run work
        self.best_requested = False  # set by a hook on a new best score; the loop then writes best.pt
        # Training time (pauses excluded) up to step_count, summed over every session of this run
        # folder: the minutes budget is a total, like steps, so a resumed run ends where an
        # uninterrupted one would.
        self.train_seconds = 0.0

    # ------------------------------------------------------------------ threads
    @property
    def threads(self) -> int | None:
        """CPU intra-op threads in use now (None off the CPU); with ``threads=0`` they adapt."""
        return self.thread_tuner.current if self.thread_tuner else self._fixed_threads

    def apply_threads(self) -> None:
        """Set this trainer's thread count on the calling thread (thread settings are per thread)."""
        if self.thread_tuner is not None:
            self.thread_tuner.apply()
        elif self._fixed_threads:
            torch.set_num_threads(self._fixed_threads)

    # ------------------------------------------------------------------ build
    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        cfg = self.cfg
        # One fused kernel per optimiser step instead of a loop of small ops per parameter
        # (CUDA; and CPU, where torch has a fused Adam too). The plain path keeps torch's default.
        fused = {"fused": True} if self.device.type == "cuda" or (self.fast_path and self.device.type == "cpu") else {}
        if self.loss.prefers_optimizer == "rmsprop":  # WGAN with clipping: momentum-free, as in the paper
            # torch has no fused RMSprop: under fp16 + GradScaler this one consumes the scaler's
            # inf flag on the device, as fused Adam does, instead of a host sync per step.
            rms = ScalerAwareRMSprop if self.precision.use_scaler else torch.optim.RMSprop
            return (rms(self.G.parameters(), lr=cfg.lr_g), rms(self.D.parameters(), lr=cfg.lr_d))
        return (torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), **fused),
                torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), **fused))

    def _autocast(self):
        if self.precision.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.autocast_dtype)

    def _noise(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.cfg.latent_dim, device=self.device)
        y = torch.randint(0, self.num_classes, (n,), device=self.device) if self.num_classes else None
        return z, y

    # ------------------------------------------------------------------ schedules
    def progress(self, cfg: TrainConfig | None = None) -> float:
        """How much of the run's plan (``cfg``, default this trainer's) is done, 0..1: steps or,
        with a minutes budget, training time, whichever runs out first (the rule that ends the run)."""
        cfg = cfg or self.cfg
        p = self.step_count / cfg.steps
        if cfg.minutes > 0:
            p = max(p, self.train_seconds / (cfg.minutes * 60))
        return min(1.0, max(0.0, p))

    def instance_noise_std(self, cfg: TrainConfig | None = None) -> float:
        """Instance noise falls linearly to 0 at the end of the plan. A resume with a new budget
        (or a fork) re-anchors the line at the std it had reached (or the fork's setting), so the
        schedule never jumps back up; with the plan unchanged it is the uninterrupted line.
        ``cfg``: the plan to read it under (default this trainer's)."""
        cfg = cfg or self.cfg
        a = self.extra_state.get(NOISE_KEY)
        p0, std0 = (float(a["p0"]), float(a["std0"])) if isinstance(a, dict) else (0.0, cfg.instance_noise)
        if p0 >= 1.0:
            return 0.0
        return std0 * max(0.0, 1.0 - (self.progress(cfg) - p0) / (1.0 - p0))

    def _anchor_instance_noise(self, saved: dict[str, Any], weights_only: bool) -> None:
        if self.cfg.instance_noise <= 0:
            self.extra_state.pop(NOISE_KEY, None)
            return
        try:
            old = TrainConfig.from_dict(saved["config"])
        except (KeyError, TypeError, ValueError):  # an old or foreign config: treat it as a new plan
            old = None
        same_noise = old is not None and not weights_only and old.instance_noise == self.cfg.instance_noise
        if same_noise and old.steps == self.cfg.steps and old.minutes == self.cfg.minutes:
            return  # the saved anchor (if any) still describes this plan
        # A new budget: continue from where the noise was; a fork or a changed setting: the new value.
        std_now = self.instance_noise_std(old) if same_noise else self.cfg.instance_noise
        self.extra_state[NOISE_KEY] = {"p0": self.progress(), "std0": std_now}

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees: instance noise (annealed to 0 over the run), then DiffAugment."""
        if self.cfg.instance_noise > 0:
            std = self.instance_noise_std()
            if std > 0:
                x = x + std * torch.randn_like(x)
        if self.augment is not None:
            x = self.augment(x)
        x = self.terms.augment(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # ------------------------------------------------------------------ step
    def step(self, want_grad_norms: bool = False) -> dict[str, torch.Tensor]:
        """n_critic D updates, then one G update. Returns detached 0-d tensors (no host sync)."""
        cfg, out = self.cfg, {}
        self.G.train()
        self.D.train()
        if self.thread_tuner is None:
            with bn_sync(self.world_size > 1):
                return self._step(cfg, out, want_grad_norms)
        t0 = time.perf_counter()  # CPU only: the step is synchronous, so this is its real duration
        with bn_sync(self.world_size > 1):
            out = self._step(cfg, out, want_grad_norms)
        self.thread_tuner.record(time.perf_counter() - t0)
        return out

    def _step(self, cfg: TrainConfig, out: dict, want_grad_norms: bool) -> dict[str, torch.Tensor]:
        if self.task is not None:
            return self.task.step(want_grad_norms)
        real_target = 1.0 - cfg.label_smoothing
        if self.prog is not None:
            self.prog.apply(self.images_seen, self.G, self.D, self.sample_generator)
        if self.sched is not None:
            out.update(self.sched.apply(self))
        self.D.requires_grad_(True)
        for i in range(cfg.n_critic):
            real, y = self.sampler.next()
            real = self.prog.reals(real) if self.prog is not None else real  # at the stage's resolution
            z, _ = self._noise(real.shape[0])
            # The last critic step's fake batch also serves the generator step (as in the DCGAN
            # paper's code and the PyTorch tutorial): G runs forward once per step, not twice, so
            # its graph is kept here; D only ever sees it detached.
            last = i == cfg.n_critic - 1
            with (contextlib.nullcontext() if last else torch.no_grad()), self._autocast():
                fake_g = self.G_fwd(z, y)
            fake = fake_g.detach()
            need_r1 = self.regs.r1_due(self.step_count * cfg.n_critic + i)
            real_in = self._d_input(real)
            if need_r1 and self.r1_reuses_d_real:
                real_in = real_in.detach().requires_grad_(True)
            fake_in = self._d_input((self.replay.mix(fake) if self.replay is not None else fake).float())
            with self._autocast():
                d_real, recon = self.terms.d_real(self.D_fwd, real_in, y)
                d_fake = self.D_fwd(fake_in, y)
                loss_d = self.loss.d_loss(d_real.float(), d_fake.float(), real_target=real_target)
            total_d = loss_d if recon is None else loss_d + recon
            self.terms.observe(d_real)
            r2 = self.terms.r2(self.D, fake_in, y)
            if r2 is not None:
                total_d = total_d + r2
            if self.loss.uses_gradient_penalty:
                # Penalties are computed in fp32: second-order gradients underflow in half precision.
                gp, gnorm = gradient_penalty(self.D, real.detach(), fake.detach().float(), y, one_sided=cfg.gp_one_sided)
                total_d = total_d + cfg.gp_weight * gp
                out["gp"], out["gp/grad_norm"] = gp.detach(), gnorm.detach()
            if need_r1:
                # Either through this D(real) forward (eager fp32: no extra pass needed), or its own
                # eager fp32 pass (see r1_reuses_d_real).
                r1 = (r1_penalty(d_real.float(), real_in) if self.r1_reuses_d_real
                      else r1_penalty_fp32(self.D, real_in, y))
                total_d = total_d + self.regs.r1_scale * r1
                self.regs.last["r1"] = r1.detach()
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(total_d).backward()
            if want_grad_norms:
                self.scaler_d.unscale_(self.opt_d)
                out["grad/d"] = _grad_norm(self.D)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if self.loss.uses_weight_clipping:
                with torch.no_grad():  # two multi-tensor kernels instead of one clamp per parameter
                    params = list(self.D.parameters())
                    torch._foreach_clamp_min_(params, -cfg.clip_value)
                    torch._foreach_clamp_max_(params, cfg.clip_value)
        # ---- generator phase: D is only a path for G's gradients, so its parameters need none
        # (saves a weight-gradient pass, and keeps D's DDP reducer out of G's backward).
        self.D.requires_grad_(False)
        fake, yg = fake_g, y
        with self._autocast():
            d_fake_g = self.D_plain(self._d_input(fake), yg)
            d_real_g = None
            if self.loss.g_needs_real:  # relativistic: each fake is judged against a real, by the current D
                with torch.no_grad():
                    d_real_g = self.D_plain(self._d_input(real), y).float()
            loss_g = self.loss.g_loss(d_fake_g.float(), saturating=cfg.g_saturating, real_logits=d_real_g)
            total_g = loss_g
            if cfg.feature_matching > 0:
                with torch.no_grad():
                    real_feat = self.D.features(self._d_input(real), y)
                fm = feature_matching_loss(real_feat.float(), self.D.features(self._d_input(fake), yg).float())
                total_g = total_g + cfg.feature_matching * fm
                out["fm"] = fm.detach()
        if self.regs.pl_due(self.step_count):
            total_g = total_g + self.regs.path_length_term(self.G, *self._noise(real.shape[0]))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total_g).backward()
        if want_grad_norms:
            self.scaler_g.unscale_(self.opt_g)
            out["grad/g"] = _grad_norm(self.G)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.G)
        self.step_count += 1
        self.images_seen += cfg.batch_size * cfg.n_critic * self.world_size
        if self.prog is not None:  # prog/stage, prog/alpha; then the stage samples between steps show
            out.update(self.prog.metrics())
            self.prog.apply(self.images_seen, self.G, self.D, self.sample_generator)
        out.update(self.regs.last)
        out.update(self.terms.last)  # ADA's p and r_t, the reconstruction loss, R2  # the last R1 / path-length values, also between their lazy steps
        out.update({"loss/d": loss_d.detach(), "loss/g": loss_g.detach(),
                    "d/real": self.loss.d_output(d_real.detach().float()).mean(),
                    "d/fake": self.loss.d_output(d_fake.detach().float()).mean()})
        return out

    # ------------------------------------------------------------------ samples
    @property
    def sample_generator(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.G

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """Images from the fixed latent batch (EMA generator when enabled), float in [-1, 1] on CPU."""
        if self.task is not None:
            return self.task.sample_fixed()
        g = self.sample_generator
        was_training = g.training
        g.eval()
        try:
            with self._autocast():
                x = g(self.fixed_z, self.fixed_y)
        finally:
            g.train(was_training)
        return x.float().cpu()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimisers, EMA, scalers, data order, RNG."""
        if self.task is not None:
            return self.task.state_dict()
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        rng_ranks = None
        if self.world_size > 1:  # every rank draws its own noise: keep each rank's generator state
            import torch.distributed as dist
            rng_ranks = [None] * self.world_size
            dist.all_gather_object(rng_ranks, {k: v.cpu() for k, v in rng.items()})
        return {
            "step": self.step_count, "images_seen": self.images_seen, "config": self.cfg.to_dict(),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": self.ema.state_dict() if self.ema else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
            "sampler": self.sampler.state_dict(), "rng": rng, "rng_ranks": rng_ranks,
            "dataset": {"fingerprint": self.dataset.fingerprint, "count": len(self.dataset),
                        "channels": self.dataset.channels, "num_classes": self.num_classes},
            "extra": self.extra_state, "time": time.time(), "train_seconds": self.train_seconds,
            "regularizers": self.regs.state_dict(), "d_terms": self.terms.state_dict(),
            "replay": self.replay.state_dict() if self.replay is not None else None,
        }

    def load_state_dict(self, s: dict[str, Any], weights_only: bool = False) -> None:
        """Restore a checkpoint; ``weights_only`` (forks) restores networks and EMA but not optimisers/RNG."""
        if self.task is not None:
            return self.task.load_state_dict(s, weights_only)
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        if self.ema is not None:
            if s.get("G_ema"):
                self.ema.load_state_dict(s["G_ema"])
            else:
                self.ema.model.load_state_dict(s["G"])
        self.step_count = int(s["step"])
        self.images_seen = int(s.get("images_seen", 0))
        self.extra_state = dict(s.get("extra") or {})
        self.terms.load_state_dict(s.get("d_terms") or {})  # ADA's p continues where it was, forks too
        if self.replay is not None and s.get("replay"):
            self.replay.load_state_dict(s["replay"])
        self.regs.load_state_dict(s.get("regularizers") or {})  # pl_mean belongs with G's weights (forks too)
        if weights_only:  # a fork is a new run folder: its time budget starts afresh
            self.train_seconds = 0.0
            self._anchor_instance_noise(s, weights_only=True)
            return
        self.train_seconds = float(s.get("train_seconds") or 0.0)  # 0 in checkpoints older than this field
        self._anchor_instance_noise(s, weights_only=False)
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.scaler_g.load_state_dict(s["scaler_g"])
        self.scaler_d.load_state_dict(s["scaler_d"])
        self.sampler.load_state_dict(s["sampler"])
        rng = s["rng"]
        ranks = s.get("rng_ranks")
        if self.world_size > 1 and ranks and len(ranks) == self.world_size:
            rng = ranks[self.rank]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def weights_finite(self) -> bool:
        """True when every weight of G and D is finite: one host sync in all, not one per parameter."""
        if self.task is not None:
            return self.task.weights_finite()
        flags = [torch.isfinite(p).all() for m in (self.G, self.D) for p in m.parameters()]
        return bool(torch.stack(flags).all()) if flags else True


def _grad_norm(model: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
