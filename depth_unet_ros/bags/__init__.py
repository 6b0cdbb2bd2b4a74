"""rosbag2 files without rclpy: reading, writing and the stamp clock (``rosbags``), and replaying
them over DDS (``replay``, which imports rclpy when a player is made)."""
