"""Start and stop the installed ``depth_node`` as a subprocess, the way the launch file does.

Same executable, same params file (the installed share/depth_unet_ros/config/depth.yaml, or the
source tree's), ``model_path`` and topic remappings as ``launch/depth.launch.py`` passes them;
its output goes to a log file that error messages quote. Stopped with SIGINT (what Ctrl-C and
``ros2 launch`` send), then SIGKILL if it hangs. No rclpy here: readiness is judged by the
caller's graph check (``stream_eval.StreamEvaluator.wait_for_node``) through ``check_alive``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from depth_unet_ros.errors import ConfigError, DepthUnetError
from depth_unet_ros.parent_watch import PARENT_ENV
from depth_unet_ros.stack_dump import request_stack_dump

PACKAGE = "depth_unet_ros"
LOG_TAIL_LINES = 15


class NodeProcessError(DepthUnetError):
    """The node subprocess could not start, or exited while it was needed."""


def default_params_file() -> Path:
    """config/depth.yaml: the installed one (ament index, or this Python's share folder), else
    the source tree's, as launch/depth.launch.py chooses it."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / "depth.yaml")
    except (ImportError, LookupError, OSError):  # not installed / AMENT_PREFIX_PATH unset
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "config" / "depth.yaml")
    candidates.append(Path(__file__).resolve().parents[2] / "config" / "depth.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"cannot find the node's params file (looked in {', '.join(map(str, candidates))}); "
                      "install the package (colcon build, or pip install .) or pass --params-file")


def node_executable() -> list[str]:
    """The installed ``depth_node`` console script beside this Python, else ``python -m``."""
    exe = (shutil.which("depth_node", path=str(Path(sys.executable).parent))
           or shutil.which("depth_node"))
    return [exe] if exe else [sys.executable, "-m", f"{PACKAGE}.node"]


def node_command(model_path: str | os.PathLike | None = None,
                 params_file: str | os.PathLike | None = None,
                 image_topic: str = "/camera/image_raw",
                 camera_info_topic: str = "", namespace: str = "",
                 params: Mapping[str, Any] | None = None) -> list[str]:
    """The depth_node command line: ``node_executable()``, then the ``--ros-args`` the launch
    file gives (params file, model_path when set, remappings; camera_info beside the image
    topic unless given)."""
    from depth_unet_ros.launch_arguments import node_remappings

    command = node_executable()
    command += ["--ros-args", "--params-file", str(params_file or default_params_file())]
    if model_path:
        command += ["-p", f"model_path:={Path(model_path).expanduser().resolve()}"]
    for name, value in (params or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["-p", f"{name}:={text}"]
    for name, topic in node_remappings(image_topic, camera_info_topic):
        command += ["-r", f"{name}:={topic}"]
    if namespace.strip("/"):
        command += ["-r", f"__ns:=/{namespace.strip('/')}"]
    return command


class NodeProcess:
    """A running depth_node; use as a context manager so it is always stopped."""

    def __init__(self, command: Sequence[str], log_path: str | os.PathLike,
                 env: Mapping[str, str] | None = None):
        self.command = list(command)
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ if env is None else env)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")  # log lines reach the file now
        full_env[PARENT_ENV] = str(os.getpid())  # the node stops if we die (parent_watch)
        try:
            self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=full_env)
        except OSError as exc:
            self._log.close()
            raise NodeProcessError(f"cannot start {self.command[0]}: {exc}; is depth_unet_ros "
                                   "installed in this environment?") from exc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().rstrip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout_s: float) -> int:
        """The exit code once the node has exited; subprocess.TimeoutExpired after ``timeout_s``."""
        return self.process.wait(timeout=timeout_s)

    def check_alive(self) -> None:
        """Raise NodeProcessError (quoting the log) if the node has exited."""
        code = self.process.poll()
        if code is not None:
            raise NodeProcessError(f"depth_node exited with code {code} (log {self.log_path}):\n"
                                   f"{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGINT, then SIGKILL after ``timeout_s`` (with the node's stacks dumped into its log
        first); the exit code (None if it would not die)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                request_stack_dump(self.process)  # where it hangs goes into its log
                self.process.kill()
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    pass
        if not self._log.closed:
            self._log.close()
        return self.process.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
