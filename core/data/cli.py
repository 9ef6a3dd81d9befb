"""`python -m core scan|cache`: what an image folder holds, and the decoded-dataset cache."""
from __future__ import annotations

import sys
import time

from ..units import human_bytes
from .cache import default_cache_dir
from .cache_evict import MAX_GB_ENV, cache_entries, clear, evict, max_cache_bytes


def scan_progress(done: int, total: int) -> None:
    """A terminal progress line for decoding (scan, train's first data load)."""
    sys.stderr.write(f"\rdecoding {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_scan(args) -> int:
    from .scan import scan
    rep = scan(args.folder, progress=scan_progress if sys.stderr.isatty() else None)
    from .translation_scan import find_layout, layout_report
    print(rep.summary())
    lay = find_layout(args.folder)
    if lay is not None:
        print(layout_report(lay))
    return 0 if rep.images or lay is not None else 1




def cmd_cache(args) -> int:
    """List the cache (oldest use first); --clear empties it; --max-gb trims it to a size now."""
    d = default_cache_dir()
    if args.clear:
        gone, failed = clear(d)
        print(f"Removed {len(gone)} entries ({human_bytes(sum(e.bytes for e in gone))}) from {d}"
              + (f"; {failed} could not be removed" if failed else ""))
        return 0
    if args.max_gb is not None:
        gone = evict(d, int(args.max_gb * 2**30), min_age_s=0)
        print(f"Removed {len(gone)} least recently used entries ({human_bytes(sum(e.bytes for e in gone))})")
    entries = cache_entries(d)
    limit = max_cache_bytes()
    print(f"{d}: {len(entries)} entries, {human_bytes(sum(e.bytes for e in entries))} "
          f"(limit {human_bytes(limit) if limit else 'none'}; set {MAX_GB_ENV} to change it)")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        print(f"  {used}  {human_bytes(e.bytes):>9}  {e.kind:7}  {e.key[:12]}  {e.source}"
              + (f"  ({e.detail})" if e.detail else ""))
    return 0


def hint_dash_names(parser, name: str, flag: str = "") -> None:
    """argparse reads a folder called '-x' (or '--help.png') as an option, then says only that ``name``
    is missing or wants a value: add how to write such a folder to that one error."""
    plain = parser.error
    cmd = parser.prog.split()[-1]
    form = f"{flag}=-x or {flag} ./-x" if flag else f"{cmd} ./-x or {cmd} -- -x"

    def error(message: str):  # noqa: ANN202 (argparse's error never returns)
        if name in message:
            message += f" (for a folder whose name starts with '-', write {form})"
        plain(message)
    parser.error = error


def add_parser(sub) -> None:
    s = sub.add_parser("scan", help="check an image folder: what is usable, what is rejected and why")
    s.add_argument("folder", help="the image folder (one whose name starts with '-': ./-x)")
    hint_dash_names(s, "folder")
    s.set_defaults(func=cmd_scan)
    c = sub.add_parser("cache", help="show the decoded-dataset cache; --clear empties it, --max-gb trims it")
    c.add_argument("--clear", action="store_true", help="remove every entry (datasets are decoded again when next used)")
    c.add_argument("--max-gb", dest="max_gb", type=float, help="remove least recently used entries down to this size")
    c.set_defaults(func=cmd_cache)
