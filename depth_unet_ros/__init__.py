"""Real-time monocular metric depth for ROS 2.

The runtime package imports neither torch nor rclpy at import time: the node module is the only
rclpy user and the torch backend the only torch user, so a Jetson with TensorRT and numpy runs it.
"""

__version__ = "0.1.0"
