"""Podman for the container tests: can it run here, the base image, a build context.

This machine has no image registry: the base image is made from Debian's packages
(deploy/containers/make-base-image.sh: mmdebstrap + podman import). Its kernel
refuses crun's cgroup set-up (hybrid cgroups) and raising RLIMIT_NPROC, so podman
runs with ``--runtime runc`` and explicit ulimits (docs/deploy.md says what was
tried).
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/federator-base:bookworm"
PODMAN = ["podman", "--runtime", "runc"]
#: Within this machine's limits (the defaults would raise them: EPERM).
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
#: The container's Python is Debian's 3.11.2: redis needs async-timeout below 3.11.3,
#: which a wheelhouse resolved on a newer Python leaves out.
WHEELHOUSE_EXTRA = ("async-timeout>=4.0.3", "setuptools>=77", "hatchling>=1.27")
NODE_PACKAGES = ("govuk-frontend", "accessible-autocomplete")


def podman(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def why_podman_cannot_run() -> str | None:
    """None when podman can run a container here, else the reason in words."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc mmdebstrap)"
    if shutil.which("runc") is None:
        return "runc is not installed (crun cannot set up this kernel's hybrid cgroups)"
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        if shutil.which("mmdebstrap") is None:
            return f"no {BASE_IMAGE} and no mmdebstrap to make it"
        made = subprocess.run([str(REPO / "deploy/containers/make-base-image.sh"), BASE_IMAGE],
                              capture_output=True, text=True, timeout=900, check=False)
        if made.returncode != 0:
            return f"could not make {BASE_IMAGE}: {made.stderr[-500:]}"
    probe = podman("run", "--rm", *ULIMITS, BASE_IMAGE, "true", check=False, timeout=120)
    if probe.returncode != 0:
        return f"podman cannot run a container here: {probe.stderr.strip()[-300:]}"
    return None


def ignored_by_build(path: str, patterns: list[str]) -> bool:
    """What .dockerignore leaves out of the context (its patterns, as podman reads
    them: a pattern matches the path or any folder above it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(prefix, pattern)
               for pattern in patterns for prefix in prefixes)


def tracked_files() -> list[str]:
    """The repository's files (tracked and new, not ignored by git) that podman would
    send as the build context."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    patterns = [line.strip() for line in
                (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    return [f for f in listed if f and not f.startswith("node_modules")
            and (REPO / f).is_file() and not ignored_by_build(f, patterns)]


def build_context(directory: Path) -> Path:
    """The checkout as a build context: the repository's files (tracked and new, not
    ignored) and node_modules' served packages (copied, not symlinked)."""
    context = directory / "context"
    for name in tracked_files():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    for package in NODE_PACKAGES:
        shutil.copytree(REPO / "node_modules" / package, context / "node_modules" / package,
                        symlinks=False)
    return context


def add_wheelhouse(context: Path) -> None:
    """Every wheel the images install, so that they build without a package index."""
    wheels = context / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
                    str(REPO), str(REPO / "packaging" / "federator-adapter"),
                    *WHEELHOUSE_EXTRA], check=True, capture_output=True, timeout=900)
    for own in (*wheels.glob("federator-*.whl"), *wheels.glob("federator_adapter-*.whl")):
        own.unlink()  # built in the image from the context, not from here


def context_digest(context: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_image(context: Path, containerfile: str, tag: str, wheel_dir: str) -> None:
    podman("build", *ULIMITS, "--format", "docker", "--file",
           str(context / "deploy" / "containers" / containerfile),
           "--build-arg", f"BASE={BASE_IMAGE}",
           "--build-arg", f"PIP_OPTIONS=--no-index --find-links={wheel_dir}",
           "--tag", tag, str(context), timeout=1800)


def project_images(work: Path) -> dict[str, str]:
    """The broker's and the kit's images of this checkout, tagged by a digest of the
    build context: built when missing, older test images removed (~600 MB a pair)."""
    context = build_context(work)
    digest = context_digest(context)
    tags = {"broker": f"localhost/federator-broker:test-{digest}",
            "adapter": f"localhost/federator-adapter:test-{digest}"}
    missing = [k for k, tag in tags.items()
               if podman("image", "exists", tag, check=False).returncode != 0]
    if missing:
        add_wheelhouse(context)
        started = time.monotonic()
        if "broker" in missing:
            build_image(context, "Containerfile.broker", tags["broker"], "/app/wheels")
        if "adapter" in missing:
            build_image(context, "Containerfile.adapter", tags["adapter"], "/src/wheels")
        print(f"images built in {time.monotonic() - started:.0f} s")
    shutil.rmtree(context)
    _remove_older_test_images(set(tags.values()))
    return tags


def _remove_older_test_images(keep: set[str]) -> None:
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout
    old = [ref for ref in listed.split()
           if ref.startswith(("localhost/federator-broker:test-",
                              "localhost/federator-adapter:test-")) and ref not in keep]
    if old:
        podman("rmi", "--force", *old, check=False)
    podman("image", "prune", "--force", check=False)


STANDINS = REPO / "tests" / "support" / "standins"


def standin_images() -> dict[str, str]:
    """PostgreSQL and Redis images from Debian's packages, standing in for the official
    images compose.yaml names (no registry here); tagged by a digest of their files."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(STANDINS.iterdir())))
    tag = digest.hexdigest()[:12]
    images = {"postgres": f"localhost/federator-standin-postgres:{tag}",
              "redis": f"localhost/federator-standin-redis:{tag}"}
    for name, image in images.items():
        if podman("image", "exists", image, check=False).returncode != 0:
            podman("build", *ULIMITS, "--file", str(STANDINS / f"Containerfile.{name}"),
                   "--build-arg", f"BASE={BASE_IMAGE}", "--tag", image, str(STANDINS),
                   timeout=900)
    return images
