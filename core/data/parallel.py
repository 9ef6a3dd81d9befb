"""Run a picklable function over chunks of work in worker processes, in order, with progress."""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pickle import PicklingError
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items the start-up cost of worker processes outweighs the gain.
SERIAL_BELOW = 200


def _context() -> Any:
    """fork on Linux: spawn/forkserver re-import the caller's __main__ in every worker, which breaks
    for unguarded scripts and stdin, and re-imports torch (seconds per worker). The workers only
    run Pillow/numpy code, never torch, so forking from a threaded process (Streamlit, a training
    thread) is safe here, as it is for torch's own DataLoader workers."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def map_chunks(fn: Callable[..., R], chunks: Sequence[Sequence[T]], *args: Any,
               workers: int | None = None) -> Iterator[R]:
    """Yield fn(chunk, *args) for each chunk, in order.

    Serial when workers == 1 (or None with fewer than SERIAL_BELOW items in all); otherwise in a
    process pool with a bounded window of chunks in flight, so results never pile up in memory.
    If the pool itself fails (a worker killed, processes not allowed), the rest runs serially;
    exceptions raised by fn propagate unchanged.
    """
    total = sum(len(c) for c in chunks)
    if workers is None:
        workers = 1 if total < SERIAL_BELOW else default_workers()
    workers = max(1, min(workers, len(chunks)))
    start = 0
    if workers > 1:
        ex = None
        try:
            ex = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
            window = 2 * workers
            pending: dict[int, Future] = {}
            nxt = 0
            for i in range(len(chunks)):
                while nxt < len(chunks) and nxt < i + window:
                    pending[nxt] = ex.submit(fn, chunks[nxt], *args)
                    nxt += 1
                res = pending.pop(i).result()
                start = i + 1
                yield res
        except (BrokenProcessPool, PicklingError, OSError, RuntimeError):
            pass  # fall through to serial from the first chunk not yet delivered
        finally:
            if ex is not None:
                # cancel_futures: a caller that stops early (error, closed generator) must not
                # wait for the rest of a large folder to be decoded.
                ex.shutdown(wait=True, cancel_futures=True)
    for c in chunks[start:]:
        yield fn(c, *args)
