"""The Finding record every detector returns, and how each loss's D outputs are read."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import TrainConfig

SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class Finding:
    """One diagnosis of a run.

    ``evidence`` holds the numbers that triggered it (JSON-able), ``explanation`` says in plain
    words what is happening, ``suggestion`` what to change, and ``fix`` the same as
    ``{config_field: new_value}`` computed from the run's config (empty when no field applies),
    ready for ``JobManager.fork(run_dir, fix)``.
    """

    kind: str
    severity: str
    evidence: dict[str, Any]
    explanation: str
    suggestion: str
    fix: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.evidence = {k: _jsonable(v) for k, v in self.evidence.items()}

    def to_event(self, status: str = "started", **extra: Any) -> dict[str, Any]:
        """The events.jsonl record (the loop adds ``step`` and ``time``)."""
        return {"type": "finding", "kind": self.kind, "severity": self.severity, "status": status,
                "evidence": dict(self.evidence), "explanation": self.explanation,
                "suggestion": self.suggestion, "fix": dict(self.fix), **extra}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jsonable(v: Any) -> Any:
    """Round floats to 4 significant digits; non-finite floats become strings (JSON has no NaN)."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return float(f"{v:.4g}")
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    try:
        return _jsonable(float(v))  # numpy / torch scalars
    except (TypeError, ValueError):
        return str(v)


@dataclass(frozen=True)
class LossView:
    """How to read ``loss/d``, ``d/real`` and ``d/fake`` for one adversarial loss.

    bce rows report sigmoid probabilities; lsgan raw outputs with targets 1 (real) / 0 (fake);
    hinge raw logits whose margin is +-1; wgan / wgan-gp unbounded critic values whose offset
    means nothing (only differences do).
    """

    name: str
    real_target: float
    chance_d_loss: float | None  # D's loss when it cannot tell real from fake at all
    d_floor: float  # D's smallest possible loss (label smoothing keeps bce above 0)

    @classmethod
    def of(cls, cfg: TrainConfig) -> LossView:
        t = 1.0 - cfg.label_smoothing if cfg.loss == "bce" else 1.0
        if cfg.loss == "bce":
            chance = 2 * math.log(2)  # a constant 0.5 gives ln 2 per term whatever the real target
            floor = -(t * math.log(t) + (1 - t) * math.log(1 - t)) if 0 < t < 1 else 0.0
        elif cfg.loss == "lsgan":
            chance, floor = 0.25, 0.0
        elif cfg.loss == "hinge":
            chance, floor = 2.0, 0.0
        else:  # wgan, wgan-gp: no chance value in the sense of a fixed loss level
            chance, floor = None, 0.0
        return cls(cfg.loss, t, chance, floor)

    @property
    def is_critic(self) -> bool:
        return self.name in ("wgan", "wgan-gp")

    def d_wins(self, row: dict[str, Any]) -> bool | None:
        """D separates real from fake confidently on this row (None: cannot tell / not applicable)."""
        r, f, ld = _get(row, "d/real"), _get(row, "d/fake"), _get(row, "loss/d")
        if r is None or f is None or ld is None or self.is_critic:
            return None
        if self.name == "bce":
            return r >= 0.9 * self.real_target and f <= 0.1 and ld <= self.d_floor + 0.25
        if self.name == "lsgan":
            return r >= 0.9 and f <= 0.1 and ld <= 0.01
        return r >= 1.0 and f <= -1.0 and ld <= 0.1  # hinge: both sides beyond the margin

    def d_at_chance(self, row: dict[str, Any]) -> bool | None:
        """D outputs the 'cannot tell' value on both real and fake images and its loss sits at chance."""
        r, f, ld = _get(row, "d/real"), _get(row, "d/fake"), _get(row, "loss/d")
        if r is None or f is None or ld is None or self.chance_d_loss is None:
            return None
        if self.name == "bce":
            mid, tol = 0.5, 0.05
        elif self.name == "lsgan":
            mid, tol = self.real_target / 2, 0.05
        else:  # hinge
            mid, tol = 0.0, 0.15
        return abs(r - mid) <= tol and abs(f - mid) <= tol and abs(ld - self.chance_d_loss) <= 0.05 * self.chance_d_loss


    def d_fooled(self, row: dict[str, Any]) -> bool | None:
        """D scores generated images at least as 'real' as real ones and its loss is at or above
        chance (for critics: the Wasserstein estimate d/real - d/fake is not positive)."""
        r, f, ld = _get(row, "d/real"), _get(row, "d/fake"), _get(row, "loss/d")
        if r is None or f is None:
            return None
        if self.is_critic:
            return r - f <= 0
        if ld is None or self.chance_d_loss is None:
            return None
        tol = 0.15 if self.name == "hinge" else 0.05
        return ld >= 0.95 * self.chance_d_loss and f >= r - tol

    def d_failing(self, row: dict[str, Any]) -> bool | None:
        """d_at_chance or d_fooled (None when neither can be judged)."""
        a, b = self.d_at_chance(row), self.d_fooled(row)
        if a is None and b is None:
            return None
        return bool(a) or bool(b)


def balance_lrs(cfg: TrainConfig) -> tuple[dict[str, float], str]:
    """A fix for a D that learns much faster than G: equal learning rates, at a sensible level."""
    if cfg.lr_g >= 5e-5:
        return {"lr_d": cfg.lr_g}, f"lower lr_d from {cfg.lr_d:.3g} to {cfg.lr_g:.3g} (the same as lr_g)"
    new = min(cfg.lr_d, 2e-4)
    return ({"lr_g": new, "lr_d": new},
            f"set both learning rates to {new:.3g} (lr_g={cfg.lr_g:.3g} is too small for G to keep up)")


def _get(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def series(rows: list[dict[str, Any]], key: str) -> list[float]:
    """The finite values of ``key`` in ``rows``, in order (rows lacking it are skipped)."""
    return [v for v in (_get(r, key) for r in rows) if v is not None]


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return float("nan")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def slope(xs: list[float]) -> float:
    """Least-squares slope per row of a series (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx = (n - 1) / 2
    my = sum(xs) / n
    num = sum((i - mx) * (x - my) for i, x in enumerate(xs))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den
