"""Scoring depth with DESIGN.md's protocol, with no ROS: the metrics, the offline loop over a
dataset, and the latency summary every report uses."""
