"""Export a trained generator for deployment: writers (safetensors bundle + standalone generate.py,
torch.export, ONNX, TorchScript), the model card written beside each export, and ``python -m core
export`` (see docs/export.md).
The bundle format itself belongs to ``core.generator.bundle``, which also loads it."""
from .card import card_body, evaluation_metrics, model_card, training_metrics
from .writers import (
                      ALL_FORMAT_HELP,
                      ALL_FORMATS,
                      EXTENSIONS,
                      FORMAT_HELP,
                      FORMATS,
                      ONNX_OPSET,
                      PARITY_TOL,
                      ExportError,
                      ExportResult,
                      default_out,
                      export_generator,
                      onnx_parity,
                      onnx_status,
)

__all__ = ["export_generator", "ExportError", "ExportResult", "FORMATS", "ALL_FORMATS", "ALL_FORMAT_HELP", "EXTENSIONS", "FORMAT_HELP", "ONNX_OPSET",
           "PARITY_TOL", "default_out", "onnx_parity", "onnx_status", "model_card", "card_body", "training_metrics",
           "evaluation_metrics"]
