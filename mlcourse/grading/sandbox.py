"""Limits a grading child process puts on itself before any learner code runs.

- resource limits (soft = hard): address space (memory), CPU seconds, file size, no core dumps;
- Linux Landlock (kernel >= 5.13, no privileges needed): the process may create, write, truncate,
  rename or delete files only inside its work folder (and write /dev/null); from ABI 4 it may not
  open TCP connections; from ABI 6 it may not signal processes outside its own sandbox (so it
  cannot kill the grader);
- when running as root: drop every capability, so the limits above cannot be raised again.

Every step is best effort and reported: ``apply(...)`` returns what was enforced.
"""
from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP = 38, 24
_CAPSET = {"x86_64": 126, "aarch64": 91}.get(platform.machine())

# Landlock filesystem rights (include/uapi/linux/landlock.h)
_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def set_limits(memory_bytes, cpu_seconds, file_bytes):
    """Soft and hard rlimits; returns the names set."""
    done = []
    for name, res, value in (("memory", resource.RLIMIT_AS, memory_bytes), ("cpu", resource.RLIMIT_CPU, cpu_seconds),
                             ("file size", resource.RLIMIT_FSIZE, file_bytes), ("core", resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(res, (int(value), int(value)))
            done.append(name)
        except (ValueError, OSError):
            pass
    # writing past the file-size limit then fails with an OSError instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return done


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_writes_only_in(folder):
    """Restrict file writes and deletions to `folder` (and /dev/null).  Returns the Landlock ABI or 0."""
    libc = _libc()
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    if abi >= 2:
        fs |= _REFER
    if abi >= 3:
        fs |= _TRUNCATE
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    try:
        for path, rights in ((folder, fs), ("/dev/null", _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0))):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = PathBeneath(rights, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
                    return 0
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            return 0
    finally:
        os.close(ruleset)
    return int(abi)


def drop_capabilities():
    """As root: empty the bounding set and the effective/permitted/inheritable sets.  True if done."""
    if os.geteuid() != 0 or _CAPSET is None:
        return False
    libc = _libc()
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                  # two {effective, permitted, inheritable} words, all 0
    return libc.syscall(_CAPSET, ctypes.byref(header), ctypes.byref(data)) == 0


def apply(folder, memory_bytes, cpu_seconds, file_bytes):
    """All of the above, in an order where each step still has the rights it needs."""
    limits = set_limits(memory_bytes, cpu_seconds, file_bytes)
    abi = landlock_writes_only_in(folder)
    caps = drop_capabilities()
    return {"limits": limits, "landlock_abi": abi, "capabilities_dropped": caps}
