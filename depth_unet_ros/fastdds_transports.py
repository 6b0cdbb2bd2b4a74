"""FASTDDS_BUILTIN_TRANSPORTS read as Fast DDS reads it, to catch a value this kernel refuses.

Plain ``LARGE_DATA`` still cuts every VGA image into 64 KB fragments; ``max_msg_size`` lifts
that (``LARGE_DATA?max_msg_size=4MB``: the two DDS hops around the node measured 0.5-0.7 ms
faster here). Fast DDS (3.x) then asks the kernel for UDP and TCP socket buffers at least that
large, and where net.core.rmem_max / wmem_max are lower (212992 bytes on a stock Linux) both
transports fail to register: the process discovers no one and no one discovers it, with one
line on stdout as the only sign. Sizes follow Fast DDS's units: KB, MB, GB are powers of 1000,
KiB, MiB, GiB of 1024, case-insensitive.
"""
from __future__ import annotations

import re
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

ENV = "FASTDDS_BUILTIN_TRANSPORTS"
UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3,
         "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
SOCKETLESS_MODES = ("NONE", "SHM")  # no UDP or TCP socket to size
KERNEL_LIMITS_DIR = Path("/proc/sys/net/core")


@dataclass(frozen=True)
class BuiltinTransports:
    """One FASTDDS_BUILTIN_TRANSPORTS value: ``MODE`` or ``MODE?key=value&key=value``."""

    mode: str = "DEFAULT"
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str | None) -> "BuiltinTransports":
        """The value as Fast DDS splits it; unset or empty is Fast DDS's DEFAULT."""
        if not value:
            return cls()
        mode, _, query = value.partition("?")
        options = dict(item.partition("=")[::2] for item in query.split("&") if item)
        return cls(mode.strip().upper() or "DEFAULT", options)

    def socket_buffer_bytes(self) -> int:
        """The smallest socket buffer Fast DDS accepts for these options (0: its default)."""
        if self.mode in SOCKETLESS_MODES:
            return 0
        return max((parse_size(self.options[key]) for key in ("max_msg_size", "sockets_size")
                    if key in self.options), default=0)


def parse_size(text: str) -> int:
    """Bytes in a Fast DDS size such as ``4MB``, ``512KiB`` or ``65500``."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if unit not in UNITS:
        raise ValueError(f"{text!r} is not a size: a number and one of B, KB, MB, GB, KiB, MiB, "
                         "GiB")
    return int(match.group(1)) * UNITS[unit]


def kernel_socket_limits(directory: Path = KERNEL_LIMITS_DIR) -> dict[str, int] | None:
    """net.core.rmem_max and wmem_max in bytes, or None where they cannot be read (not Linux)."""
    try:
        return {name: int((directory / name).read_text()) for name in ("rmem_max", "wmem_max")}
    except (OSError, ValueError):
        return None


def socket_buffer_problem(environ: Mapping[str, str],
                          limits: Mapping[str, int] | None) -> str | None:
    """What to do when this environment's Fast DDS transports ask for socket buffers larger
    than the kernel grants (None when they fit, or when another RMW or no limits apply)."""
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    if limits is None or (rmw and not rmw.startswith("rmw_fastrtps")):
        return None
    value = environ.get(ENV, "")
    try:
        needed = BuiltinTransports.parse(value).socket_buffer_bytes()
    except ValueError as exc:
        return f"{ENV}={value}: {exc}"
    short = {name: limit for name, limit in limits.items() if limit < needed}
    if not short:
        return None
    now = ", ".join(f"{name} {limit}" for name, limit in short.items())
    fix = " ".join(f"net.core.{name}={needed}" for name in short)
    return (f"{ENV}={value} needs socket buffers of {needed} bytes, but the kernel allows "
            f"{now}: Fast DDS's UDP and TCP transports will fail and this process will "
            f"neither discover nor be discovered. Raise the limit (sudo sysctl -w {fix}) or "
            f"lower max_msg_size and sockets_size (plain LARGE_DATA needs nothing).")


def environment_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """``socket_buffer_problem`` for this environment against this kernel's limits."""
    return socket_buffer_problem(environ, kernel_socket_limits())


# What a shell sets when it has chosen its own Fast DDS transports; the node's profile then
# stays out of the way, since a transport that differs between processes can deliver nothing.
PROFILES_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"  # an XML file of profiles, read at start
TRANSPORT_CHOICES = (ENV, PROFILES_ENV, "FASTRTPS_DEFAULT_PROFILES_FILE")
FASTDDS_RMW = "rmw_fastrtps_cpp"
# rmw_fastrtps replaces a participant's transports by localhost UDP under these
RESTRICTED_DISCOVERY = {"ROS_AUTOMATIC_DISCOVERY_RANGE": ("LOCALHOST", "OFF"),
                        "ROS_LOCALHOST_ONLY": ("1",)}
# Everything that changes which transports a participant uses; a stock shell sets none of it.
TRANSPORT_SETTINGS = (*TRANSPORT_CHOICES, *RESTRICTED_DISCOVERY)


PROFILE_NAME = "fastdds_depth_node.xml"  # shipped in depth_unet_ros/data


def shipped_profile_path() -> str:
    """The node's own Fast DDS profile: the default transports, with a shared-memory segment
    sized for VGA outputs (Fast DDS's 512 KB is smaller than one 640x480 depth image)."""
    from importlib.resources import files

    return str(files("depth_unet_ros") / "data" / PROFILE_NAME)


def node_profile(environ: Mapping[str, str] = os.environ) -> str | None:
    """The profile file depth_node gives its own participant: the shipped one on stock
    settings; None where the environment names a profiles file (even an empty one, the way to
    opt out) or otherwise chose Fast DDS's transports. A parent that already named the shipped
    profile for both ends (bag-eval, the demo) gets it back, so the node still says so."""
    if environ.get(PROFILES_ENV) == shipped_profile_path():
        return shipped_profile_path()
    if PROFILES_ENV in environ or shell_chooses_transports(environ) is not None:
        return None
    return shipped_profile_path()


def shell_chooses_transports(environ: Mapping[str, str] = os.environ) -> str | None:
    """The variable through which ``environ`` already decides Fast DDS's transports (or runs
    another middleware), or None on stock settings."""
    for name in TRANSPORT_CHOICES:
        if environ.get(name):
            return name
    if environ.get("RMW_IMPLEMENTATION", FASTDDS_RMW) != FASTDDS_RMW:
        return "RMW_IMPLEMENTATION"
    restricting = restricting_discovery(environ)
    return restricting[0] if restricting else None


def restricting_discovery(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The variables of ``environ`` that restrict discovery, under which rmw_fastrtps replaces
    a participant's transports (and any profile) by localhost UDP."""
    return [name for name, values in RESTRICTED_DISCOVERY.items()
            if environ.get(name, "").strip().upper() in values]
