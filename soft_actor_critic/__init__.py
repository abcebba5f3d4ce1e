"""Soft Actor-Critic (Haarnoja et al., arXiv:1801.01290 and arXiv:1812.05905) in PyTorch."""

__version__ = "0.1.0"
