"""prism: moderation beside open-weights language models, on the CPU, offline."""

__version__ = "0.1.0"
