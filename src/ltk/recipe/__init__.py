"""Recipes: Axolotl-compatible YAML plus an ``ltk:`` block; schema, rendering and loading."""
