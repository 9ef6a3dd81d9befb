"""Worker for the DDP family tests: ``python -m core`` under torchrun, each rank saving its weights at shutdown.

Usage: ddp_dump_weights.py OUT_DIR core-cli-args... ; writes OUT_DIR/rank<r>.pt = {net: state_dict, "step": n}.
"""
import sys

import torch

from core.cli import main
from core.train import distributed

_shutdown = distributed.shutdown


def _dump_then_shutdown(trainer=None, in_step=True):
    if trainer is not None:
        nets = {"G": trainer.G, "D": trainer.D}
        task = getattr(trainer, "task", None)
        if task is not None and task.cyclegan:
            nets.update(G2=task.G2, D2=task.D2)
        state = {k: {n: v.detach().clone() for n, v in m.state_dict().items()} for k, m in nets.items()}
        state["step"] = trainer.step_count
        torch.save(state, f"{sys.argv[1]}/rank{trainer.rank}.pt")
    _shutdown(trainer, in_step)


if __name__ == "__main__":
    distributed.shutdown = _dump_then_shutdown
    sys.exit(main(sys.argv[2:]))
