"""aryl-gym: a simulator and Gymnasium environments of a shared GPU cluster with capacity
loaning and elastic training jobs (the Aryl / Lyra scheduler, arXiv 2202.07896)."""

__version__ = "0.1.0"
