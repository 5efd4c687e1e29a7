"""LFTF: locate the blocks most tied to gender bias, then fine-tune only those."""

__version__ = "0.1.0"
