"""Synthetic RGB-D data with exact ground truth: ray-cast rooms (``scenes``, ``textures``) and
hand-held sequences with camera poses filmed in them (``handheld``, ``handheld_walk``)."""
