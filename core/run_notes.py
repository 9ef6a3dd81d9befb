"""A run's notes and tags (RUN/notes.json): written atomically, read totally (a bad file reads as empty)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE = "notes.json"
MAX_BYTES = 64 * 1024
MAX_NOTE_CHARS = 4000
MAX_TAGS = 20
MAX_TAG_CHARS = 40
EMPTY: dict[str, Any] = {"notes": "", "tags": []}


def parse_tags(text: str) -> list[str]:
    """'baseline, hinge  test' -> ['baseline', 'hinge', 'test']: split on commas and spaces, deduplicated,
    each cut to MAX_TAG_CHARS, at most MAX_TAGS."""
    out: list[str] = []
    for t in str(text).replace(",", " ").split():
        t = t.strip()[:MAX_TAG_CHARS]
        if t and t not in out:
            out.append(t)
    return out[:MAX_TAGS]


def _clean(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {"notes": "", "tags": []}
    notes = data.get("notes")
    tags = data.get("tags")
    return {"notes": notes[:MAX_NOTE_CHARS] if isinstance(notes, str) else "",
            "tags": parse_tags(" ".join(t for t in tags if isinstance(t, str))) if isinstance(tags, list) else []}


def read_notes(run_dir: str | Path) -> dict[str, Any]:
    """{'notes': str, 'tags': [str]}; a missing, linked, oversized, unparsable or ill-typed file (or field)
    reads as empty, never raising."""
    p = Path(run_dir) / FILE
    try:
        if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_BYTES:
            return _clean(None)
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return _clean(None)
    return _clean(data)


def write_notes(run_dir: str | Path, notes: str, tags: list[str] | str) -> dict[str, Any]:
    """Write the notes and tags (cleaned as read_notes would) atomically; returns what was written."""
    data = _clean({"notes": notes, "tags": parse_tags(tags) if isinstance(tags, str) else tags})
    d = Path(run_dir)
    tmp = d / f".{FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, d / FILE)
    return data


def matches(data: dict[str, Any], query: str) -> bool:
    """Whether a filter text (lower case) occurs in the notes or a tag."""
    q = query.strip().lower()
    return bool(q) and (q in data.get("notes", "").lower() or any(q in t.lower() for t in data.get("tags", [])))
