"""Benchmarks: speed (ours vs the textbook DCGAN loop), quality, layers, the GPU check; CLI in ``cli``."""
