"""Soak: depth_node under a 30 Hz VGA camera for minutes, on stock settings and on LARGE_DATA.

Per transport setting, starts the installed depth_node (bundled model, ``config/depth.yaml``)
and a client process: a reliable 640x480 rgb8 camera at ``--rate`` Hz that stops for
``--pause`` seconds halfway (its publishers destroyed, then created anew: a driver restart),
and a consumer of depth, features and camera_info. Meanwhile the node's resident memory is
sampled once a second from /proc. Reports, per minute: frames sent, answered, whole (all three
outputs), latency p50/p90; the memory after warm-up and at the end; whether the node answered
again after the restart. Writes JSON and a PNG (memory and answer rate over time).

    python benchmarks/soak_node.py                        # 10 minutes each, stock and LARGE_DATA
    python benchmarks/soak_node.py --seconds 20 --pause 3 --transports stock   # smoke run

"stock" exports nothing: Fast DDS defaults for the camera and consumer, and the node's own
Fast DDS profile (depth_unet_ros/data/fastdds_depth_node.xml) for the node. "LARGE_DATA"
exports FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in every process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_node import REPO, WIDTH, HEIGHT, camera_messages, summarize_ms

SETTINGS = {
    "stock": {},  # the node then takes its own Fast DDS profile
    "LARGE_DATA": {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
}  # name -> environment of every process
WARM_UP_S = 60.0  # memory after this is the baseline that must stay flat
BIN_S = 60.0  # statistics per minute
PLOT_BIN_S = 10.0  # the plot's answer rate


# --- client role: camera + consumer ------------------------------------------------------------
def run_client(args: argparse.Namespace) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node(f"soak_client_{os.getpid()}")
    reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    lock = threading.Lock()
    arrivals: dict[str, dict[tuple[int, int], float]] = {"depth": {}, "features": {}, "info": {}}

    def keep(kind: str) -> Any:
        def callback(msg: Any) -> None:
            now = time.time()
            with lock:
                arrivals[kind][(msg.header.stamp.sec, msg.header.stamp.nanosec)] = now
        return callback

    output_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/depth/image", keep("depth"), output_qos)
    node.create_subscription(Image, "/depth/features", keep("features"), output_qos)
    node.create_subscription(CameraInfo, "/depth/camera_info", keep("info"), output_qos)
    inference: list[tuple[float, float]] = []  # (monotonic s, the node's inference p50 ms)

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(": depth") and "inference_p50_ms" in values:
                with lock:
                    inference.append((time.monotonic(), float(values["inference_p50_ms"])))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, output_qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    messages, info = camera_messages()

    def camera() -> tuple[Any, Any]:
        return (node.create_publisher(Image, "/camera/image_raw", reliable),
                node.create_publisher(CameraInfo, "/camera/camera_info", reliable))

    image_pub, info_pub = camera()
    deadline = time.monotonic() + 30.0  # discovery: until the first answer
    while not arrivals["depth"] and time.monotonic() < deadline:
        image_pub.publish(messages[0])
        time.sleep(0.2)
    if not arrivals["depth"]:
        print(json.dumps({"error": "no depth from the node within 30 s"}))
        return 1
    sent: list[tuple[float, tuple[int, int]]] = []  # (seconds since start, stamp)
    start = time.monotonic()
    restart_at = args.seconds / 2 if args.pause > 0 else float("inf")
    resumed_at = None
    i = 0
    while (elapsed := time.monotonic() - start) < args.seconds:
        if elapsed >= restart_at and resumed_at is None:
            node.destroy_publisher(image_pub)
            node.destroy_publisher(info_pub)
            time.sleep(args.pause)
            image_pub, info_pub = camera()
            resumed_at = time.monotonic() - start
            i = int(resumed_at * args.rate)
            continue
        msg = messages[i % len(messages)]
        sec, nsec = divmod(time.time_ns(), 1_000_000_000)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        image_pub.publish(msg)
        info.header = msg.header
        info_pub.publish(info)
        sent.append((elapsed, (sec, nsec)))
        i += 1
        time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
    time.sleep(1.0)  # stragglers
    with lock:
        rows = [{"t_s": t, "answered": k in arrivals["depth"],
                 "whole": all(k in arrivals[kind] for kind in arrivals),
                 "latency_ms": (arrivals["depth"][k] - (k[0] + k[1] * 1e-9)) * 1e3
                 if k in arrivals["depth"] else None} for t, k in sent]
        node_inference = [(t - start, ms) for t, ms in inference if t >= start]
    print(json.dumps({"frames": rows, "restart_s": None if resumed_at is None else restart_at,
                      "resumed_s": resumed_at, "node_inference": node_inference}))
    executor.shutdown(timeout_sec=2.0)
    node.destroy_node()
    if rclpy.ok():
        rclpy.shutdown()
    return 0


# --- driver ----------------------------------------------------------------------------------------
def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS of /proc/<pid>/status), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def per_bin(frames_: list[dict], seconds: float, bin_s: float,
            inference: list[list[float]] = (), load: list[tuple[float, float]] = ()) -> list[dict]:
    """Sent, answered, whole and latency per ``bin_s`` of the run, with the node's inference
    median and the machine's load average there (a slower node, or a busier machine?)."""
    out = []
    for lo in np.arange(0.0, seconds, bin_s):
        rows = [r for r in frames_ if lo <= r["t_s"] < lo + bin_s]
        latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
        infer = [ms for t, ms in inference if lo <= t < lo + bin_s]
        loads = [v for t, v in load if lo <= t < lo + bin_s]
        out.append({"from_s": float(lo), "sent": len(rows),
                    "answered": sum(r["answered"] for r in rows),
                    "whole": sum(r["whole"] for r in rows), "latency_ms": summarize_ms(latencies),
                    "node_inference_p50_ms": float(np.median(infer)) if infer else float("nan"),
                    "load_average": float(np.mean(loads)) if loads else float("nan")})
    return out


