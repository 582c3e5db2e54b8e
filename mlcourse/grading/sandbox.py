"""Limits a grading child process puts on itself before any learner code runs, and the watch kept on it.

- resource limits (soft = hard): address space (memory), CPU seconds, file size, no core dumps, and
  (for a user other than root, whom the kernel exempts) the number of processes;
- Linux Landlock (kernel >= 5.13, no privileges needed): the process may read only what running
  Python and the package needs (``read_paths``: the interpreter, the standard library and
  site-packages, the package's own folder, the system's shared libraries and programs and the few
  files they read, ``/dev/null``, ``/dev/urandom``, its own ``/proc/self``), and create, write, truncate, rename
  or delete files only inside its work folder (and write /dev/null); from ABI 4 it may not open TCP
  connections; from ABI 6 it may not signal processes outside its own sandbox (so it cannot kill
  the grader or its supervisor);
- a pids cgroup (cgroup v1 ``pids`` or a writable cgroup v2 with the pids controller, usually only as
  root): at most ``max_processes`` tasks, whatever the user;
- when running as root: drop every capability, so the limits above cannot be raised again;
- a seccomp filter (``seccomp_program``): no change of a file's mode, owner, times, attributes or inode
  flags, and no socket of any family (``socketpair`` stays), which Landlock does not cover.

``Supervisor`` is the parent of the grading child (the harness forks it): a child subreaper, so
every process the submission starts, even one that forked twice and called ``setsid()``, stays its
descendant; it measures the disk the submission uses and the processes it runs, stops the
submission past either bound, and kills every descendant (SIGKILL, which no process can ignore)
when the child ends or the grader asks.

Every step is best effort and reported: ``apply(...)`` returns what was enforced, and the supervisor
checks that account against the kernel (``proc_status``) before it passes it to the grader.
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import sys
import sysconfig
import time

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_SET_CHILD_SUBREAPER, _PR_SET_PDEATHSIG = 38, 24, 36, 1
_CAPSET = {"x86_64": 126, "aarch64": 91}.get(platform.machine())

# Landlock filesystem rights (include/uapi/linux/landlock.h)
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR, _REMOVE_DIR, _REMOVE_FILE = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5
_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def _user_tasks(uid):
    """How many tasks (processes and threads) the user runs now: RLIMIT_NPROC counts them all."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def set_limits(memory_bytes, cpu_seconds, file_bytes, max_processes=None):
    """Soft and hard rlimits; returns the names set ("processes" only where the kernel applies it)."""
    done = []
    todo = [("memory", resource.RLIMIT_AS, memory_bytes), ("cpu", resource.RLIMIT_CPU, cpu_seconds),
            ("file size", resource.RLIMIT_FSIZE, file_bytes), ("core", resource.RLIMIT_CORE, 0)]
    if max_processes and os.getuid() != 0 and os.path.isdir("/proc"):  # root is exempt from RLIMIT_NPROC
        todo.append(("processes", resource.RLIMIT_NPROC, _user_tasks(os.getuid()) + int(max_processes)))
    for name, res, value in todo:
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


def landlock_abi():
    """The kernel's Landlock ABI version, 0 without Landlock."""
    if not sys.platform.startswith("linux"):
        return 0
    return max(0, int(_libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))


# the grader's own modules the grading child needs; the rest of mlcourse/grading (the question bank,
# its inputs and references, the judges, the reports) is not readable from the child
CHILD_MODULES = ("harness.py", "codec.py", "blocking.py", "sandbox.py")


def package_rules(package_dir, deny=()):
    """[(path, kind)] for the package folder: kind True (a folder, all of it), False (a file), or
    "list" (a folder that may be listed but whose files are readable only one by one): every file
    except those in `deny` and mlcourse/grading's files other than CHILD_MODULES (and their byte code)."""
    import importlib.util
    grading = os.path.join(package_dir, "grading")
    keep = set()
    for m in CHILD_MODULES:
        keep.add(os.path.join(grading, m))
        try:
            keep.add(os.path.realpath(importlib.util.cache_from_source(os.path.join(grading, m))))
        except (NotImplementedError, ValueError):
            pass
    denied = {os.path.realpath(p) for p in deny}
    for d, _, files in os.walk(grading):
        denied.update(os.path.join(d, f) for f in files if os.path.join(d, f) not in keep)
    rules = []

    def walk(folder):
        if not any(p.startswith(folder + os.sep) for p in denied):
            rules.append((folder, True))
            return
        rules.append((folder, "list"))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.is_symlink():
                continue
            if e.is_dir():
                walk(e.path)
            elif e.path not in denied:
                rules.append((e.path, False))
    walk(package_dir)
    return rules


