"""ltk, the language transfer kit: adapt English-centric LLMs to low-resource languages."""

__version__ = "0.1.0"
