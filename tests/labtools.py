"""Test tools: drive a real JupyterLab in headless Chromium, and run code with packages hidden.

``jupyter_lab(root, home)`` starts an isolated server on 127.0.0.1 (free port, random token, every
Jupyter directory under ``home``) and yields its base URL; ``wait_kernel_idle`` and
``run_all_and_wait`` wait on the app's own state (``window.jupyterapp``), not on toolbar text.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
VENV_BIN = os.path.dirname(sys.executable)
SERVER_START_TIMEOUT_S = 90

SETTINGS = {
    # no "Select Kernel" dialog, no news or update toast over the notebook
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False,
                                                   "doNotDisturbMode": True},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(settings_dir):
    for key, val in SETTINGS.items():
        path = os.path.join(settings_dir, f"{key}.jupyterlab-settings")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(val, f)


@contextmanager
def jupyter_lab(root_dir, home):
    """Start JupyterLab serving root_dir; yield (base_url, token, seconds to start)."""
    token = secrets.token_urlsafe(16)
    port = free_port()
    home = str(home)
    env = dict(os.environ, HOME=home, JUPYTER_DATA_DIR=f"{home}/data", MPLCONFIGDIR=f"{home}/mpl",
               JUPYTER_CONFIG_DIR=f"{home}/config", JUPYTER_RUNTIME_DIR=f"{home}/runtime",
               IPYTHONDIR=f"{home}/ipython", JUPYTERLAB_SETTINGS_DIR=f"{home}/settings",
               JUPYTERLAB_WORKSPACES_DIR=f"{home}/ws", JUPYTER_PLATFORM_DIRS="1")
    env.pop("MPLBACKEND", None)   # the kernel should use the inline backend, as a learner's does
    cmd = [f"{VENV_BIN}/jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
           "--LabApp.expose_app_in_browser=True",          # window.jupyterapp for commands and state
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    write_settings(f"{home}/settings")
    log = open(f"{home}/lab.log", "w")
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:  # ready when /api/status answers 200
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
            if time.time() - t0 > SERVER_START_TIMEOUT_S:
                raise TimeoutError(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S} s; see {log.name}")
        yield base, token, time.time() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


KERNEL_IDLE_JS = """() => { const w = window.jupyterapp?.shell?.currentWidget;
  const k = w?.sessionContext?.session?.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""


def wait_kernel_idle(page, timeout=90_000):
    # the toolbar indicator says 'idle' before the kernel is connected: ask the app
    page.wait_for_function(KERNEL_IDLE_JS, timeout=timeout)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout)


def run_all_and_wait(page, n_code_cells, timeout=180_000):
    # don't return the promise: page.evaluate has no timeout and would wait on it
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # every code cell shows "[k]:" (not "[ ]:" / "[*]:"), then the kernel is idle again
    page.wait_for_function(
        """n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                   .map(e => e.textContent.trim());
                  return p.length === n && p.every(t => /^\\[\\d+\\]:$/.test(t)); }""",
        arg=n_code_cells, timeout=timeout)
    wait_kernel_idle(page, timeout)


# ---- running code with some installed packages hidden (an install without an extra) ----------------

HIDE = """import importlib.abc, sys
class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden)", name=name)
        return None
sys.meta_path.insert(0, _Hidden())
"""


def run_without(hidden, code, cwd=None, timeout=600):
    """Run `code` in a fresh Python in which the top-level packages `hidden` cannot be imported."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", HIDE.format(hidden=set(hidden)) + code], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def mlcourse_without(hidden, *args, cwd=None, timeout=600):
    """`mlcourse ARGS` (as `python -m mlcourse` would run it) with the packages `hidden` not importable."""
    return run_without(hidden, f"from mlcourse.cli import main\nsys.exit(main({list(args)!r}))", cwd, timeout)
