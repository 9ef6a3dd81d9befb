"""core.data: scan image folders, decode once into a cached uint8 tensor, built-ins, DiffAugment."""
from .augment import DiffAugment
from .builtin import BUILTIN_DATASETS
from .cache import default_cache_dir
from .dataset import MIN_IMAGES, ImageDataset, load_cached_dataset, load_dataset
from .decode import load_image
from .errors import DataError
from .scan import ImageRecord, RejectedFile, ScanReport, scan

__all__ = ["scan", "ScanReport", "ImageRecord", "RejectedFile", "load_image", "load_dataset", "ImageDataset",
           "BUILTIN_DATASETS", "DataError", "DiffAugment", "MIN_IMAGES", "default_cache_dir", "load_cached_dataset"]
