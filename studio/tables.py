"""Tables of long text (event messages, rejection reasons): one line per row, or wrapped on request."""
from __future__ import annotations

import pandas as pd
import streamlit as st

WRAP_ROWS = 200  # wrapped rows are drawn as HTML: bounded so a 2,000-row list stays light


def long_text_table(rows: list[dict], key: str, height: int, column_config: dict | None = None) -> None:
    """A scrollable one-line-per-row table, with a toggle to see whole texts wrapped (st.dataframe's cells
    never wrap: on a laptop screen a long message or rejection reason was cut with no way to read it)."""
    wrap = st.toggle("Wrap long text", key=key, help="Show each row's whole text, wrapped over several lines "
                     f"(the first {WRAP_ROWS} rows), instead of one line per row in a scrollable table.")
    df = pd.DataFrame(rows)
    if wrap:
        st.table(df.head(WRAP_ROWS), hide_index=True)
        if len(df) > WRAP_ROWS:
            st.caption(f"The first {WRAP_ROWS} of {len(df):,} rows; turn wrapping off to scroll through all of them.")
    else:
        st.dataframe(df, hide_index=True, width="stretch", height=height, column_config=column_config)
