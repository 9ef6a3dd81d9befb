"""RMSprop that takes GradScaler's inf check as a tensor, so an fp16 step never waits for the host.

Why: for optimisers without their own scale handling, ``GradScaler.step`` reads the inf/NaN flag
with ``.item()`` before deciding whether to step: one GPU->CPU sync per critic step. Fused Adam
avoids it by consuming ``grad_scale`` / ``found_inf`` on the device; torch's RMSprop has no fused
variant, so this one does the same in plain tensor ops: unscale, step, then put every parameter
and state tensor back where ``found_inf`` is set (an exact skip, decided on the device).
"""
from __future__ import annotations

import torch


class ScalerAwareRMSprop(torch.optim.RMSprop):
    """``torch.optim.RMSprop`` plus the ``_step_supports_amp_scaling`` protocol of fused optimisers.

    Without a GradScaler (``found_inf`` unset) it is exactly RMSprop. With one, a step whose
    gradients hold an inf/NaN leaves parameters and optimiser state unchanged, as GradScaler's
    own skip would, at the cost of one copy of D's parameters and state per step.
    """

    _step_supports_amp_scaling = True

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D401 - torch's signature
        found_inf = getattr(self, "found_inf", None)
        if found_inf is None:
            return super().step(closure)
        grad_scale = getattr(self, "grad_scale", None)  # None: the caller already unscaled (unscale_)
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return None
        if grad_scale is not None:
            inv = grad_scale.double().reciprocal().to(params[0].grad.dtype)
            torch._foreach_mul_([p.grad for p in params], inv)
        for p in params:  # state as it would be before a first step, so a skipped first step stays a no-op
            st = self.state[p]
            if not st:
                st["step"] = torch.zeros((), dtype=torch.float32)
                st["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
                if group["momentum"] > 0:
                    st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["centered"]:
                    st["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        tensors = list(params)
        for p in params:  # ("step" only counts calls: RMSprop has no bias correction to keep right)
            tensors += [v for k, v in self.state[p].items() if torch.is_tensor(v) and k != "step"]
        before = [t.clone() for t in tensors]
        super().step(closure)
        # A branch-free skip decided on the device (where, not lerp: an update that went NaN
        # must not leak through a multiplication by 0).
        skip = found_inf.reshape(()) > 0
        for t, b in zip(tensors, before):
            t.copy_(torch.where(skip, b, t))
        return None
