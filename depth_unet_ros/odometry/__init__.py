"""Visual odometry on the depth node's output: the feature-metric pose tracker (``tracker``)
and the tools around it. Pure numpy + cv2: no rclpy, no torch."""
