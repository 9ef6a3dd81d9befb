"""core.metrics: sample quality (SWD without weights; FID/KID/IS/precision-recall with a pluggable feature net; PPL)."""
from .evaluate import EVALUATIONS, LABELS, LOWER_IS_BETTER, METRICS, evaluate, read_evaluations, record
from .features import (
                       FeatureNet,
                       FeatureNetUnavailable,
                       InceptionFeatures,
                       TinyRandomFeatures,
                       find_inception_weights,
                       get_feature_net,
                       inception_weights_available,
)
from .laplacian_swd import laplacian_pyramid, swd
from .ppl import PPLResult, ppl
from .scores import fid, inception_score, kid, precision_recall

__all__ = ["evaluate", "record", "read_evaluations", "METRICS", "LABELS", "LOWER_IS_BETTER", "EVALUATIONS",
           "FeatureNet", "FeatureNetUnavailable", "InceptionFeatures", "TinyRandomFeatures",
           "find_inception_weights", "inception_weights_available", "get_feature_net", "fid", "kid", "inception_score", "precision_recall",
           "swd", "laplacian_pyramid", "ppl", "PPLResult"]
