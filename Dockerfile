# gpunet training image.
#
#   docker build -t gpunet .
#   docker run --rm --gpus all -v gpunet-data:/data gpunet
#   docker run --rm --gpus all -v gpunet-data:/data gpunet --epochs 3 --device gpu
#
# The first run is `gpunet-train --device gpu` (ENTRYPOINT + CMD below).
#
# Arguments after the image name replace CMD and are passed to `gpunet-train`, so a run that
# overrides CMD must repeat `--device gpu` (or say `--device cpu` to run without a GPU).
#
# A CUDA *runtime* image is enough: cupy-cuda12x[ctk] installs NVRTC and the other CUDA libraries
# it needs from the package index, so the much larger -devel image (nvcc, headers) buys nothing.
# The tag is pinned (never `latest`) so rebuilds are reproducible. The image's NVIDIA_REQUIRE_CUDA
# asks the host driver for CUDA 12.6 support; for an older driver, pick an older 12.x tag.
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

# OCI labels. The project has no public URL yet, so the source is given at build time
# (`--build-arg SOURCE_URL=https://...`) rather than guessed here. The version must match
# pyproject.toml (tests/test_dockerfile.py checks it).
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="gpunet" \
      org.opencontainers.image.description="Neural networks with explicit backpropagation (CuPy/NumPy)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE_URL}"

# Python comes from Ubuntu (3.12 on 24.04); the venv keeps pip away from the system Python
# (PEP 668 "externally managed" on Ubuntu 24.04). No recommends and no apt lists: they would
# only make the image bigger. Package versions are not pinned on purpose: Ubuntu replaces old
# point releases in its archive, so pinned versions break the build after a security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv "$VIRTUAL_ENV"

# Only what `pip install` needs: pyproject.toml, README.md (its `readme`) and the package with its
# bundled data. Tests, docs and scripts stay out of the image (see .dockerignore too), so editing
# them does not invalidate this layer. The package is installed (not editable) into the venv,
# owned by root: the unprivileged user can run it but not modify it.
WORKDIR /opt/gpunet-src
COPY pyproject.toml README.md ./
COPY gpunet/ ./gpunet/
# `.[gpu]` is this project, not a package from the index, so "pin versions in pip" (DL3013)
# does not apply; its dependencies are bounded in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[gpu]"

# Run as an unprivileged user with uid 1000 (the usual first user on a Linux host, so files
# written to bind mounts come out owned by the host user). Ubuntu 24.04 images already ship a
# user `ubuntu` with uid 1000, which is removed first so the uid is free.
RUN if id -u ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
    && groupadd --gid 1000 gpunet \
    && useradd --create-home --uid 1000 --gid gpunet --shell /bin/bash gpunet \
    && mkdir -p /data /workspace \
    && chown gpunet:gpunet /data /workspace

# Data sets are cached under $GPUNET_DATA/<name>/ (instead of ~/.cache/gpunet/<name>/), and
# /data is the one volume: mount a named volume or a host directory there so downloads survive
# the container and are shared between runs. (A new named volume takes the gpunet ownership
# set above; a host directory needs to be writable by uid 1000.)
ENV GPUNET_DATA=/data
VOLUME ["/data"]

# A writable working directory, owned by the user, for anything a run writes relative to it
# (mount a host directory here to keep such outputs).
WORKDIR /workspace
# Numeric uid:gid (= gpunet:gpunet): Kubernetes' runAsNonRoot can only verify a numeric user,
# and the host resolves no names from the image's /etc/passwd.
USER 1000:1000

ENTRYPOINT ["gpunet-train"]
CMD ["--device", "gpu"]
