"""Publish a rosbag2's topics over DDS with their recorded timing, for machines without
`ros2 bag play` (a pip install). Messages go out exactly as recorded (serialized bytes, with
their own stamps and frame ids), each topic with the QoS it was recorded with.

Topics whose message package is not installed here are skipped with a note (e.g. /tf in a
pip-only venv, which has no tf2_msgs). Like the node started by the launch file, it uses the
Fast DDS transports of its environment (FASTDDS_BUILTIN_TRANSPORTS): processes whose transports
differ do not see each other. Stop with Ctrl-C.
"""
from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Sequence

from depth_unet_ros.errors import ConfigError, DatasetError
from depth_unet_ros.node_core import QOS_CHECK_PERIOD_S, QOS_SWITCH_OVERLAP_S

if TYPE_CHECKING:
    from depth_unet_ros.bags.replay import BagPlayer

# --wait-for: how long the subscribers must stay unchanged. A depth_node with auto QoS that
# sees us subscribes anew and keeps its old subscription for QOS_SWITCH_OVERLAP_S, its checks
# QOS_CHECK_PERIOD_S apart: longer than that whole switch, so the count its two subscriptions
# briefly make is never taken for the final one.
SUBSCRIBERS_SETTLE_S = QOS_SWITCH_OVERLAP_S + 2 * QOS_CHECK_PERIOD_S