def read_paths(package_dir=None, deny=()):
    """What the grading child may read: [(path, kind)] that exist, without the project's other folders.

    The interpreter's prefixes, the standard library and site-packages, the package folder itself
    (not the project folder around it: solutions and submissions stay out; nor the question bank,
    nor the files in `deny`: see ``package_rules``), shared libraries and the system files they
    read, a few device files, and /proc/self.
    """
    package_dir = os.path.realpath(package_dir or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    project = os.path.dirname(package_dir)
    if not os.path.isfile(os.path.join(project, "pyproject.toml")):
        project = None  # an installed package (site-packages): no project folder around it
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable))}
    dirs.update(p for p in sysconfig.get_paths().values())
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if project and (project + os.sep).startswith(real + os.sep):
            continue  # a folder holding the project (an editable install's root on sys.path): only the package
        inside = [r for r in (package_dir, os.path.realpath(sys.prefix)) if (real + os.sep).startswith(r + os.sep)]
        if project and (real + os.sep).startswith(project + os.sep) and not inside:
            continue  # the project's other folders (tests, solutions, submissions kept there) stay out
        dirs.add(real)
    dirs.update(("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/local/lib",
                 "/bin", "/usr/bin", "/usr/local/bin",  # system programs (shell escapes, subprocess): no private data
                 "/usr/share/zoneinfo", "/usr/share/fonts", "/etc/ld.so.conf.d", "/etc/fonts",
                 "/sys/devices/system/cpu", "/proc/self"))
    files = {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf", "/etc/mime.types",
             "/dev/urandom", "/dev/random", "/dev/zero", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
             os.path.realpath(sys.executable)}
    home = os.path.realpath(os.path.expanduser("~"))
    out = sorted({(os.path.realpath(p), True) for p in dirs if os.path.isdir(p)} - {("/", True), (home, True),
                                                                                   (project, True)})
    # a folder above the package (a prefix holding an installed copy) would open all of it: listed only
    above = [(p, k) for p, k in out if (package_dir + os.sep).startswith(p + os.sep)]
    out = [(p, k) for p, k in out if (p, k) not in above and not (p + os.sep).startswith(package_dir + os.sep)]
    out += [(p, "list") for p, _ in above]
    if above:
        out += _siblings_of(package_dir, [p for p, _ in above])
    out += package_rules(package_dir, deny)
    return out + sorted({(os.path.realpath(p), False) for p in files if os.path.exists(p)})


def _siblings_of(package_dir, tops):
    """Rules opening everything under each folder of `tops` except the path down to package_dir."""
    rules = []
    for top in tops:
        d = package_dir
        while d != top and len(d) > len(top):
            parent = os.path.dirname(d)
            try:
                for e in os.scandir(parent):
                    if e.path != d and not e.is_symlink() and (parent, "list") not in rules:
                        rules.append((e.path, e.is_dir()))
            except OSError:
                pass
            if parent != top:
                rules.append((parent, "list"))
            d = parent
    return rules


