# The cloud job image: `recyclops setup | search | train | publish`.
#
#   CPU:   docker build -f docker/cloud.Dockerfile -t recyclops-cloud:cpu .
#   GPU:   docker build -f docker/cloud.Dockerfile --build-arg TF_VARIANT=gpu -t recyclops-cloud:gpu .
#
# TF_VARIANT=gpu installs tensorflow[and-cuda]: pip brings CUDA and cuDNN, so the host needs
# only the NVIDIA driver and the NVIDIA container toolkit (docs/ec2.md). BASE is any Debian
# or Ubuntu image with python3 >= 3.11 and python3-venv (no registry here: docker/base-image.sh).
# The MobileNetV2 ImageNet weights ship in the package (cloud/pretrained/): the build checks
# them by content, with no network (a file in docker/weights/ replaces them; WEIGHTS=none
# skips the check), so jobs never download at run time.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS deps
ARG TF_VARIANT=cpu
WORKDIR /src
COPY docker/pip-install.sh docker/requirements.py docker/constraints.txt docker/
COPY pyproject.toml setup.py ./
# Dependencies first, in their own layer: a code change does not reinstall TensorFlow.
RUN --mount=type=secret,id=pip_cert --mount=type=secret,id=pip_conf \
    python3 -m venv /opt/recyclops \
    && python3 docker/requirements.py pyproject.toml cloud "--tf=${TF_VARIANT}" >/tmp/requirements.txt \
    && docker/pip-install.sh -r /tmp/requirements.txt setuptools wheel

# The package itself as a wheel: a code change rebuilds this small layer, not the venv.
FROM deps AS wheel
COPY README.m[d] LICENS[E] ./
COPY shared shared
COPY app app
COPY console console
COPY cloud cloud
COPY edge edge
RUN /opt/recyclops/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels .

FROM ${BASE}
ARG WEIGHTS=imagenet
ENV PATH=/opt/recyclops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    MPLCONFIGDIR=/tmp/matplotlib
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin recyclops \
    && mkdir -p /data /runs /models \
    && chown recyclops:recyclops /data /runs /models
COPY --from=deps /opt/recyclops /opt/recyclops
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    /opt/recyclops/bin/pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && /opt/recyclops/bin/recyclops --version
COPY docker/job.sh /opt/recyclops/bin/recyclops-job
USER 10001:10001
WORKDIR /home/recyclops
# A bind mount, not a COPY: an optional docker/weights/ file lands once, in the Keras cache.
RUN --mount=type=bind,source=docker,target=/tmp/docker \
    WEIGHTS="${WEIGHTS}" python3 /tmp/docker/fetch_weights.py /tmp/docker/weights /home/recyclops/.keras
VOLUME ["/data", "/runs", "/models"]
ENTRYPOINT ["recyclops-job"]
CMD ["--help"]
