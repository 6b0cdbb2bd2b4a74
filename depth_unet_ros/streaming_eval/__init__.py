"""Scoring a running depth_node live over DDS: replay a bag through it, pair each published depth
with the bag's ground truth by stamp, and report quality, latency and throughput.

Its offline sibling, ``evaluation.offline``, scores a model in-process with no ROS at all.
"""
