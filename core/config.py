"""TrainConfig: the one frozen, validated, JSON-round-trippable description of a training run."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A user-facing configuration problem; the message names the offending field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


ARCHS = ("mlp", "dcgan", "resnet-sn", "stylegan2", "fastgan", "r3gan")
LOSSES = ("bce", "wgan", "wgan-gp", "hinge", "lsgan", "rpgan")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
D_NORMS = ("auto", "batch", "layer", "none")
DIFFAUG_POLICIES = ("translation", "cutout", "color")
EVAL_METRICS = ("swd", "fid", "kid")
ON_DIVERGE = ("stop", "rollback")
TASKS = ("generate", "pix2pix", "cyclegan")
DIRECTIONS = ("AtoB", "BtoA")
TRANSLATION_LOSSES = ("bce", "lsgan", "hinge")


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field whose help text is shown by the CLI and the studio."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    # --- data ---
    data: str = _f("shapes", "Image folder, or a built-in dataset: shapes (offline, procedural), fashion-mnist, mnist, cifar10.", group="data")
    resolution: int = _f(32, "Square image size in pixels (power of two, 16-256). Higher looks better but trains much slower.", group="data")
    channels: int = _f(0, "1 = greyscale, 3 = RGB, 0 = decide from the data.", group="data")
    # --- model ---
    arch: str = _f("dcgan", "Network family: mlp (original GAN, fully connected), dcgan (conv, BatchNorm), resnet-sn (residual, spectral norm; most stable), stylegan2 (mapping network + styles; style mixing and w-space truncation; slowest per step), fastgan (skip-layer excitation + self-supervised D; for 100-5,000 images), r3gan (R3GAN: normalisation-free residual nets of grouped convs; pair with rpgan + R1 + R2, see the modern preset).", group="model", choices=ARCHS)
    loss: str = _f("bce", "Adversarial loss: bce (classic), wgan (weight clipping), wgan-gp (gradient penalty), hinge (SNGAN/BigGAN), lsgan (least squares), rpgan (relativistic pairing: each fake judged against a real; R3GAN, pair it with r1 and r2).", group="model", choices=LOSSES)
    latent_dim: int = _f(100, "Size of the noise vector z fed to the generator. 64-128 is typical (stylegan2: also the size of the style vector w; 512 in the paper).", group="model")
    g_width: int = _f(64, "Generator width (channels of its widest layer / 8). Wider = more capacity, slower.", group="model")
    d_width: int = _f(64, "Discriminator width. Keep it close to g_width so neither network overpowers the other.", group="model")
    conditional: bool = _f(False, "Condition G and D on class labels (needs at least two class subfolders or a labelled built-in dataset).", group="model")
    mapping_layers: int = _f(8, "stylegan2 only: fully connected layers in the mapping network z -> w (1-16; the paper uses 8, 2-4 is plenty "
                             "for small data). More layers disentangle w further but train slower.", group="model")
    style_mixing: float = _f(0.9, "stylegan2 only: probability that a training fake takes its styles from two latents, switching at a random "
                             "layer (style-mixing regularisation; 0 = off). Keeps layers from relying on each other, so styles mix cleanly later.",
                             group="model")
    attention: int = _f(0, "SAGAN self-attention (Zhang et al. 2019) in G and D at this feature-map size (0 = off; 16 or 32 typical; "
                        "dcgan and resnet-sn): every position can look at every other, so distant parts of an image agree "
                        "(symmetry, repeated textures). Memory grows with the size to the fourth power.", group="model")
    progressive: bool = _f(False, "Progressive growing (ProGAN; dcgan and resnet-sn): train at progressive_start px first, then fade in each "
                           "doubling of the size over fade_images images. Coarse shapes settle before details; big images get cheaper early steps.", group="model")
    progressive_start: int = _f(4, "progressive only: the size training starts at, 4 or 8 px.", group="model")
    fade_images: int = _f(20000, "progressive only: training images over which each new size fades in (alpha 0 -> 1). ProGAN uses 600,000; "
                          "a few tens of thousands suit a short CPU run. The whole growth takes (2 x doublings + 1) x this.", group="model")
    stable_images: int = _f(0, "progressive only: training images each size is trained at before the next fades in (0 = same as fade_images).", group="model")
    d_norm: str = _f("auto", "Normalisation in D: batch, layer, none, or auto (batch for bce/lsgan/hinge; none with gradient penalties, where BatchNorm breaks the penalty).", group="model", choices=D_NORMS)
    # --- optimisation ---
    batch_size: int = _f(64, "Images per step. Larger is smoother but needs more memory; 32-128 is typical.", group="optim")
    lr_g: float = _f(2e-4, "Generator learning rate (Adam). Lower it if samples oscillate wildly.", group="optim")
    lr_d: float = _f(2e-4, "Discriminator learning rate. Raise it (TTUR, e.g. 4e-4) if G wins too easily; lower it if D dominates.", group="optim")
    beta1: float = _f(0.5, "Adam beta1 (momentum). 0.5 is the DCGAN default; 0.0 for wgan-gp/hinge.", group="optim")
    beta2: float = _f(0.999, "Adam beta2. 0.999 (DCGAN) or 0.9 (wgan-gp).", group="optim")
    n_critic: int = _f(1, "Discriminator updates per generator update. 5 for wgan/wgan-gp.", group="optim")
    schedule_images: int = _f(0, "Cosine schedules (R3GAN) over this many training images (0 = off): lr_g, lr_d, Adam beta2 and the "
                              "R1/R2 weights move from their values to lr_end_factor x, beta2_end and gamma_end_factor x, then hold. "
                              "About steps x batch_size spans the whole run; a pure function of images seen, so a resume continues it.", group="optim")
    lr_end_factor: float = _f(1.0, "schedule_images only: lr_g and lr_d end at this multiple of their values (R3GAN: 0.25, 2e-4 -> 5e-5).", group="optim")
    beta2_end: float = _f(0.0, "schedule_images only: Adam beta2 rises from beta2 to this (R3GAN: 0.9 -> 0.99; 0 = beta2 stays).", group="optim")
    gamma_end_factor: float = _f(1.0, "schedule_images only: the R1 and R2 weights end at this multiple of their values (R3GAN: 0.1).", group="optim")
    # --- stabilisation tricks ---
    gp_weight: float = _f(10.0, "Gradient-penalty weight (wgan-gp only).", group="tricks")
    gp_one_sided: bool = _f(False, "One-sided gradient penalty: only penalise gradient norms above 1.", group="tricks")
    clip_value: float = _f(0.01, "Weight clipping range for the wgan critic.", group="tricks")
    r1_weight: float = _f(0.0, "R1 penalty weight gamma on real images' gradients (0 = off). Try 0.1-10 for stability; ignored when r1_auto is on.", group="tricks")
    r1_auto: bool = _f(False, "Choose the R1 weight automatically: gamma = 0.0002 x resolution^2 / batch (global batch; StyleGAN2-ADA's rule), "
                       "e.g. 0.0064 at 32 px, batch 32. Turn off to set r1_weight yourself.", group="tricks")
    r1_every: int = _f(1, "Lazy R1: apply the penalty on every k-th discriminator step only, multiplied by k so its strength is unchanged "
                       "(StyleGAN2 uses 16: R1 is the costliest part of a D step). 1 = every step.", group="tricks")
    pl_weight: float = _f(0.0, "stylegan2 only: path-length regularisation weight (0 = off; the paper uses 2). Makes a fixed step in w change "
                          "the image by a fixed amount: smoother interpolations, costs an extra G pass on its steps.", group="tricks")
    pl_every: int = _f(4, "stylegan2 only: apply path-length regularisation on every k-th generator step, multiplied by k (lazy, as in the paper).",
                       group="tricks")
    r2_weight: float = _f(0.0, "R2 penalty weight on generated images' gradients (0 = off): R1's twin on the fakes. R3GAN pairs rpgan with "
                          "equal R1 and R2 weights; it keeps D smooth around the fakes too.", group="tricks")
    ada_target: float = _f(0.0, "Adaptive augmentation (ADA; 0 = off, 0.6 typical): augment every image D sees with a probability p that rises "
                           "while D is over-sure of the training images (the share of reals it scores positive passes this target) and "
                           "falls otherwise. The remedy for folders of a few thousand images or fewer; p is plotted on the Monitor.", group="tricks")
    recon_weight: float = _f(1.0, "fastgan only: weight of D's self-supervised reconstruction loss (its decoders rebuild real images from "
                             "D's features, so D describes images instead of memorising them). 0 turns it off.", group="tricks")
    minibatch_disc: bool = _f(False, "Minibatch discrimination (Salimans et al. 2016): D compares each sample with the rest of its batch "
                              "through learned projections and can reject a batch of look-alikes. Costlier than minibatch_std.", group="tricks")
    pac: int = _f(1, "PacGAN: D judges this many samples at once, stacked along channels (1 = off, 2-4 typical); a repeating "
                  "generator is easier to catch. batch_size must be a multiple. Not with conditional.", group="tricks")
    replay: float = _f(0.0, "Experience replay: this fraction of each fake batch D sees comes from a buffer of past generator samples "
                       "(0 = off; 0.1-0.5), so D does not forget old modes and G cannot cycle back to them.", group="tricks")
    label_smoothing: float = _f(0.0, "One-sided label smoothing: real targets become 1 - this (bce and lsgan). 0.1 helps an overconfident D.", group="tricks")
    instance_noise: float = _f(0.0, "Std of Gaussian noise added to D's inputs, annealed linearly to 0 by the end of the run (its steps or its minutes budget, whichever ends it; a resume continues from the level reached). 0.1 helps when D wins early.", group="tricks")
    spectral_norm: bool = _f(False, "Spectral normalisation on D's layers (always on for resnet-sn). Keeps D Lipschitz and training stable.", group="tricks")
    minibatch_std: bool = _f(False, "Minibatch standard-deviation layer in D: lets D see batch diversity, fights mode collapse.", group="tricks")
    ema: float = _f(0.999, "Decay of an exponential moving average of G's weights used for samples and export (0 = off).", group="tricks")
    diffaug: str = _f("", "Differentiable augmentation for small datasets: comma list of translation,cutout,color (empty = off).", group="tricks")
    feature_matching: float = _f(0.0, "Weight of a feature-matching term in G's loss (match D's mean features on real vs fake; 0 = off).", group="tricks")
    g_saturating: bool = _f(False, "bce only: use the original saturating G loss log(1-D(G(z))) instead of the non-saturating one (for teaching; it trains worse).", group="tricks")
    # --- schedule ---
    steps: int = _f(5000, "Total generator steps to train.", group="schedule")
    minutes: float = _f(0.0, "Training-time budget in minutes (0 = none), in total over every session of the run like steps (pauses excluded). Training stops at whichever of steps/minutes comes first.", group="schedule")
    sample_every: int = _f(250, "Save a sample grid from the fixed latent every this many steps.", group="schedule")
    checkpoint_every: int = _f(1000, "Save a full checkpoint every this many steps (also at the end).", group="schedule")
    log_every: int = _f(25, "Write metrics every this many steps.", group="schedule")
    eval_every: int = _f(1000, "Score sample quality (SWD) every this many steps and keep checkpoints/best.pt by it (0 = off). Costs about 1 s per evaluation on a CPU.", group="schedule")
    eval_samples: int = _f(512, "Generated images per periodic evaluation (more = steadier score, slower).", group="schedule")
    eval_metric: str = _f("swd", "Primary quality metric for best.pt: swd (no downloads), or fid/kid (need the Inception weights; slow on a CPU).", group="schedule", choices=EVAL_METRICS)
    keep_checkpoints: int = _f(3, "How many periodic checkpoints to keep (the newest ones; best.pt is kept separately).", group="schedule")
    on_diverge: str = _f("stop", "When losses or weights become NaN/infinite: stop (end as diverged and suggest a fix) or rollback "
                         "(once per run: reload the last good checkpoint, divide both learning rates by 4, continue).",
                         group="schedule", choices=ON_DIVERGE)
    # --- image-to-image translation ---
    task: str = _f("generate", "What the run learns: generate (images from noise), pix2pix (paired folder A/ + B/ of same-named "
                   "files, or side-by-side AB images: a U-Net learns A -> B) or cyclegan (unpaired A/ + B/ or trainA/ + trainB/: "
                   "two generators learn both ways). See docs/translation.md.", group="translate", choices=TASKS)
    direction: str = _f("AtoB", "Translation direction: AtoB (input from A, output like B) or BtoA.", group="translate", choices=DIRECTIONS)
    l1_weight: float = _f(100.0, "pix2pix only: weight of the L1 distance between output and target, next to the GAN loss "
                          "(the paper uses 100; 0 = GAN loss only, blurrier-free but less faithful).", group="translate")
    cycle_weight: float = _f(10.0, "cyclegan only: weight of the cycle-consistency loss |G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b| "
                             "(lambda, 10 in the paper).", group="translate")
    identity_weight: float = _f(0.5, "cyclegan only: identity loss |G_AB(b) - b| + |G_BA(a) - a|, as a multiple of cycle_weight "
                                "(0.5 in the paper; 0 = off). Keeps colours when they need not change.", group="translate")
    pool_size: int = _f(50, "cyclegan only: each discriminator sees half of its fakes drawn from a pool of this many past "
                        "generator outputs (50 in the paper; 0 = off), so it does not forget older fakes.", group="translate")
    lr_decay_start: float = _f(0.5, "cyclegan only: fraction of the run after which both learning rates fall linearly to 0 at the "
                               "last step (0.5 = the paper's 100 + 100 epochs; 1 = constant).", group="translate")
    # --- device / precision ---
    device: str = _f("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.", group="device")
    precision: str = _f("auto", "auto (bf16/fp16 autocast on CUDA, fp32 elsewhere), fp32, bf16 or fp16.", group="device", choices=PRECISIONS)
    threads: int = _f(0, "CPU threads for training (0 = auto: tries all cores, one fewer and half while training and keeps the fastest, "
                 "re-checking every 20-160 s and whenever the speed changes, e.g. when other programs get busy).", group="device")
    compile: bool = _f(False, "torch.compile the networks (faster steps after a slow first one).", group="device")
    seed: int = _f(0, "Random seed: same seed + same config = same run on the same machine, bit for bit when the CPU thread "
                   "count is fixed (threads=0 adapts it to the load, and different counts round differently: "
                   "such runs match in behaviour, not in every digit).", group="device")
    # --- run ---
    init_from: str = _f("", "Transfer learning: start G, D and EMA from another run's weights instead of random ones: a run folder "
                        "(its best.pt, else its newest checkpoint) or a checkpoint file. Same architecture and sizes; the "
                        "data may differ. Step, optimisers and time budget start afresh. Empty = random initialisation.",
                        group="run")
    name: str = _f("", "Short run name used in the folder name (default: arch-dataset).", group="run")

    # ------------------------------------------------------------------ API
    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first bad field; return self for chaining."""
        def need(cond: bool, name: str, msg: str) -> None:
            if not cond:
                raise ConfigError(name, msg)

        for f in fields(self):
            v = getattr(self, f.name)
            t = _TYPES[f.name]
            if t is float:
                need(isinstance(v, (int, float)) and not isinstance(v, bool), f.name, f"must be a number, got {v!r}")
                need(v == v and abs(v) != float("inf"), f.name, "must be finite")
            elif not isinstance(v, t) or (t is int and isinstance(v, bool)):
                raise ConfigError(f.name, f"must be {t.__name__}, got {type(v).__name__} {v!r}")
        need(bool(self.data.strip()), "data", "give an image folder or a built-in dataset name")
        need(16 <= self.resolution <= 256 and self.resolution & (self.resolution - 1) == 0,
             "resolution", f"must be a power of two between 16 and 256, got {self.resolution}")
        need(self.channels in (0, 1, 3), "channels", f"must be 0 (auto), 1 or 3, got {self.channels}")
        need(self.arch in ARCHS, "arch", f"unknown architecture {self.arch!r}; valid: {', '.join(ARCHS)}")
        need(self.loss in LOSSES, "loss", f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        need(1 <= self.latent_dim <= 4096, "latent_dim", "must be between 1 and 4096")
        need(4 <= self.g_width <= 1024, "g_width", "must be between 4 and 1024")
        need(4 <= self.d_width <= 1024, "d_width", "must be between 4 and 1024")
        need(self.d_norm in D_NORMS, "d_norm", f"must be one of {', '.join(D_NORMS)}")
        need(self.attention == 0 or (8 <= self.attention <= self.resolution // 2 and self.attention & (self.attention - 1) == 0),
             "attention", f"must be 0 (off) or a power of two from 8 to half the resolution ({self.resolution // 2}), "
                          f"got {self.attention}")
        if self.progressive:
            need(self.arch in ("dcgan", "resnet-sn") and self.task == "generate", "progressive",
                 f"grows dcgan and resnet-sn generators only, not arch={self.arch} task={self.task}: set progressive=false")
            need(self.progressive_start in (4, 8) and self.resolution >= 2 * self.progressive_start, "progressive_start",
                 f"must be 4 or 8 and at most half the resolution ({self.resolution}), got {self.progressive_start}")
            need(self.fade_images >= 1 and self.stable_images >= 0, "fade_images", "must be >= 1 (and stable_images >= 0)")
            need(not self.compile, "compile", "progressive nets change every step (alpha), which would recompile: set compile=false")
            need(not self.attention, "attention", "progressive growing has no self-attention layers: set attention=0")
        need(2 <= self.batch_size <= 4096, "batch_size", "must be between 2 and 4096")
        for n in ("lr_g", "lr_d"):
            need(0 < getattr(self, n) <= 1, n, "must be in (0, 1]")
        for n in ("beta1", "beta2"):
            need(0 <= getattr(self, n) < 1, n, "must be in [0, 1)")
        need(1 <= self.n_critic <= 100, "n_critic", "must be between 1 and 100")
        need(0 < self.lr_end_factor <= 1, "lr_end_factor", f"must be in (0, 1] (1 = constant), got {self.lr_end_factor}")
        need(self.beta2_end == 0 or 0 < self.beta2_end < 1, "beta2_end", f"must be 0 (off) or in (0, 1), got {self.beta2_end}")
        need(1 <= self.mapping_layers <= 16, "mapping_layers", f"must be between 1 and 16, got {self.mapping_layers}")
        need(0 <= self.style_mixing <= 1, "style_mixing", f"is a probability: must be in [0, 1], got {self.style_mixing}")
        for n in ("r1_every", "pl_every"):
            need(1 <= getattr(self, n) <= 1000, n, f"must be between 1 (every step) and 1000, got {getattr(self, n)}")
        for n in ("gp_weight", "r1_weight", "r2_weight", "recon_weight", "pl_weight", "instance_noise", "feature_matching",
                  "minutes", "schedule_images", "gamma_end_factor"):
            need(getattr(self, n) >= 0, n, "must be >= 0")
        need(0 < self.clip_value <= 1, "clip_value", "must be in (0, 1]")
        need(0 <= self.ada_target < 1, "ada_target", f"must be 0 (off) or a target in (0, 1), 0.6 typical; got {self.ada_target}")
        need(0 <= self.replay < 1, "replay", f"is a fraction of each fake batch: must be in [0, 1), got {self.replay}")
        need(1 <= self.pac <= 8, "pac", f"must be between 1 (off) and 8, got {self.pac}")
        need(self.batch_size % self.pac == 0, "pac", f"batch_size {self.batch_size} must be a multiple of pac {self.pac}")
        need(not (self.pac > 1 and self.conditional), "pac", "packing is for unconditional models: set pac=1 or conditional=false")
        need(0 <= self.label_smoothing < 0.5, "label_smoothing", "must be in [0, 0.5)")
        need(self.ema == 0 or 0.5 <= self.ema < 1, "ema", "must be 0 (off) or a decay in [0.5, 1)")
        bad = [p for p in self.diffaug_policies if p not in DIFFAUG_POLICIES]
        need(not bad, "diffaug", f"unknown policy {bad}; valid: {', '.join(DIFFAUG_POLICIES)}")
        need(self.steps >= 1, "steps", "must be >= 1")
        for n in ("sample_every", "checkpoint_every", "log_every", "keep_checkpoints"):
            need(getattr(self, n) >= 1, n, "must be >= 1")
        need(self.eval_every >= 0, "eval_every", "must be >= 0 (0 = off)")
        need(16 <= self.eval_samples <= 50000, "eval_samples", "must be between 16 and 50000")
        need(self.eval_metric in EVAL_METRICS, "eval_metric", f"must be one of {', '.join(EVAL_METRICS)}")
        need(self.on_diverge in ON_DIVERGE, "on_diverge", f"must be one of {', '.join(ON_DIVERGE)}")
        need(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        need(self.device == "auto" or self.device in ("cpu", "mps", "cuda") or self.device.startswith("cuda:"),
             "device", f"unknown device {self.device!r}; use auto, cpu, cuda, cuda:N or mps")
        need(0 <= self.threads <= 512, "threads", "must be between 0 and 512")
        need(self.task in TASKS, "task", f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")
        need(self.direction in DIRECTIONS, "direction", f"must be AtoB or BtoA, got {self.direction!r}")
        for n in ("l1_weight", "cycle_weight", "identity_weight"):
            need(getattr(self, n) >= 0, n, f"must be >= 0, got {getattr(self, n)}")
        need(0 <= self.pool_size <= 1000, "pool_size", f"must be between 0 (off) and 1000, got {self.pool_size}")
        need(0 <= self.lr_decay_start <= 1, "lr_decay_start", f"is a fraction of the run: must be in [0, 1], got {self.lr_decay_start}")
        if self.task != "generate":
            need(self.loss in TRANSLATION_LOSSES, "loss", f"{self.task} trains with {', '.join(TRANSLATION_LOSSES)}, not {self.loss!r}")
            need(not self.conditional, "conditional", f"{self.task} is conditioned on its input image, not on classes: set conditional=false")
        need(0 <= self.seed < 2**63, "seed", "must be a non-negative integer")
        # ASCII only: the run folder's name is made from it, and a non-ASCII letter was dropped (é -> "run").
        need(len(self.name) <= 60 and all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.name),
             "name", "use at most 60 ASCII letters, digits, '-', '_' or '.' (it becomes the folder name)")
        return self

    def r1_gamma(self, world_size: int = 1) -> float:
        """The R1 weight in effect: r1_weight, or with r1_auto the StyleGAN2-ADA heuristic over the global batch."""
        if self.r1_auto:
            return auto_r1_gamma(self.resolution, self.batch_size * world_size)
        return self.r1_weight

    @property
    def uses_r1(self) -> bool:
        return self.r1_auto or self.r1_weight > 0

    @property
    def diffaug_policies(self) -> list[str]:
        return [p.strip() for p in self.diffaug.split(",") if p.strip()]

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = [k for k in changes if k not in _TYPES]
        if unknown:
            raise ConfigError(unknown[0], f"unknown config field; valid fields: {', '.join(_TYPES)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict (e.g. config.json); unknown keys are refused by name, types coerced."""
        if not isinstance(d, dict):
            raise ConfigError(source, "expected a JSON object of config fields")
        kwargs = {}
        for k, v in d.items():
            if k not in _TYPES:
                raise ConfigError(k, f"unknown config field in {source}; valid fields: {', '.join(_TYPES)}")
            kwargs[k] = coerce(k, v)
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: str | Path) -> TrainConfig:
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", f"file not found: {p}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError("config", f"cannot read {p}: {e}") from None
        if isinstance(d, dict) and "config" in d and isinstance(d["config"], dict):
            d = d["config"]  # accept a run's config.json, which wraps the config with metadata
        return cls.from_dict(d, source=str(p))


def auto_r1_gamma(resolution: int, batch: int) -> float:
    """StyleGAN2-ADA's automatic R1 gamma: 0.0002 * resolution^2 / batch (batch over all processes)."""
    return 0.0002 * resolution ** 2 / batch


_TYPES: dict[str, type] = {f.name: {"int": int, "float": float, "bool": bool, "str": str}[f.type]
                           for f in fields(TrainConfig)}
FIELD_HELP: dict[str, str] = {f.name: f.metadata["help"] for f in fields(TrainConfig)}
FIELD_GROUP: dict[str, str] = {f.name: f.metadata["group"] for f in fields(TrainConfig)}
FIELD_CHOICES: dict[str, tuple] = {f.name: f.metadata["choices"] for f in fields(TrainConfig) if "choices" in f.metadata}
FIELD_NAMES: tuple[str, ...] = tuple(_TYPES)


def coerce(name: str, value: Any) -> Any:
    """Convert a JSON/CLI value to the field's type, or raise ConfigError naming the field."""
    if name not in _TYPES:
        raise ConfigError(name, f"unknown config field; valid fields: {', '.join(_TYPES)}")
    t = _TYPES[name]
    try:
        if t is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            if isinstance(value, bool):
                raise ValueError
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if t is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(name, f"expected {t.__name__}, got {value!r}") from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse CLI ``key=value`` strings into typed field values."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError("--set", f"expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = coerce(k.strip(), v.strip())
    return out


# Presets: named partial configs; fields not named keep their defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "dcgan-classic": dict(arch="dcgan", loss="bce", resolution=64, latent_dim=100, g_width=64, d_width=64,
                          lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=128, ema=0.0),
    "wgan": dict(arch="dcgan", loss="wgan", n_critic=5, lr_g=5e-5, lr_d=5e-5, d_norm="none", ema=0.0),
    "wgan-gp": dict(arch="dcgan", loss="wgan-gp", n_critic=5, lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9,
                    gp_weight=10.0, d_norm="layer"),
    "hinge-sn": dict(arch="resnet-sn", loss="hinge", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_critic=1,
                     spectral_norm=True),
    "lsgan": dict(arch="dcgan", loss="lsgan", lr_g=2e-4, lr_d=2e-4),
    "small-dataset": dict(arch="dcgan", loss="hinge", spectral_norm=True, diffaug="translation,cutout,color",
                          r1_weight=0.0, minibatch_std=True, lr_d=2e-4, lr_g=2e-4),
    "mlp-original": dict(arch="mlp", loss="bce", g_saturating=False, lr_g=2e-4, lr_d=2e-4, ema=0.0),
    "stylegan2": dict(arch="stylegan2", loss="bce", latent_dim=512, g_width=64, d_width=64, mapping_layers=8,
                      style_mixing=0.9, r1_auto=True, r1_every=16, pl_weight=2.0, pl_every=4, lr_g=0.0025,
                      lr_d=0.0025, beta1=0.0, beta2=0.99, batch_size=32, ema=0.999),
    "stylegan2-small": dict(arch="stylegan2", loss="bce", resolution=32, latent_dim=64, g_width=16, d_width=16,
                            mapping_layers=2, style_mixing=0.9, r1_auto=True, r1_every=16, pl_weight=0.0,
                            lr_g=0.0025, lr_d=0.0025, beta1=0.0, beta2=0.99, batch_size=32, ema=0.999),
    "fastgan": dict(arch="fastgan", loss="hinge", latent_dim=128, g_width=64, d_width=64, lr_g=2e-4, lr_d=2e-4,
                    beta1=0.5, beta2=0.999, batch_size=16, ada_target=0.6, recon_weight=1.0, ema=0.999),
    # R3GAN's CIFAR-10 schedule ends (its 20M images shortened to the default 5,000 steps x 64 images).
    "modern": dict(arch="r3gan", loss="rpgan", r1_weight=0.05, r2_weight=0.05, gamma_end_factor=0.1, lr_g=2e-4, lr_d=2e-4,
                   lr_end_factor=0.25, beta1=0.0, beta2=0.9, beta2_end=0.99, schedule_images=320_000, n_critic=1, ema=0.999),
    "pix2pix": dict(task="pix2pix", loss="bce", l1_weight=100.0, g_width=64, d_width=64, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
                    beta2=0.999, batch_size=16, ema=0.0, eval_every=250),
    "cyclegan": dict(task="cyclegan", loss="lsgan", cycle_weight=10.0, identity_weight=0.5, pool_size=50, lr_decay_start=0.5,
                     g_width=64, d_width=64, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=4, ema=0.0),
}
PRESET_HELP: dict[str, str] = {
    "default": "DCGAN + non-saturating BCE + EMA: a solid first run on most folders.",
    "dcgan-classic": "Radford et al. 2015 exactly: 64x64, batch 128, Adam 2e-4/0.5, no EMA.",
    "wgan": "Arjovsky et al. 2017: critic with weight clipping, 5 critic steps, RMSprop-like low LR.",
    "wgan-gp": "Gulrajani et al. 2017: gradient penalty 10, 5 critic steps, Adam(0, 0.9).",
    "hinge-sn": "SNGAN: residual nets with spectral norm and hinge loss. Stable and strong.",
    "lsgan": "Least-squares GAN (Mao et al. 2017): smoother gradients than BCE.",
    "small-dataset": "Few hundred images: DiffAugment + spectral norm + minibatch std to stop D memorising.",
    "mlp-original": "Goodfellow et al. 2014: fully connected networks. For learning, not for quality.",
    "stylegan2": "Karras et al. 2020 (config F as in StyleGAN2-ADA): 8-layer mapping, style mixing 0.9, lazy R1 (auto gamma, "
                 "every 16), path length 2, Adam 0.0025 (0, 0.99), EMA. Best quality; needs a GPU beyond 32 px.",
    "fastgan": "Liu et al. 2021 for 100-5,000 images: skip-layer excitation G, self-supervised D, hinge loss, adaptive "
               "augmentation (ADA, target 0.6), batch 16, EMA. The pick for a folder of your own pictures.",
    "modern": "R3GAN (Huang et al. 2024) for 32-64 px: its normalisation-free residual nets (arch r3gan), relativistic pairing + "
              "R1 + R2, and its cosine schedules over 320,000 images (5,000 steps x 64): gamma 0.05 -> 0.005, lr 2e-4 -> 5e-5, "
              "Adam beta1 0, beta2 0.9 -> 0.99; EMA. No mode dropping by construction. Raise r1/r2 (the paper: 2 at 64 px faces) if D overfits.",
    "pix2pix": "Isola et al. 2017 for a paired folder (A/ + B/ or side-by-side AB images): U-Net with skips and dropout, "
               "PatchGAN D on (input, output), BCE + 100 x L1, Adam 2e-4 (0.5). Held-out L1/PSNR recorded.",
    "cyclegan": "Zhu et al. 2017 for unpaired A/ + B/ folders: two ResNet generators, two PatchGAN Ds, LSGAN, cycle 10, "
                "identity 0.5, a pool of 50 past fakes, lr falling linearly to 0 over the second half.",
    "stylegan2-small": "StyleGAN2 sized for a CPU at 32 px (widths 16, 2-layer mapping, no path-length reg): trains in minutes; "
                       "for learning styles, mixing and w-space truncation.",
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """Config from a named preset plus overrides (validated)."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides}).validate()


# Fields that change the networks' shapes or the data tensor: resuming with a different value is refused.
RESUME_LOCKED = ("data", "resolution", "channels", "arch", "latent_dim", "g_width", "d_width", "conditional",
                 "d_norm", "spectral_norm", "minibatch_std", "loss", "mapping_layers", "minibatch_disc", "pac",
                 "attention", "task", "direction", "progressive", "progressive_start")