EXAMPLES = """examples:
  depth-unet replay nyu_test                          # once, at the recorded rate
  depth-unet replay nyu_test --rate 0.5 --loop        # half speed, over and over
  depth-unet replay nyu_test --topics /camera/image_raw /camera/camera_info --delay 2
  depth-unet replay nyu_test --exclude /camera/depth/ground_truth --wait-for /camera/image_raw
  depth-unet replay nyu_test --exclude /camera/depth/ground_truth --wait-for /camera/image_raw:2
      # beside `depth-unet bag-eval nyu_test --no-play`: the node and bag-eval both subscribe
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 folder (MCAP or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="playback speed factor: 2 plays twice as fast")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="S",
                        help="skip the bag's first S seconds")
    parser.add_argument("--loop", action="store_true", help="play again from the start when done")
    parser.add_argument("--topics", nargs="+", default=None, metavar="TOPIC",
                        help="play only these topics (default: all)")
    parser.add_argument("--exclude", nargs="+", default=(), metavar="TOPIC",
                        help="do not play these topics (e.g. the ground truth)")
    parser.add_argument("--delay", type=float, default=1.0, metavar="S",
                        help="seconds to wait after creating the publishers, so subscribers are "
                             "discovered before the first message")
    parser.add_argument("--wait-for", nargs="+", default=(), metavar="TOPIC[:N]",
                        help="before playing, wait until each of these topics has a subscriber "
                             "(N of them with TOPIC:N) and the subscribers have not changed for "
                             f"{SUBSCRIBERS_SETTLE_S:g} s (e.g. /camera/image_raw, so no frame "
                             "is lost while the depth node is discovered and settles its input "
                             "QoS; "
                             "/camera/image_raw:2 beside `bag-eval --no-play`, which listens "
                             "too); up to --wait-timeout seconds")
    parser.add_argument("--ack-timeout", type=float, default=5.0, metavar="S",
                        help="at the end, wait up to S seconds until reliable subscribers have "
                             "acknowledged every message, so the last ones are not lost on exit")
    parser.add_argument("--wait-timeout", type=float, default=30.0, metavar="S",
                        help="how long --wait-for waits before giving up with an error")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from depth_unet_ros.bags import reader as bag_reader
    from depth_unet_ros.bags.replay import BagPlayer, ReplayOptions

    options = ReplayOptions(rate=args.rate, start_offset_s=args.start_offset, loop=args.loop)
    if args.delay < 0:
        raise ConfigError(f"--delay must be >= 0, got {args.delay}")
    topics = bag_reader.bag_topics(args.bag)
    wanted = set(args.topics) if args.topics else set(topics)
    unknown = sorted(wanted - set(topics))
    if unknown:
        raise DatasetError(f"bag {args.bag} has no topic {', '.join(unknown)}; it has "
                           f"{', '.join(sorted(topics))}")
    selected = {name: info for name, info in topics.items()
                if name in wanted and name not in set(args.exclude)}
    if not selected:
        raise ConfigError("no topic left to play after --topics / --exclude")
    total = sum(info.count for info in selected.values())

    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(args=[], context=context)
    node = rclpy.create_node("depth_unet_replay", context=context)
    try:
        player = BagPlayer(node, selected)
        for topic, msgtype in player.skipped.items():
            print(f"skipping {topic}: {msgtype} is not installed here (a ROS 2 install has it)")
        if not player.topics:
            raise DatasetError("none of the selected topics can be published here")
        _wait_for_subscribers(player, args.wait_for, args.wait_timeout)
        time.sleep(args.delay)
        passes = 0
        while True:
            label = f"replay {passes + 1}" if args.loop else "replay"
            with tqdm(total=total, unit="msg", desc=label) as bar:
                stats = player.play(bag_reader.iter_raw_messages(
                    args.bag, player.topics, int(options.start_offset_s * 1e9)), options,
                    before_publish=lambda message, now: bar.update())
            passes += 1
            print(f"published {stats.total} messages on {len(stats.published)} topics in "
                  f"{stats.duration_s:.1f} s (at most {stats.max_lateness_ms:.1f} ms behind "
                  "the recorded schedule)")
            if not options.loop:
                if not player.wait_for_acks(args.ack_timeout):
                    print(f"warning: not every reliable subscriber acknowledged the last messages "
                          f"within {args.ack_timeout:g} s (--ack-timeout)")
                return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _wait_for_subscribers(player: "BagPlayer", topics: Sequence[str], timeout_s: float,
                          settle_s: float = SUBSCRIBERS_SETTLE_S) -> None:
    """Block until every topic in ``topics`` has a matched subscription and the matched counts
    have not changed for ``settle_s``; ConfigError after ``timeout_s`` naming the topics nobody
    subscribed to.

    The settling matters for a depth_node with ``qos_reliability: auto``: it first subscribes
    best-effort, then, once it sees this reliable player, subscribes anew (reliable) and drops
    the first subscription a second later; playing starts once that is over.
    """
    wanted = dict(parse_wait_for(spec) for spec in topics)
    not_played = [t for t in wanted if t not in player.topics]
    if not_played:
        raise ConfigError(f"--wait-for {' '.join(not_played)}: not played from this bag")
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] | None = None
    stable_since = time.monotonic()
    while True:
        now = time.monotonic()
        latest = {t: player.subscriber_count(t) for t in wanted}
        if latest != counts:
            counts, stable_since = latest, now
        waiting = [f"{t} ({counts[t]} of {n})" for t, n in wanted.items() if counts[t] < n]
        if not waiting and now - stable_since >= settle_s:
            return
        if now > deadline:
            if not waiting:  # subscribed, but never quiet for settle_s: play anyway
                return
            short = [t for t, n in wanted.items() if counts[t] < n]
            raise ConfigError(f"too few subscribers on {', '.join(waiting)} after {timeout_s:g} s "
                              f"({player.graph_summary(short[0])}); is the node running with the "
                              "same ROS_DOMAIN_ID and FASTDDS_BUILTIN_TRANSPORTS?")
        time.sleep(0.05)


def parse_wait_for(spec: str) -> tuple[str, int]:
    """``TOPIC`` or ``TOPIC:N`` (at least N subscribers; ROS names cannot hold a colon)."""
    topic, sep, count = spec.rpartition(":")
    if not sep:
        return spec, 1
    if not count.isdigit() or int(count) < 1 or not topic:
        raise ConfigError(f"--wait-for {spec}: expected TOPIC or TOPIC:N with N >= 1")
    return topic, int(count)
