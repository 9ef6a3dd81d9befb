"""A trained generator, loaded and used: from a run folder, a checkpoint or an exported bundle, to images.

- ``loaded``: ``LoadedGenerator`` (network, config, classes, provenance) built from a checkpoint state;
- ``loading``: choosing a run's checkpoint (latest, best, a step) and ``load_generator`` for any source;
- ``bundle``: the exported safetensors + JSON bundle format, read without running code from the file;
- ``sampling``: seeds -> latents -> images (z- or w-space truncation, style mixing);
- ``writer``: writing them as PNGs or a zip, batch by batch, no half-written file under a final name;
- ``cli``: ``python -m core generate``.
"""
from .bundle import BUNDLE_FORMAT, BUNDLE_VERSION, BundleError, find_bundle_in, is_bundle, load_bundle, read_bundle_meta
from .loaded import LoadedGenerator, class_index, class_labels, generator_from_state
from .loading import checkpoint_choices, load_generator, resolve_checkpoint
from .sampling import (
    generate,
    generate_seeds,
    image_array,
    is_style_based,
    latents,
    layer_groups,
    mix_styles,
    style_mix_seeds,
    truncation_space,
)
from .writer import write_images

__all__ = ["LoadedGenerator", "load_generator", "checkpoint_choices", "resolve_checkpoint", "generator_from_state",
           "class_index", "class_labels", "latents", "generate", "generate_seeds", "image_array", "write_images",
           "is_style_based", "truncation_space", "layer_groups", "mix_styles", "style_mix_seeds",
           "BUNDLE_FORMAT", "BUNDLE_VERSION", "BundleError", "load_bundle", "read_bundle_meta", "find_bundle_in",
           "is_bundle"]
