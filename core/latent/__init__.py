"""The latent space of a trained generator: paths and edits (``space``), images and GIFs out
(``media``), the nearest training images to a sample (``nearest``), and w-space paths and the
style-mixing grid (``styles``); the Latent explorer's engine."""
from .media import gif_bytes, image_png, strip_png
from .nearest import (
    Neighbours,
    d_features,
    d_needs_labels,
    image_names,
    load_training_images,
    nearest_images,
    subset_indices,
)
from .space import (
    INTERP_MODES,
    Directions,
    SampleCache,
    cache_key_prefix,
    early_features,
    edit_dims,
    edit_directions,
    interpolate,
    lerp,
    loop_path,
    principal_directions,
    random_walk,
    render,
    sample_seeds,
    seeds_to_z,
    slerp,
)
from .styles import NO_MIXING, explorer_z, mixing_grid, mixing_layers, render_w, to_w, truncation_note

__all__ = ['Directions', 'INTERP_MODES', 'Neighbours', 'SampleCache', 'cache_key_prefix', 'd_features', 'd_needs_labels', 'early_features', 'edit_dims', 'edit_directions', 'gif_bytes', 'image_names', 'image_png', 'interpolate', 'lerp', 'load_training_images', 'loop_path', 'nearest_images', 'principal_directions', 'random_walk', 'render', 'sample_seeds', 'seeds_to_z', 'slerp', 'strip_png', 'subset_indices',
           'NO_MIXING', 'explorer_z', 'mixing_grid', 'mixing_layers', 'render_w', 'to_w', 'truncation_note']
