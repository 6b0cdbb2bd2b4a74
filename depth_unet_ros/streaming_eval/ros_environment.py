"""The DDS environment of a streaming evaluation: which Fast DDS transports, ROS domain and
discovery range the evaluator and the node it starts use, and the notes that explain them."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping, MutableMapping

from depth_unet_ros.fastdds_transports import (ENV, PROFILES_ENV, RESTRICTED_DISCOVERY,
                                               BuiltinTransports, environment_problem,
                                               node_profile, restricting_discovery)

# What prepare_ros_environment may set or drop.
ENV_KEYS = (ENV, PROFILES_ENV, "ROS_DOMAIN_ID", *RESTRICTED_DISCOVERY)


def prepare_ros_environment(environ: MutableMapping[str, str], start_node: bool,
                            own_player: bool = True, pid: int | None = None) -> list[str]:
    """Set the DDS environment for this process and the node it starts; notes to print.

    Only when this command owns both ends (it starts the node and plays the bag) does it choose:
    a private ROS_DOMAIN_ID when none is set (so it neither hears a real camera nor disturbs
    one), and, on stock transports, the node's own Fast DDS profile for both processes, whose
    shared-memory segment holds a whole VGA image (Fast DDS's 512 KB does not, and its UDP
    fragments are slower). A restricted discovery range is dropped, since with it rmw_fastrtps
    replaces the profile (or a large-data transport the shell chose) by localhost UDP. A
    running node (--no-node) or another player (--no-play) lives in another shell: everything
    stays as the user set it, since mismatched transports deliver nothing.

    Fast DDS's LARGE_DATA transport was the choice here before; its TCP discovery failed now
    and then on Fast DDS 3.2 (a node never seen in 30 s), and shared memory is as fast on one
    host. A shell that exports it keeps it.
    """
    notes: list[str] = []
    if not (start_node and own_player):
        if environ.get(ENV):
            notes.append(f"{ENV}={environ[ENV]}: the node and the player must use the same")
        return notes + _transport_problems(environ)
    notes += _transport_problems(environ)
    if "ROS_DOMAIN_ID" not in environ:
        environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() if pid is None else pid) % 101)  # 1..101
        notes.append(f"using private ROS_DOMAIN_ID={environ['ROS_DOMAIN_ID']} (set ROS_DOMAIN_ID "
                     "to choose one)")
    restricting = restricting_discovery(environ)
    profile = node_profile({key: value for key, value in environ.items() if key not in restricting})
    if profile or BuiltinTransports.parse(environ.get(ENV, "")).mode == "LARGE_DATA":
        for key in restricting:
            notes.append(f"ignoring {key}={environ.pop(key)}: with it rmw_fastrtps sends images "
                         "by localhost UDP, in fragments")
    if profile:
        environ[PROFILES_ENV] = profile
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
    to discover nodes started with the default transports. (Fast DDS reads a profiles file
    once, for the first participant of a process: an in-process caller that already has one
    keeps its transports; the node, a new process, takes the profile.)"""
    saved = {key: environ.get(key) for key in ENV_KEYS}
    try:
        yield prepare_ros_environment(environ, start_node, own_player)
    finally:
        for key, value in saved.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
