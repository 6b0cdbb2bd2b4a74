"""End-to-end cost of depth_node over DDS, against raw inference on the same frames.

For each Fast DDS transport setting (default; LARGE_DATA; LARGE_DATA?max_msg_size=4MB, which
sends each image whole instead of in 64 KB fragments and is skipped, with the reason, where
net.core.rmem_max or wmem_max is below 4 MB), starts the installed depth_node and a
camera/consumer client in two more processes (both with the same environment), then:

* latency: 640x480 rgb8 frames at a rate the model keeps up with; input stamp -> depth received
  in the client, compared with the node's own inference time on the same frames (its
  /diagnostics; overhead = end-to-end median - inference median, target <= 3 ms; "of which in
  node" = its receipt-to-published median - inference median) and with ``estimator.predict``
  timed alone in this process before (the isolated inference; on two shared cores inference in
  the node is slower, because the DDS threads of both processes compete for the cores);
* rate: published depth rate for 30 Hz and 60 Hz cameras (the node drops stale frames);
* node CPU use per phase, from /proc/<pid>/stat (no psutil);
* the floor (unless ``--no-floor``): the same phases against a bare rclpy relay in the node's
  place, which sends each image straight back as a depth-sized 32FC1 message (no inference, no
  post-processing): what the two DDS hops between Python processes cost on this machine.

Prints a Markdown table and a JSON document.  ``--quick`` finishes in about a minute.

    python benchmarks/bench_node.py [--model M] [--quick] [--json OUT]

Without ``--model`` it uses the bundled model, or exports the default architecture with random
weights (timing does not depend on the weights; needs torch).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from depth_unet_ros.fastdds_transports import TRANSPORT_SETTINGS
from depth_unet_ros.latency import percentile

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 640, 480
TRANSPORTS = {"default": None, "LARGE_DATA": "LARGE_DATA",
              # Whole VGA messages instead of 64 KB fragments; needs rmem_max/wmem_max >= 4 MB.
              "LARGE_DATA_4MB": "LARGE_DATA?max_msg_size=4MB",
              # Stock camera and consumer; the node (or relay) alone uses the node's own profile:
              # default transports with a shared-memory segment sized for VGA outputs.
              "default+node_profile": None,
              # Stock transports with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST in every process:
              # Kilted's rmw then replaces them by localhost UDP and shared memory, and the node
              # leaves its own profile out.
              "localhost": None}
DISCOVERY_RANGE = {"localhost": "LOCALHOST"}  # transports that set a discovery range
# The server's own environment: plain "default" opts the node out of its own profile (an
# empty profiles file), so that row is Fast DDS's defaults in every process.
SERVER_ENV = {"default": {"FASTDDS_DEFAULT_PROFILES_FILE": ""},
              "default+node_profile": {"FASTDDS_DEFAULT_PROFILES_FILE": None}}
DIAGNOSTICS_PERIOD_S = 0.5  # the node's /diagnostics period during the benchmark


# --- helpers shared by both roles ------------------------------------------------------------
def frames(count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Distinct (480, 640, 3) uint8 RGB frames with some structure (a gradient plus noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, WIDTH, dtype=np.float32)[None, :, None]
    return [np.clip(ramp * rng.uniform(0.3, 1.0) + rng.normal(0, 20, (HEIGHT, WIDTH, 3)), 0, 255)
            .astype(np.uint8) for _ in range(count)]


def camera_messages() -> tuple[list[Any], Any]:
    """The benchmark camera: ``frames()`` as rgb8 Image messages, and its CameraInfo (NYU's
    Kinect intrinsics at 640x480); stamps are set when each is published."""
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from depth_unet_ros.image_conversion import array_to_image_msg

    messages = [array_to_image_msg(f, "rgb8", Header(frame_id="camera"), Image, channels_first=False)
                for f in frames()]
    info = CameraInfo(width=WIDTH, height=HEIGHT)
    info.k = [518.9, 0.0, 319.5, 0.0, 518.9, 239.5, 0.0, 0.0, 1.0]
    info.p = [518.9, 0.0, 319.5, 0.0, 0.0, 518.9, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    return messages, info


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_of(periods: list[dict[str, str]], key: str) -> float:
    """Median over diagnostics periods of one of the node's per-period medians (NaN: none)."""
    values = [float(p[key]) for p in periods if key in p and math.isfinite(float(p[key]))]
    return float(np.median(values)) if values else float("nan")


def summarize_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p90": float("nan"), "max": float("nan")}
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "max": float(max(values))}


