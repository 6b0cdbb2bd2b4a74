"""The DDS environment of a streaming evaluation: which Fast DDS transports, ROS domain and
discovery range the evaluator and the node it starts use, and the notes that explain them."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping, MutableMapping

from depth_unet_ros.fastdds_transports import BuiltinTransports, environment_problem

# What prepare_ros_environment may set or drop.
ENV_KEYS = ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
            "ROS_LOCALHOST_ONLY")


def prepare_ros_environment(environ: MutableMapping[str, str], start_node: bool,
                            own_player: bool = True, pid: int | None = None) -> list[str]:
    """Set the DDS environment for this process and the node it starts; notes to print.

    Only when this command owns both ends (it starts the node and plays the bag) does it pick
    Fast DDS's large-data transport (lower latency for VGA images), a private ROS_DOMAIN_ID when
    none is set (so it neither hears a real camera nor disturbs one), and drop a restricted
    discovery range, with which rmw_fastrtps replaces the large-data transport by lossy
    localhost UDP. A running node (--no-node) or another player (--no-play) lives in another
    shell: everything stays as the user set it, since mismatched transports deliver nothing.
    """
    notes: list[str] = []
    if not (start_node and own_player):
        if environ.get("FASTDDS_BUILTIN_TRANSPORTS"):
            notes.append(f"FASTDDS_BUILTIN_TRANSPORTS={environ['FASTDDS_BUILTIN_TRANSPORTS']}: "
                         "the node and the player must use the same")
        return notes + _transport_problems(environ)
    environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    notes += _transport_problems(environ)
    if "ROS_DOMAIN_ID" not in environ:
        environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() if pid is None else pid) % 101)  # 1..101
        notes.append(f"using private ROS_DOMAIN_ID={environ['ROS_DOMAIN_ID']} (set ROS_DOMAIN_ID "
                     "to choose one)")
    if BuiltinTransports.parse(environ["FASTDDS_BUILTIN_TRANSPORTS"]).mode == "LARGE_DATA":
        for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"):
            if environ.get(key, "") not in ("", "0", "SUBNET", "DEFAULT"):
                notes.append(f"ignoring {key}={environ.pop(key)}: it disables the large-data "
                             "transport")
    return notes


def _transport_problems(environ: Mapping[str, str]) -> list[str]:
    problem = environment_problem(environ)
    return [problem] if problem else []


@contextlib.contextmanager
def applied_ros_environment(environ: MutableMapping[str, str], start_node: bool,
                            own_player: bool = True) -> Iterator[list[str]]:
    """``prepare_ros_environment`` for one run, its notes yielded; the keys it set or dropped are
    put back afterwards, so an in-process caller (a test session, a notebook) keeps its own DDS
    settings: a leaked LARGE_DATA once left every later participant of a pytest process unable
    to discover nodes started with the default transports."""
    saved = {key: environ.get(key) for key in ENV_KEYS}
    try:
        yield prepare_ros_environment(environ, start_node, own_player)
    finally:
        for key, value in saved.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