def landlock_confine(folder, reads=None):
    """Writes only inside `folder` (and /dev/null); reads only `folder` and `reads` ([(path, is_dir)]).

    reads=None leaves reading unrestricted.  Returns (Landlock ABI or 0, reads confined).
    """
    libc = _libc()
    abi = landlock_abi()
    if abi < 1:
        return 0, False
    fs = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    if abi >= 2:
        fs |= _REFER
    if abi >= 3:
        fs |= _TRUNCATE
    read_rights = (_EXECUTE | _READ_FILE | _READ_DIR) if reads is not None else 0
    handled = fs | read_rights
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(handled, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0, False

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    file_rights = _WRITE_FILE | _READ_FILE | _EXECUTE | (_TRUNCATE if abi >= 3 else 0)
    rules = [(folder, handled), ("/dev/null", (_WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)) | (
        _READ_FILE if reads is not None else 0))]
    rules += [(path, _READ_DIR if kind == "list" else (_EXECUTE | _READ_FILE | _READ_DIR) if kind
               else (_EXECUTE | _READ_FILE) & file_rights) for path, kind in (reads or ())]
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = PathBeneath(rights, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
                    if path == folder:
                        return 0, False
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0, False
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            return 0, False
    finally:
        os.close(ruleset)
    return int(abi), reads is not None


def landlock_writes_only_in(folder):
    """Restrict file writes and deletions to `folder` (and /dev/null).  Returns the Landlock ABI or 0."""
    return landlock_confine(folder, None)[0]


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


# ---- seccomp: what Landlock does not cover ------------------------------------------------------
#
# Landlock governs reading, writing, creating and deleting files, TCP and signals; it does not govern a
# file's metadata (mode, owner, times, extended attributes, inode flags) nor sockets other than TCP.
# A seccomp filter refuses those system calls outright (EPERM), wherever the file is: a notebook has
# no reason to change a file's mode or to open a socket.  socketpair() stays allowed (a pair of
# sockets connected to each other reaches nothing outside the process tree).

_SECCOMP = {
    # x86_64: audit arch, then the refused system calls
    "x86_64": (0xC000003E, {"socket": 41, "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94,
                            "utime": 132, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197,
                            "lremovexattr": 198, "fremovexattr": 199, "utimes": 235, "fchownat": 260,
                            "futimesat": 261, "fchmodat": 268, "utimensat": 280, "io_uring_setup": 425,
                            "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466}, 16),
    "aarch64": (0xC00000B7, {"socket": 198, "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55,
                             "utimensat": 88, "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14,
                             "lremovexattr": 15, "fremovexattr": 16, "io_uring_setup": 425, "fchmodat2": 452,
                             "setxattrat": 463, "removexattrat": 466}, 29),
}
_IOCTL_REFUSED = (0x40086602, 0x401C5820)  # FS_IOC_SETFLAGS (chattr), FS_IOC_FSSETXATTR
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _PR_SET_DUMPABLE = 22, 2, 4


def seccomp_program(machine=None):
    """The BPF program (list of (code, jt, jf, k)) for this machine, or None where none is defined."""
    table = _SECCOMP.get(machine or platform.machine())
    if table is None:
        return None
    arch, calls, ioctl = table
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny),  # another ABI (int 0x80, x32): refused
            (ld, 0, 0, 0)]
    if arch == 0xC000003E:
        prog.append((jge, "deny", 0, 0x40000000))
    prog += [(jeq, "deny", 0, nr) for nr in sorted(calls.values())]
    prog += [(jeq, "ioctl", 0, ioctl), (ret, 0, 0, allow)]
    labels = {"ioctl": len(prog)}
    prog += [(ld, 0, 0, 24)] + [(jeq, "deny", 0, cmd) for cmd in _IOCTL_REFUSED] + [(ret, 0, 0, allow)]
    labels["deny"] = len(prog)
    prog.append((ret, 0, 0, deny))
    return [(code, labels[jt] - i - 1 if isinstance(jt, str) else jt, jf, k) for i, (code, jt, jf, k) in enumerate(prog)]


def seccomp_confine():
    """Install the filter above on this process and every process it starts.  True if installed."""
    prog = seccomp_program() if sys.platform.startswith("linux") else None
    if prog is None:
        return False

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]
    filters = (Filter * len(prog))(*[Filter(*ins) for ins in prog])
    fprog = Program(len(prog), filters)
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def set_dumpable(flag):
    """PR_SET_DUMPABLE: 0 keeps processes of the same user (the submission) out of this one's /proc entries."""
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_DUMPABLE, int(bool(flag)), 0, 0, 0)