def camera_profile(kind: str) -> Any:
    """Depth-1 QoS of the benchmark camera, ``reliable`` or ``best_effort`` (for both ends)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    reliability = ReliabilityPolicy.RELIABLE if kind == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=1, reliability=reliability)


# --- client role: camera + consumer in its own process ---------------------------------------
def run_client(args: argparse.Namespace) -> int:
    import threading

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node(f"bench_client_{os.getpid()}")
    camera_qos = camera_profile(args.camera_qos)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "/camera/image_raw", camera_qos)
    info_pub = node.create_publisher(CameraInfo, "/camera/camera_info", reliable)
    received: dict[tuple[int, int], float] = {}
    lock = threading.Lock()

    def on_depth(msg: Any) -> None:
        now = time.time()
        with lock:
            received[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = now

    node.create_subscription(Image, "/depth/image", on_depth, reliable)
    # The node's own account of the same frames, one entry per diagnostics period.
    periods: list[tuple[float, dict[str, str]]] = []

    def on_diagnostics(msg: Any) -> None:
        now = time.monotonic()
        for status in msg.status:
            if status.name.endswith(": depth"):
                with lock:
                    periods.append((now, {kv.key: kv.value for kv in status.values}))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
    # Stamps of the other two outputs: a frame is whole when depth, features and camera_info
    # all arrived (what an exact-time synchroniser in a VO node needs).
    features_at: set[tuple[int, int]] = set()
    info_at: set[tuple[int, int]] = set()

    def stamp_into(stamps: set[tuple[int, int]]) -> Any:
        def on_message(msg: Any) -> None:
            with lock:
                stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        return on_message

    if args.outputs == "all":
        node.create_subscription(Image, "/depth/features", stamp_into(features_at), reliable)
        node.create_subscription(CameraInfo, "/depth/camera_info", stamp_into(info_at), reliable)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    messages, info = camera_messages()

    def publish(i: int) -> tuple[int, int]:
        msg = messages[i % len(messages)]
        sec, nsec = divmod(time.time_ns(), 1_000_000_000)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        image_pub.publish(msg)
        info.header = msg.header
        info_pub.publish(info)  # after the image, as image_transport's CameraPublisher does
        return sec, nsec

    # Discovery: publish slowly until the first depth comes back.
    deadline = time.monotonic() + 30.0
    while not received and time.monotonic() < deadline:
        publish(0)
        time.sleep(0.2)
    if not received:
        print(json.dumps({"error": "no depth from the node within 30 s"}))
        return 1
    time.sleep(0.5)
    results = []
    for rate_hz, seconds in args.phases:
        with lock:
            received.clear()
            features_at.clear()
            info_at.clear()
        sent = []
        cpu0, start = cpu_seconds(args.node_pid), time.monotonic()
        for i in range(int(rate_hz * seconds)):
            sent.append(publish(i))
            time.sleep(max(0.0, start + (i + 1) / rate_hz - time.monotonic()))
        duration = time.monotonic() - start
        cpu = (cpu_seconds(args.node_pid) - cpu0) / duration
        time.sleep(0.5)  # stragglers
        with lock:
            latencies = [(received[k] - (k[0] + k[1] * 1e-9)) * 1e3 for k in sent if k in received]
            whole = (sum(k in received and k in features_at and k in info_at for k in sent)
                     if args.outputs == "all" else None)
            # Periods that lie inside the phase (the first may still hold the previous phase).
            inside = [values for t, values in periods
                      if start + DIAGNOSTICS_PERIOD_S < t <= start + duration + DIAGNOSTICS_PERIOD_S / 2]
        results.append({"camera_hz": rate_hz, "seconds": duration, "sent": len(sent),
                        "answered": len(latencies), "whole": whole, "output_hz": len(latencies) / duration,
                        "latency_ms": summarize_ms(latencies), "node_cpu_percent": 100 * cpu,
                        "node_inference_ms_p50": median_of(inside, "inference_p50_ms"),
                        "node_latency_ms_p50": median_of(inside, "latency_p50_ms"),
                        # Which DDS leg loses frames: images in vs depth out, at the node.
                        "node_input_hz": median_of(inside, "input_rate_hz"),
                        "node_output_hz": median_of(inside, "output_rate_hz")})
    print(json.dumps(results))
    executor.shutdown(timeout_sec=2.0)
    spinner.join(timeout=2.0)
    node.destroy_node()
    if rclpy.ok():
        rclpy.shutdown()
    return 0


# --- relay role: the floor, a bare rclpy process where the node would be ---------------------
def run_relay(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from depth_unet_ros.allocator import reuse_frame_buffers
    from depth_unet_ros.image_cdr import SerializedImage
    from depth_unet_ros.ros_shutdown import ExternalShutdownException  # rclpy's, guarded for old rclpy

    reuse_frame_buffers()  # as the node does: the floor measures DDS, not page faults
    rclpy.init()
    node = rclpy.create_node(f"bench_relay_{os.getpid()}")
    depth_pub = node.create_publisher(Image, "/depth/image",
                                      QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))

    def relay(msg: Any) -> None:
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        depth = SerializedImage(msg.height, msg.width, "32FC1", stamp, msg.header.frame_id)
        depth_pub.publish(depth.to_bytes())

    # The node's QoS for this camera: its auto input follows the camera; its outputs are reliable.
    node.create_subscription(Image, "/camera/image_raw", relay, camera_profile(args.camera_qos))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):  # the driver's SIGINT
        pass
    node.destroy_node()
    if rclpy.ok():
        rclpy.shutdown()
    return 0


# --- driver role ---------------------------------------------------------------------------------
def resolve_model(model: str | None, workdir: Path) -> str:
    from depth_unet_ros.inference import bundled_model_path

    if model:
        return model
    if bundled_model_path().is_file():
        return str(bundled_model_path())
    import torch

    from depth_unet_ros.model_metadata import ModelMetadata
    from training.export import export_onnx
    from training.model import build_model
    from training.model_config import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig()
    path = workdir / "bench_default_arch.onnx"
    export_onnx(build_model(config), path, ModelMetadata.for_model_config(config, "random weights (bench)"))
    print(f"no --model and no bundled model: exported the default architecture with random "
          f"weights to {path}", file=sys.stderr)
    return str(path)


def raw_inference_ms(model: str, backend: str, threads: int, repeats: int) -> dict[str, float]:
    """estimator.predict on the benchmark frames (output_size input, as the node's default)."""
    from depth_unet_ros.inference import load_estimator

    estimator = load_estimator(model, backend, threads)
    images = frames()
    for image in images[:3]:
        estimator.predict(image, output_size="input")
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        estimator.predict(images[i % len(images)], output_size="input")
        times.append((time.perf_counter() - start) * 1e3)
    estimator.close()
    return summarize_ms(times)


def transport_env(name: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain_id), RCUTILS_LOGGING_BUFFERED_STREAM="0")
    # No restricted discovery range: with it, rmw_fastrtps replaces the builtin transports by
    # localhost UDP and LARGE_DATA loses its effect. The domain id keeps the run apart.
    # Nor a profiles file of the shell's: each row sets the transports it names.
    for key in TRANSPORT_SETTINGS:
        env.pop(key, None)
    if TRANSPORTS[name]:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = TRANSPORTS[name]
    if name in DISCOVERY_RANGE:  # ... except in the row that measures one
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = DISCOVERY_RANGE[name]
    return env


