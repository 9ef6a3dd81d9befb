"""``python -m core weights``: get the standard FID Inception-v3 weights onto this machine, once, checked.

- ``fetch``: download (progress bar, checksum) or install a copy the user brought (``--from FILE``);
- ``cli``: the ``weights`` sub-command.
"""
from .fetch import WeightsError, fetch_weights, install_weights, installed_path, verify_weights

__all__ = ["WeightsError", "fetch_weights", "install_weights", "installed_path", "verify_weights"]