def proc_status(pid):
    """What the kernel says of a process's confinement (from /proc/<pid>/status and cgroup), for the
    supervisor to check the child's own account against."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return out
    out["no_new_privs"] = fields.get("NoNewPrivs", "").strip() == "1"
    out["seccomp"] = fields.get("Seccomp", "").strip() == "2"
    out["capabilities_empty"] = all(int(fields.get(k, "1") or "1", 16) == 0 for k in ("CapEff", "CapPrm", "CapBnd"))
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            out["cgroup"] = f.read().strip()
    except OSError:
        out["cgroup"] = ""
    return out


def apply(folder, memory_bytes, cpu_seconds, file_bytes, max_processes=None, confine_reads=True, cgroup=None,
          deny=()):
    """All of the above, in an order where each step still has the rights it needs.

    cgroup: a pids cgroup folder (``Supervisor.cgroup``) this process joins first, or None.
    deny: files this process may not read even inside the package (``blocking.block_for_run``'s).
    """
    in_cgroup = False
    if cgroup:
        try:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            in_cgroup = True
        except OSError:
            pass
    limits = set_limits(memory_bytes, cpu_seconds, file_bytes, max_processes)
    reads = read_paths(deny=deny) if confine_reads else None
    abi, reads_confined = landlock_confine(folder, reads)
    caps = drop_capabilities()
    filtered = seccomp_confine()
    return {"limits": limits, "landlock_abi": abi, "reads_confined": reads_confined, "writes_confined": abi > 0,
            "pids_cgroup": in_cgroup, "capabilities_dropped": caps, "seccomp": filtered, "uid": os.geteuid()}


# ---- the supervisor: the grading child's parent --------------------------------------------------

_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def make_pids_cgroup(name, max_tasks):
    """A new pids cgroup allowing max_tasks tasks, or None where none can be made (not root, no pids)."""
    for root in _CGROUP_ROOTS:
        v1 = os.path.basename(root) == "pids" and os.path.isfile(os.path.join(root, "cgroup.procs"))
        if not v1 and not _v2_has_pids(root):
            continue
        path = os.path.join(root, name)
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(int(max_tasks)))
            return path
        except OSError:
            remove_cgroup(path)
    return None


def _v2_has_pids(root):
    try:
        with open(os.path.join(root, "cgroup.subtree_control")) as f:
            return "pids" in f.read().split()
    except OSError:
        return False


def cgroup_pids(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def remove_cgroup(path, seconds=5.0):
    """Kill every process in the cgroup until none is left, then remove it.  True if removed."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pids = cgroup_pids(path)
        for pid in pids:
            _sigkill(pid)
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)
    return False


