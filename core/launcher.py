"""The `gan-studio` command (pip install .): no command opens the studio like run_studio.py; a command runs the CLI."""
from __future__ import annotations

import sys

# run_studio.py's own options: `gan-studio --port 8502` opens the studio on that port.
STUDIO_OPTIONS = ("--port", "--runs-dir", "--no-browser", "--host", "--allow-host")


def _is_studio(argv: list[str]) -> bool:
    return not argv or argv[0] == "studio" or argv[0].split("=")[0] in STUDIO_OPTIONS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _is_studio(argv):
        import run_studio  # installed beside the packages (py-modules), or the checkout's own file
        return run_studio.main(argv[1:] if argv and argv[0] == "studio" else argv)
    from .cli import build_parser
    from .cli import main as cli_main
    if argv[0] in ("-h", "--help"):
        build_parser().print_help()
        print("\nWith no command (or `gan-studio studio [--port N] [--runs-dir DIR] [--host H] [--no-browser]`), "
              "gan-studio opens the studio in your browser.")
        return 0
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
