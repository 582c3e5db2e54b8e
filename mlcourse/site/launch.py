"""Launch links of a course page (download, Binder, Colab) and the notebook cell that installs the package.

Every URL is built from one value, the repository URL: ``[project.urls] Repository`` in pyproject.toml
(read from the installed package's metadata), overridden by ``mlcourse site --repository-url URL``.
"""
from __future__ import annotations

import urllib.parse

FALLBACK_REPOSITORY_URL = "https://github.com/mlcourse/mlcourse"
BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
INSTALL_MARK = "# mlcourse: install the course package when it is missing"


def repository_url():
    """The repository URL from the package metadata (pyproject's [project.urls] Repository)."""
    from importlib import metadata
    try:
        urls = metadata.metadata("mlcourse").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository" and url.strip():
            return url.strip()
    return FALLBACK_REPOSITORY_URL


def _github(repo_url):
    """(owner, name) of a https://github.com/OWNER/NAME URL, else None."""
    parts = urllib.parse.urlsplit(repo_url)
    path = [p for p in parts.path.split("/") if p]
    if parts.netloc.lower() in ("github.com", "www.github.com") and len(path) == 2:
        return path[0], path[1].removesuffix(".git")
    return None


def check_repository_url(repo_url):
    parts = urllib.parse.urlsplit(repo_url or "")
    if parts.scheme not in ("https", "http") or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"the repository URL must look like https://github.com/OWNER/NAME, got {repo_url!r}.")
    return repo_url.rstrip("/")


def launch_urls(repo_url, path, branch="main"):
    """Binder and Colab URLs that open `path` (e.g. "notebooks/05_maml_sinusoid.ipynb") of the repository.

    Colab opens notebooks from GitHub only: for another host its entry is None.
    """
    repo_url = check_repository_url(repo_url)
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"path must be relative to the repository root, got {path!r}.")
    quoted_path = urllib.parse.quote(path)
    gh = _github(repo_url)
    if gh:
        owner, name = gh
        binder = f"{BINDER}/v2/gh/{owner}/{name}/{urllib.parse.quote(branch, safe='')}?labpath={quoted_path}"
        colab = f"{COLAB}/github/{owner}/{name}/blob/{urllib.parse.quote(branch, safe='')}/{quoted_path}"
    else:
        binder = (f"{BINDER}/v2/git/{urllib.parse.quote(repo_url, safe='')}/"
                  f"{urllib.parse.quote(branch, safe='')}?labpath={quoted_path}")
        colab = None
    return {"binder": binder, "colab": colab}


def install_requirement(repo_url):
    """What pip installs when the package is missing: the notebooks' and the exercises' extras, from the repository."""
    return f"mlcourse[course,grading] @ git+{check_repository_url(repo_url)}"


def install_cell_source(requirement):
    """Source of a notebook's first code cell: installs `requirement` when mlcourse is missing, silent otherwise.

    It cannot call into mlcourse (that is what may be missing), so it is plain Python; pip honours
    its usual environment (PIP_INDEX_URL, PIP_FIND_LINKS, ...).
    """
    if not requirement or "\n" in requirement:
        raise ValueError(f"requirement must be one pip requirement on one line, got {requirement!r}.")
    return (f"{INSTALL_MARK} (Colab, Binder, a fresh kernel); silent when it is there.\n"
            "import importlib.util, subprocess, sys\n"
            "if importlib.util.find_spec(\"mlcourse\") is None:\n"
            f"    print(\"Installing mlcourse (once per environment) ...\", flush=True)\n"
            f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", {requirement!r}], check=True)\n"
            "    importlib.invalidate_caches()")
