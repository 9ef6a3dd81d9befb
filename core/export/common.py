"""What every export writer shares (generator and translator alike): ExportResult, the ONNX opset, and whether ONNX export can run here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ONNX_OPSET = 17


@dataclass
class ExportResult:
    fmt: str
    path: Path                       # the main file (weights / program / graph)
    files: list[Path]                # every file written, the model card included
    card_path: Path
    card: str
    step: int
    parity: float | None = None      # ONNX/TorchScript: max |export - PyTorch| on a few latents
    notes: list[str] = field(default_factory=list)


def onnx_status() -> tuple[bool, str]:
    """(available, message): whether ONNX export can run here, and what to install if not."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False, ("ONNX export needs the 'onnx' package, which is not installed here: "
                       "pip install onnx onnxruntime (onnxruntime also checks the exported graph).")
    try:
        import onnxruntime  # noqa: F401
        return True, "ONNX export available; the result is checked against PyTorch with onnxruntime."
    except ImportError:
        return True, "ONNX export available; install onnxruntime to check the exported graph against PyTorch."
