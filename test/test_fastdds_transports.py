"""FASTDDS_BUILTIN_TRANSPORTS is parsed as Fast DDS parses it, and a value whose socket buffers
the kernel refuses is reported with the fix before DDS silently fails."""
from __future__ import annotations

import pytest

from depth_unet_ros.fastdds_transports import (BuiltinTransports, kernel_socket_limits,
                                               parse_size, socket_buffer_problem)

STOCK_LINUX = {"rmem_max": 212992, "wmem_max": 212992}
TUNED = {"rmem_max": 4194304, "wmem_max": 4194304}


@pytest.mark.parametrize("text, size", [("65500", 65500), ("4MB", 4_000_000), ("4mb", 4_000_000),
                                        ("1KB", 1000), ("2MiB", 2 << 20), ("1GiB", 1 << 30),
                                        ("12B", 12), (" 3 KiB ", 3072)])
def test_sizes_use_fast_dds_units_decimal_kb_binary_kib(text, size):
    """KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024, any case (Fast DDS's UnitsParser)."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "4 MBytes", "-1MB", "1.5MB"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_mode_and_options_split_as_fast_dds_splits_them():
    """MODE?key=value&key=value; unset is DEFAULT; the mode is case-insensitive."""
    value = BuiltinTransports.parse("large_data?max_msg_size=4MB&sockets_size=8MB&non_blocking=true")
    assert value.mode == "LARGE_DATA"
    assert dict(value.options) == {"max_msg_size": "4MB", "sockets_size": "8MB",
                                   "non_blocking": "true"}
    assert value.socket_buffer_bytes() == 8_000_000  # the larger of the two sizes
    assert BuiltinTransports.parse(None) == BuiltinTransports.parse("") == BuiltinTransports()
    assert BuiltinTransports.parse("LARGE_DATA").socket_buffer_bytes() == 0


def test_large_messages_on_a_stock_kernel_are_reported_with_the_sysctl_that_fixes_them():
    """max_msg_size=2MB against Linux's 212992-byte default: Fast DDS 3.2 then failed to
    register UDP and TCP here (measured), so the message names both limits and the fix."""
    problem = socket_buffer_problem({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?max_msg_size=2MB"},
                                    STOCK_LINUX)
    assert problem is not None
    assert "2000000 bytes" in problem and "rmem_max 212992" in problem
    assert "sysctl -w net.core.rmem_max=2000000 net.core.wmem_max=2000000" in problem


@pytest.mark.parametrize("environ, limits", [
    ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?max_msg_size=4MB"}, TUNED),  # fits
    ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}, STOCK_LINUX),  # Fast DDS's own sizes
    ({}, STOCK_LINUX),
    ({"FASTDDS_BUILTIN_TRANSPORTS": "SHM?max_msg_size=4MB"}, STOCK_LINUX),  # no sockets
    ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?max_msg_size=4MB",
      "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, STOCK_LINUX),  # not Fast DDS
    ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?max_msg_size=4MB"}, None),  # no /proc
])
def test_nothing_is_reported_when_the_buffers_fit_or_do_not_apply(environ, limits):
    assert socket_buffer_problem(environ, limits) is None


def test_only_the_limit_that_is_short_is_named():
    problem = socket_buffer_problem({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?sockets_size=1MB",
                                     "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"},
                                    {"rmem_max": 212992, "wmem_max": 4194304})
    assert "net.core.rmem_max=1000000" in problem and "wmem_max" not in problem


def test_an_unreadable_size_is_reported_not_raised():
    problem = socket_buffer_problem({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA?max_msg_size=big"},
                                    TUNED)
    assert problem is not None and "'big' is not a size" in problem


def test_kernel_limits_are_read_from_proc_and_absent_elsewhere(tmp_path):
    (tmp_path / "rmem_max").write_text("212992\n")
    (tmp_path / "wmem_max").write_text("4194304\n")
    assert kernel_socket_limits(tmp_path) == {"rmem_max": 212992, "wmem_max": 4194304}
    assert kernel_socket_limits(tmp_path / "missing") is None


def test_the_node_takes_its_own_profile_only_on_stock_settings():
    """depth_node gives its participant the shipped profile where nothing chose Fast DDS's
    transports; an exported transport or profiles file (an empty one opts out), another
    middleware, or a localhost-only discovery range keep the environment as it is."""
    from pathlib import Path

    from depth_unet_ros.fastdds_transports import node_profile, shipped_profile_path

    assert node_profile({}) == shipped_profile_path() and Path(shipped_profile_path()).is_file()
    assert node_profile({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
                         "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}) == shipped_profile_path()
    for environ in ({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
                    {"FASTDDS_DEFAULT_PROFILES_FILE": ""},
                    {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"},
                    {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"},
                    {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
                    {"ROS_AUTOMATIC_DISCOVERY_RANGE": "localhost"}, {"ROS_LOCALHOST_ONLY": "1"}):
        assert node_profile(environ) is None, environ