def soak(name: str, args: argparse.Namespace) -> dict:
    shared = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in (
        "FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE",
        "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")}
    env.update(shared, ROS_DOMAIN_ID=str(args.domain_id), RCUTILS_LOGGING_BUFFERED_STREAM="0")
    node_cmd = [sys.executable, "-m", "depth_unet_ros.node", "--ros-args",
                "--params-file", str(REPO / "config" / "depth.yaml"),
                "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info"]
    if args.model:
        node_cmd += ["-p", f"model_path:={args.model}"]
    node = subprocess.Popen(node_cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    memory: list[tuple[float, float]] = []
    load: list[tuple[float, float]] = []  # 1-minute load average: other work on the machine
    stop = threading.Event()
    start = time.monotonic()

    def sample() -> None:
        while not stop.wait(1.0):
            value = rss_mib(node.pid)
            if value is not None:
                memory.append((time.monotonic() - start, value))
                load.append((time.monotonic() - start, os.getloadavg()[0]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        client = subprocess.run([sys.executable, __file__, "--role", "client", "--seconds",
                                 str(args.seconds), "--pause", str(args.pause), "--rate", str(args.rate)],
                                env=env, capture_output=True, text=True, timeout=args.seconds + 120)
    finally:
        stop.set()
        sampler.join()
        node.send_signal(2)
        try:
            node_err = node.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            node.kill()
            node_err = node.communicate()[1]
    lines = client.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {"error": client.stderr[-2000:]}
    if "error" in report:
        raise RuntimeError(f"{name}: {report['error']}\nnode stderr:\n{node_err[-2000:]}")
    # Memory is on the driver's clock (from the node's start), frames on the client's (from its
    # first answer): they differ by the start-up, a few seconds.
    warm = [m for t, m in memory if t >= min(WARM_UP_S, args.seconds / 3)]
    rows = report["frames"]
    after = [r for r in rows if report["resumed_s"] is not None and r["t_s"] >= report["resumed_s"]]
    return {"setting": name, "seconds": args.seconds, "rate_hz": args.rate,
            "sent": len(rows), "answered": sum(r["answered"] for r in rows),
            "whole": sum(r["whole"] for r in rows),
            "latency_ms": summarize_ms([r["latency_ms"] for r in rows if r["latency_ms"] is not None]),
            "per_minute": per_bin(rows, args.seconds, min(BIN_S, args.seconds),
                                  report["node_inference"], load),
            "per_10s": per_bin(rows, args.seconds, PLOT_BIN_S),
            "restart_s": report["restart_s"], "resumed_s": report["resumed_s"],
            "answered_after_restart": sum(r["answered"] for r in after), "sent_after_restart": len(after),
            "rss_mib": {"after_warm_up": warm[0] if warm else None, "end": warm[-1] if warm else None,
                        "max": max(warm) if warm else None},
            "memory": memory}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for result in results:
        t, m = zip(*result["memory"]) if result["memory"] else ((), ())
        top.plot(np.asarray(t) / 60, m, label=result["setting"])
        bins = result["per_10s"]
        edges = [b["from_s"] / 60 for b in bins] + [result["seconds"] / 60]
        rates = [b["answered"] / PLOT_BIN_S for b in bins]
        bottom.stairs(rates, edges, label=result["setting"])
        if result["restart_s"] is not None:
            for axis in (top, bottom):
                axis.axvspan(result["restart_s"] / 60, result["resumed_s"] / 60, color="0.9")
    top.set_ylabel("depth_node RSS (MiB)")
    bottom.set_ylabel(f"answers per second ({PLOT_BIN_S:g} s bins)")
    bottom.set_xlabel("minutes (grey: camera stopped)")
    top.legend()
    top.set_title(f"depth_node soak: {WIDTH}x{HEIGHT} rgb8 at {results[0]['rate_hz']:g} Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="camera time per setting")
    parser.add_argument("--pause", type=float, default=10.0,
                        help="seconds the camera is gone halfway (0: no restart)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz")
    parser.add_argument("--transports", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--model", help="model file; default: the bundled model")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID") or
                                                             1 + os.getpid() % 100),
                        help="ROS domain of the run (default: ROS_DOMAIN_ID, else pid-derived)")
    parser.add_argument("--json", type=Path, default=Path("out/soak_node.json"))
    parser.add_argument("--plot", type=Path, default=Path("out/soak_node.png"))
    parser.add_argument("--role", choices=("driver", "client"), default="driver", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "client":
        return run_client(args)
    results = []
    for name in args.transports:
        print(f"soaking {name} for {args.seconds:g} s ...", file=sys.stderr, flush=True)
        results.append(soak(name, args))
    print("| setting | sent | answered | whole | p50 ms | p90 ms | answered after restart | "
          "RSS after warm-up / end / max MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        rss, lat = r["rss_mib"], r["latency_ms"]
        print(f"| {r['setting']} | {r['sent']} | {r['answered']} | {r['whole']} | {lat['p50']:.1f} | "
              f"{lat['p90']:.1f} | {r['answered_after_restart']} of {r['sent_after_restart']} | "
              f"{rss['after_warm_up']:.0f} / {rss['end']:.0f} / {rss['max']:.0f} |")
    for r in results:
        print(f"\n{r['setting']} per minute (sent, answered, whole, p50, p90 ms, node inference "
              "p50 ms, load average):")
        for b in r["per_minute"]:
            print(f"  {b['from_s'] / 60:4.1f} min: {b['sent']:5d} {b['answered']:5d} {b['whole']:5d} "
                  f"{b['latency_ms']['p50']:7.1f} {b['latency_ms']['p90']:7.1f} "
                  f"{b['node_inference_p50_ms']:7.1f} {b['load_average']:5.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.plot)
    print(f"\nwrote {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
