"""Measuring voxline the way a caller experiences it."""
