"""A private network of "hosts" on this machine: one network namespace per voxline node.

    root namespace: bridge vxk…b with 10.77.N.1 (the callers) and 10.77.N.2 (Kamailio)
    node i:         namespace voxline-scaleout-<pid>-<n>-node<i>, eth0 = 10.77.N.(11+i), a veth to the bridge

Nothing is routed off the machine: the subnet exists only on the bridge. Everything made here is
removed when the `private_network` block ends, whatever happened inside it, and anything a killed
test run left behind (its pid is gone) is removed before a new network is made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

IP = shutil.which("ip") or next(
    (p for p in ("/usr/sbin/ip", "/sbin/ip", "/bin/ip") if os.path.exists(p)), None
)
NETNS_PREFIX = "voxline-scaleout-"
_LINK = re.compile(r"^vxk(?P<pid>[0-9a-f]+)n\d+[bv]\d*$")
_NETNS = re.compile(rf"^{NETNS_PREFIX}(?P<pid>\d+)-")
_counter = itertools.count()


class NetworkError(RuntimeError):
    pass


def missing_requirements() -> str | None:
    """Why private networks cannot be made here (None when they can), in words for the test failure."""
    if IP is None:
        return "`ip` (iproute2) is not installed: apt install iproute2 (scripts/setup.sh test should)"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN): run the scale-out tests as root"
    probe = f"{NETNS_PREFIX}{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    _ip("netns", "del", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert IP is not None
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=10)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_all_in(namespace: str) -> None:
    for pid in _ip("netns", "pids", namespace, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def remove_leftovers() -> list[str]:
    """Namespaces and bridges of test runs that died without cleaning up; returns what was removed."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if (m := _NETNS.match(name)) and not _alive(int(m["pid"])):
            _kill_all_in(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if (m := _LINK.match(name)) and not _alive(int(m["pid"], 16)):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet() -> str:
    """A 10.77.N.0/24 no interface on this machine uses (other runs may hold some)."""
    used = _ip("-o", "-4", "addr", "show", check=False).stdout
    start = os.getpid() % 250
    for offset in range(250):
        n = (start + offset) % 250
        if f" 10.77.{n}." not in used:
            return f"10.77.{n}"
    raise NetworkError("every 10.77.N.0/24 is in use")


@dataclass
class PrivateNetwork:
    prefix: str
    """The first three octets, e.g. "10.77.0"."""
    tag: str
    namespaces: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"vxk{self.tag}b"

    @property
    def caller_host(self) -> str:
        return f"{self.prefix}.1"

    @property
    def proxy_host(self) -> str:
        return f"{self.prefix}.2"

    def node_host(self, index: int) -> str:
        return f"{self.prefix}.{11 + index}"

    def add_host(self) -> str:
        """A new namespace wired to the bridge with its own address; returns the namespace's name."""
        index = len(self.namespaces)
        name = f"{NETNS_PREFIX}{os.getpid()}-{self.tag.split('n')[-1]}-node{index}"
        veth = f"vxk{self.tag}v{index}"
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", name, "addr", "add", f"{self.node_host(index)}/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "eth0", "up")
        return name

    def exec_prefix(self, namespace: str) -> list[str]:
        """The command line prefix that runs a program inside `namespace`."""
        assert IP is not None
        return [IP, "netns", "exec", namespace]


@contextlib.contextmanager
def private_network() -> Iterator[PrivateNetwork]:
    remove_leftovers()
    prefix = _free_subnet()
    network = PrivateNetwork(prefix, f"{os.getpid():x}n{next(_counter)}")
    assert ipaddress.ip_address(network.caller_host).is_private
    try:
        _ip("link", "add", network.bridge, "type", "bridge")
        _ip("addr", "add", f"{network.caller_host}/24", "dev", network.bridge)
        _ip("addr", "add", f"{network.proxy_host}/24", "dev", network.bridge)
        _ip("link", "set", network.bridge, "up")
        yield network
    finally:
        for namespace in network.namespaces:
            _kill_all_in(namespace)
            _ip("netns", "del", namespace, check=False)  # takes its end of the veth pair with it
        _ip("link", "del", network.bridge, check=False)
