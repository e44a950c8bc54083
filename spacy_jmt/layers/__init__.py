"""Torch modules of the jmt network."""