def usable_transports(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The transports this kernel's socket limits allow, and why each other one is skipped."""
    from depth_unet_ros.fastdds_transports import ENV, kernel_socket_limits, socket_buffer_problem

    limits = kernel_socket_limits()
    problems = {name: socket_buffer_problem({ENV: TRANSPORTS[name] or ""}, limits) for name in names}
    return ([name for name in names if not problems[name]],
            {name: problem for name, problem in problems.items() if problem})


def measure_against(server_cmd: list[str], env: dict[str, str], label: str,
                    args: argparse.Namespace, phases: list,
                    server_env: dict[str, str] | None = None) -> list[dict]:
    """Start ``server_cmd`` (the node or the relay; ``server_env``, else ``env``), run the
    client's phases against it (``env``)."""
    server = subprocess.Popen(server_cmd, env=server_env or env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        client_cmd = [sys.executable, __file__, "--role", "client", "--node-pid", str(server.pid),
                      "--phases", json.dumps(phases), "--camera-qos", args.camera_qos,
                      "--outputs", args.outputs]
        result = subprocess.run(client_cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.send_signal(2)
        try:
            _, server_err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, server_err = server.communicate()
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {"error": result.stderr[-2000:]}
    if isinstance(report, dict):
        raise RuntimeError(f"{label}: {report.get('error')}\nclient stderr:\n{result.stderr[-2000:]}\n"
                           f"{label} stderr:\n{server_err[-2000:]}")
    return report


def run_transport(name: str, args: argparse.Namespace, model: str, phases: list) -> list[dict]:
    env = transport_env(name, args)
    node_cmd = [sys.executable, "-m", "depth_unet_ros.node", "--ros-args",
                "--params-file", str(REPO / "config" / "depth.yaml"), "-p", f"model_path:={model}",
                "-p", f"backend:={args.backend}", "-p", f"num_threads:={args.threads}",
                "-p", f"diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}",
                "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info"]
    server_env = dict(env)
    for key, value in SERVER_ENV.get(name, {}).items():
        if value is None:  # the relay takes the node's profile as the node would
            from depth_unet_ros.fastdds_transports import shipped_profile_path

            value = shipped_profile_path()
        server_env[key] = value
    rows = measure_against(node_cmd, env, f"{name} depth_node", args, phases, server_env)
    floors: dict[float, float] = {}
    if args.floor:
        relay_cmd = [sys.executable, __file__, "--role", "relay", "--camera-qos", args.camera_qos]
        relay_rows = measure_against(relay_cmd, env, f"{name} relay", args, phases, server_env)
        floors = {r["camera_hz"]: r["latency_ms"]["p50"] for r in relay_rows}
    for row in rows:
        row["transport"] = name
        row["overhead_p50_ms"] = row["latency_ms"]["p50"] - row["node_inference_ms_p50"]
        # The relay's end to end: both hops, with nothing in between (NaN without --floor).
        row["relay_floor_p50_ms"] = floors.get(row["camera_hz"], float("nan"))
    return rows


def _ms(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-"


def markdown(rows: list[dict], inference: dict[str, float]) -> str:
    lines = ["| transport | camera Hz | sent | answered | whole | output Hz | e2e p50 ms | e2e p90 ms | "
             "e2e max ms | inference in node p50 ms | overhead p50 ms | of which in node ms | "
             "relay floor p50 ms | isolated inference p50 ms | node in / out Hz | node CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lat = r["latency_ms"]
        whole = "-" if r.get("whole") is None else r["whole"]
        lines.append(f"| {r['transport']} | {r['camera_hz']:g} | {r['sent']} | {r['answered']} | {whole} | "
                     f"{r['output_hz']:.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['max']:.1f} | "
                     f"{r['node_inference_ms_p50']:.1f} | {r['overhead_p50_ms']:.1f} | "
                     f"{r['node_latency_ms_p50'] - r['node_inference_ms_p50']:.1f} | "
                     f"{_ms(r['relay_floor_p50_ms'])} | {inference['p50']:.1f} | {r['node_input_hz']:.1f} / {r['node_output_hz']:.1f} | "
                     f"{r['node_cpu_percent']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", help="model file; default: bundled, else random-weight default arch")
    parser.add_argument("--backend", default="auto", help="auto | onnxruntime | tensorrt | torch")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0 = backend default)")
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute in all)")
    parser.add_argument("--latency-hz", type=float, default=5.0,
                        help="camera rate of the latency phase (the model must keep up)")
    parser.add_argument("--camera-qos", choices=("reliable", "best_effort"), default="reliable")
    parser.add_argument("--outputs", choices=("depth", "all"), default="all",
                        help="what the client subscribes to (all: depth, features, camera_info)")
    parser.add_argument("--transports", nargs="+", choices=tuple(TRANSPORTS), default=list(TRANSPORTS))
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the floor, the same phases against a bare relay in the node's "
                             "place (measured unless given; floor: %(default)s)")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID") or
                                                             1 + os.getpid() % 100),
                        help="ROS domain of the run (default: ROS_DOMAIN_ID, else pid-derived)")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    parser.add_argument("--role", choices=("driver", "client", "relay"), default="driver",
                        help=argparse.SUPPRESS)
    parser.add_argument("--node-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phases", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "client":
        return run_client(args)
    if args.role == "relay":
        return run_relay(args)

    seconds = 3.0 if args.quick else 10.0
    phases = [[args.latency_hz, seconds], [30.0, seconds], [60.0, seconds]]
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model(args.model, Path(tmp))
        inference = raw_inference_ms(model, args.backend, args.threads, 20 if args.quick else 100)
        runnable, skipped = usable_transports(args.transports)
        for name, problem in skipped.items():
            print(f"skipping {name}: {problem}", file=sys.stderr)
        rows = [row for name in runnable for row in run_transport(name, args, model, phases)]
    report = {"model": model, "frame": f"{WIDTH}x{HEIGHT} rgb8", "camera_qos": args.camera_qos,
              "outputs": args.outputs, "inference_ms": inference, "runs": rows,
              "skipped_transports": skipped,
              # Overhead = end to end - the node's inference of the same frames (from its
              # /diagnostics), so both figures come from one moment of a noisy shared machine.
              "overhead_p50_ms": {r["transport"]: r["overhead_p50_ms"]
                                  for r in rows if r["camera_hz"] == args.latency_hz},
              "relay_floor_p50_ms": {r["transport"]: r["relay_floor_p50_ms"]
                                     for r in rows if r["camera_hz"] == args.latency_hz},
              "overhead_over_isolated_inference_p50_ms": {
                  r["transport"]: r["latency_ms"]["p50"] - inference["p50"]
                  for r in rows if r["camera_hz"] == args.latency_hz}}
    print(markdown(rows, inference))
    print()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
