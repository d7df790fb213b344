"""Langpacks: one folder of pure, validated data per language."""

from ltk.langpack.load import LANGPACK_FILE, Langpack, load_langpack, validate_document
from ltk.langpack.schema import LangpackSpec

__all__ = ["LANGPACK_FILE", "Langpack", "LangpackSpec", "load_langpack", "validate_document"]
