"""Axolotl plugin for ltk recipes."""
