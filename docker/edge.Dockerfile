# Optional: the edge daemon in a container (the Pi's main path is the systemd install).
# Used by compose.yaml's simulated edge (a folder-replay camera); builds for arm64 too:
#   docker buildx build --platform linux/arm64 -f docker/edge.Dockerfile -t recyclops-edge .
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS deps
WORKDIR /src
COPY docker/pip-install.sh docker/requirements.py docker/constraints.txt docker/
COPY pyproject.toml setup.py ./
RUN --mount=type=secret,id=pip_cert --mount=type=secret,id=pip_conf \
    python3 -m venv /opt/recyclops \
    && python3 docker/requirements.py pyproject.toml edge --without=evdev >/tmp/requirements.txt \
    && docker/pip-install.sh -r /tmp/requirements.txt setuptools wheel

# The package itself as a wheel: a code change rebuilds this small layer, not the venv.
FROM deps AS wheel
COPY README.m[d] LICENS[E] ./
COPY shared shared
COPY app app
COPY console console
COPY cloud cloud
COPY edge edge
# No training here: the ImageNet weights (9 MB, cloud/pretrained/) stay out of this wheel.
RUN rm -rf cloud/pretrained \
    && /opt/recyclops/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels .

FROM ${BASE}
ENV PATH=/opt/recyclops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GPIOZERO_PIN_FACTORY=mock
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin recyclops \
    && mkdir -p /var/lib/recyclops /replay \
    && chown recyclops:recyclops /var/lib/recyclops
COPY --from=deps /opt/recyclops /opt/recyclops
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    /opt/recyclops/bin/pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && /opt/recyclops/bin/recyclops --version
USER 10001:10001
WORKDIR /var/lib/recyclops
VOLUME ["/var/lib/recyclops"]
ENTRYPOINT ["recyclops"]
CMD ["edge", "run"]
