"""The sidebar's "what is training now" card, shown on every page."""
from __future__ import annotations

import streamlit as st

from studio import state


def _runs_caption() -> None:
    p = str(state.runs_dir())
    short = p if len(p) <= 34 else "…" + p[-33:]
    st.caption(f"Runs folder: `{short}`", help=p)


def tab_title(name: str, now: str, step: int, total: int) -> str:
    """The browser tab's title while a run trains: its progress first, so it reads in a narrow tab."""
    pct = f"{min(100, int(100 * step / total))}%" if total > 0 else f"step {step:,}"
    return f"{'Paused ' if now == 'paused' else ''}{pct} · {name} — GAN Studio"


def _card(live: bool = True) -> None:
    job = state.active_job()
    if job is None:
        st.set_page_config(page_title="GAN Studio")
        _runs_caption()
        return
    info = state.run_info(job.run_dir)
    with st.container(border=True):
        now = info.state if info.status else job.state
        st.set_page_config(page_title=tab_title(info.name, now, info.step, info.total_steps))
        title = "Paused" if now == "paused" else "Training now"
        if live:
            st.markdown(f"**{title}** · {state.state_label(now)}")
        else:  # a still picture would go stale: the Monitor page shows the live numbers
            st.markdown(f"**{title}**")
        n = getattr(job, "nproc", 1) or 1
        st.caption(state.esc(info.name) + (f" · torchrun, {n} processes" if getattr(job, "proc", None) is not None
                                           else ""))
        if live:
            total = max(1, info.total_steps)
            st.progress(min(1.0, info.step / total), text=f"step {info.step:,} / {info.total_steps:,}")
        # A link, not a button + st.switch_page: switching pages from inside a fragment would leave
        # the new page's live fragments without their refresh timers.
        st.page_link(state.page_path("monitor"), label="Open in Monitor", icon=":material/monitoring:",
                     query_params={"run": info.name}, width="stretch")
    _runs_caption()


def job_status(live: bool = True) -> None:
    """``live=False`` draws the card once (the Monitor page already refreshes the same numbers)."""
    with st.sidebar:
        every = state.REFRESH_S * 2 if live and state.active_job() is not None else None
        st.fragment(run_every=every)(_card)(live)