def _sigkill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _children(pid):
    """Direct children of pid (every thread's), from /proc/<pid>/task/*/children."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def descendants(pid):
    """Every process below pid (pid excluded)."""
    seen, todo = [], _children(pid)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += _children(p)
    return seen


def _tasks(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def disk_used(folder, pids=()):
    """Bytes on disk under folder, plus files the processes pids hold open after deleting them."""
    total, seen = 0, set()
    stack = [folder]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            link = f"/proc/{pid}/fd/{fd}"
            try:
                if not os.readlink(link).endswith(" (deleted)"):
                    continue
                st = os.stat(link)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def refused_forks(path):
    """How many forks the pids cgroup at path has refused (its ``pids.events`` "max" count)."""
    try:
        with open(os.path.join(path, "pids.events")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def bound_reached(root, workdir, disk_bytes, max_processes, cgroup=None):
    """Whether the processes below pid root have reached a bound: ("disk" | "processes" | None, procs, tasks, bytes).

    "processes": they run max_processes tasks (processes and threads) at once, or the pids cgroup
    has refused one of their forks; "disk": they use, within 1 MB, disk_bytes under workdir (files
    they hold open after deleting them included).  Past that point writes fail (the supervisor's
    file-size limit follows what is left), so a submission that keeps writing would never pass it.
    """
    procs = descendants(root)
    count = sum(_tasks(p) for p in procs)
    refused = 0
    if cgroup:
        count = max(count, len(cgroup_pids(cgroup)))
        refused = refused_forks(cgroup)
    used = disk_used(workdir, procs)
    if used >= disk_bytes - min(2 ** 20, disk_bytes // 16):
        return "disk", procs, count, used
    if count >= max_processes or refused:
        return "processes", procs, count, used
    return None, procs, count, used


def cgroup_of(supervisor_pid):
    """The pids cgroup the supervisor with that pid made, or None."""
    for root in _CGROUP_ROOTS:
        path = os.path.join(root, f"mlcourse-grade-{supervisor_pid}")
        if os.path.isdir(path):
            return path
    return None


class Supervisor:
    """Watch one grading child and everything it starts; see the module docstring.

    Use: ``sup = Supervisor(workdir, disk_bytes, max_processes)``, fork, the child calls
    ``apply(..., cgroup=sup.cgroup)``, the parent calls ``sup.watch(child_pid, file_bytes)`` which
    returns the status dict once every process of the submission is gone.
    """

    TICK = 0.02

    def __init__(self, workdir, disk_bytes, max_processes):
        self.workdir, self.disk_bytes, self.max_processes = workdir, int(disk_bytes), int(max_processes)
        self.subreaper = bool(sys.platform.startswith("linux") and _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
        self.cgroup = make_pids_cgroup(f"mlcourse-grade-{os.getpid()}", max_processes)  # see cgroup_of if os.geteuid() == 0 else None
        self.stop = False
        self._reaped = None

    def info(self):
        return {"subreaper": self.subreaper, "disk_bound_mb": self.disk_bytes / 2 ** 20,
                "max_processes": self.max_processes}

    def _on_term(self, signum, frame):
        self.stop = True

    def relay_confinement(self, child, info_fd, out_fd, seconds=60.0):
        """Read the child's account of its confinement (written before any learner code runs, then its
        end of the pipe is closed), check it against what the kernel says of the child, and pass it on
        as the first line on out_fd.  The grader takes the report's sandbox section from here only."""
        import select
        data, end = b"", time.monotonic() + seconds
        while len(data) < 65536 and time.monotonic() < end:
            ready, _, _ = select.select([info_fd], [], [], 0.05)
            if ready:
                chunk = os.read(info_fd, 65536)
                if not chunk:
                    break
                data += chunk
            else:
                pid, st = os.waitpid(child, os.WNOHANG)
                if pid == child:  # it ended before confining itself: watch() reports how
                    self._reaped = st
                    break
        os.close(info_fd)
        try:
            info = json.loads(data.split(b"\n")[0])
        except ValueError:
            info = None
        kernel = proc_status(child)
        if not isinstance(info, dict) or not kernel:
            info = {}
        else:
            # what the kernel shows of the child must agree with its own account
            info["seccomp"] = bool(info.get("seccomp")) and kernel.get("seccomp", False)
            info["capabilities_dropped"] = bool(info.get("capabilities_dropped")) and kernel.get(
                "capabilities_empty", False)
            if self.cgroup:
                info["pids_cgroup"] = bool(info.get("pids_cgroup")) and os.path.basename(self.cgroup) in kernel.get(
                    "cgroup", "")
            info["no_new_privs"] = kernel.get("no_new_privs", False)
            info.update(self.info())
        os.write(out_fd, (json.dumps({"sandbox": info}) + "\n").encode())

    def watch(self, child, file_bytes):
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        parent = os.getppid()
        reason, status, peak_disk, peak_procs, fsize, last_used = None, None, 0, 0, int(file_bytes), 0
        while True:
            if self._reaped is not None:  # already reaped while the confinement was relayed
                pid, st = child, self._reaped
            else:
                pid, st = os.waitpid(child, os.WNOHANG)
            if pid == child:
                status = st
                break
            if self.stop or os.getppid() != parent:
                reason = "stopped"
                break
            # the child, what it started, and orphans (reparented here)
            bound, procs, count, used = bound_reached(os.getpid(), self.workdir, self.disk_bytes,
                                                      self.max_processes, self.cgroup)
            peak_procs, peak_disk = max(peak_procs, count), max(peak_disk, used)
            if bound:
                reason = bound
                break
            # what is left of the disk budget also bounds each file the processes may still write
            left = max(self.disk_bytes - used, 4096)
            if left < fsize:
                fsize = left
                for p in procs:
                    try:
                        resource.prlimit(p, resource.RLIMIT_FSIZE, (fsize, fsize))
                    except (OSError, ValueError):
                        pass
            # while the submission writes, look ten times as often: the overshoot past the disk bound
            # is what it writes between two looks
            time.sleep(self.TICK if used == last_used else self.TICK / 10)
            last_used = used
        # once more at the end, whatever ended the run: a child that wrote and ended between two looks
        # (a loaded machine stretches them) still has its files measured before they are swept away
        peak_disk = max(peak_disk, disk_used(self.workdir, descendants(os.getpid())))
        self.sweep()
        if status is None:
            try:
                _, status = os.waitpid(child, 0)
            except ChildProcessError:
                status = None
        code = None if status is None else (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                                            else os.WEXITSTATUS(status))
        return {"reason": reason, "code": code, "peak_disk_mb": round(peak_disk / 2 ** 20, 3),
                "peak_processes": peak_procs}

    def sweep(self, seconds=10.0):
        """SIGKILL every descendant until none is left (orphans come back here: a subreaper), reap them."""
        end = time.monotonic() + seconds
        me = os.getpid()
        while time.monotonic() < end:
            found = descendants(me)
            if self.cgroup:
                found += [p for p in cgroup_pids(self.cgroup) if p not in found]
            for p in found:
                _sigkill(p)
            reaped = False
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                reaped = True
            if not found and not reaped:
                break
            if not reaped:
                time.sleep(0.005)
        if self.cgroup:
            remove_cgroup(self.cgroup)


def report_status(fd, status):
    """The supervisor's last word to the grader (its stdout, which no learner process holds)."""
    os.write(fd, (json.dumps({"status": status}) + "\n").encode())
