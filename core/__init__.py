"""GAN Studio's engine: data, models, losses, training, run folders, diagnostics, export (no Streamlit)."""
__version__ = "0.1.0"
