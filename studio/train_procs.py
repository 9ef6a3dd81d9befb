"""Train page: how many processes to train with (GPUs, or CPU gloo processes) when launching torchrun DDP."""
from __future__ import annotations

import streamlit as st

from core.config import ConfigError

K_GPUS = "train_gpus"         # widget: GPUs to use (torchrun processes on CUDA)
K_CPU_PROCS = "train_cpu_procs"  # widget: CPU processes (torchrun, gloo)
P_GPUS, P_CPU_PROCS = "gs_gpus", "gs_cpu_procs"  # their persisted values (widget state is dropped off-page)
MAX_CPU_PROCS = 16


# ------------------------------------------------------------------ several processes (torchrun, DDP)
def resolved_device(choice: str) -> str | None:
    from core.train.device import pick_device

    try:
        return str(pick_device(choice))
    except (ConfigError, RuntimeError, ValueError):
        return None


def gpu_count() -> int:
    import torch

    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return 0


def _persisted_widget(key: str, persist: str, default: int, hi: int) -> None:
    ss = st.session_state
    if key not in ss:
        ss[key] = min(hi, max(1, int(ss.get(persist, default))))


def cpu_processes_widget(device_choice: str) -> None:
    """Inside the device expander: several gloo processes on a CPU (to try DDP without GPUs)."""
    if resolved_device(device_choice) != "cpu":
        return
    _persisted_widget(K_CPU_PROCS, P_CPU_PROCS, 1, MAX_CPU_PROCS)
    n = st.number_input(
        "Advanced: CPU processes (DDP, gloo)", min_value=1, max_value=MAX_CPU_PROCS, step=1, key=K_CPU_PROCS,
        help="1 trains in this server, in a background thread. More than 1 launches `torchrun --nproc-per-node N` "
             "as a separate process group: PyTorch DDP over the gloo backend, each process training on its own "
             "shard of the data. Batch size is per process, so the global batch is batch size × N. Useful to try "
             "multi-process training on a CPU; on a small CPU it is not faster. Pause and Stop work the same "
             "(through the run folder's control.json).")
    st.session_state[P_CPU_PROCS] = int(n)


def gpus_widget(device: str | None, device_choice: str, batch_size: int) -> int:
    """"GPUs to use" when CUDA is there and the run goes to it (not to one named GPU); returns the count."""
    count = gpu_count()
    if count < 1 or device is None or not device.startswith("cuda"):
        return 1
    if device_choice.startswith("cuda:"):
        st.caption(f"Training on `{device_choice}` only. Choose device `cuda` or `auto` to use several GPUs.")
        return 1
    _persisted_widget(K_GPUS, P_GPUS, 1, count)
    n = st.number_input(
        "GPUs to use", min_value=1, max_value=count, step=1, key=K_GPUS, disabled=count == 1,
        help=f"This machine has {count} GPU{'s' if count > 1 else ''}. 1 trains in this server, in a background "
             "thread. More than 1 launches `torchrun --nproc-per-node N`: one process per GPU with PyTorch DDP "
             "(nccl). Batch size is per GPU, so the global batch is batch size × GPUs "
             f"(now {batch_size} × N). Pause and Stop work the same (through the run folder's control.json).")
    st.session_state[P_GPUS] = int(n)
    return int(n)


def chosen_processes(device: str | None) -> int:
    if device == "cpu":
        return int(st.session_state.get(P_CPU_PROCS, 1))
    return 1
