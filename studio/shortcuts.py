"""Small browser-side helpers: keyboard shortcuts on the Monitor and a sidebar that starts collapsed on narrow windows."""
from __future__ import annotations

import streamlit.components.v1 as components

SHORTCUTS_CAPTION = ("Keys: **space** pauses / resumes the run, **←** / **→** move through the sample history "
                     "(not while typing in a field).")
NARROW_PX = 1200  # below this window width the sidebar starts collapsed (once per tab)

# Listens on the app's document (the component is an iframe on the same origin). Keys typed into an
# input, text area, select or editable element, or with a modifier, are left alone.
_KEYS_JS = """<script>
const d = window.parent.document;
if (!d.__gsKeys) {
  d.__gsKeys = true;
  d.addEventListener('keydown', (e) => {
    const t = e.target || {}; const tag = (t.tagName || '').toLowerCase();
    if (['input', 'textarea', 'select', 'button'].includes(tag) || t.isContentEditable) return;
    if (e.ctrlKey || e.metaKey || e.altKey || !window.parent.location.pathname.endsWith('/monitor')) return;
    if (e.key === ' ') {
      const b = d.querySelector('.st-key-ctl_pause button, .st-key-ctl_resume button, .st-key-ctl_pausing button');
      if (b) { e.preventDefault(); b.click(); }
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const th = d.querySelector('[class*="st-key-scrub_"] input[type="range"]');
      if (th) {
        e.preventDefault(); th.focus();
        th.dispatchEvent(new KeyboardEvent('keydown', {key: e.key, code: e.key, bubbles: true}));
        setTimeout(() => th.blur(), 50);  // the next key (space, an arrow) comes back to this listener
      }
    }
  });
}
</script>"""

_SIDEBAR_JS = """<script>
const w = window.parent, d = w.document;
if (w.innerWidth < NARROW && !w.sessionStorage.getItem('gsSidebarFolded')) {
  w.sessionStorage.setItem('gsSidebarFolded', '1');
  const fold = () => {
    const b = d.querySelector('[data-testid="stSidebarCollapseButton"] button');
    const open = d.querySelector('[data-testid="stSidebar"][data-collapsed="false"]');
    if (b && open) { b.click(); return true; }
    return false;
  };
  let n = 0; const t = setInterval(() => { if (fold() || ++n > 40) clearInterval(t); }, 100);
}
</script>""".replace("NARROW", str(NARROW_PX))


def keyboard_shortcuts() -> None:
    components.html(_KEYS_JS, height=0)


def fold_sidebar_when_narrow() -> None:
    components.html(_SIDEBAR_JS, height=0)
