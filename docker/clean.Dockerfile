# The review tool: `recyclops clean`, a web page on port 8080 (no TensorFlow).
#
#   docker build -f docker/clean.Dockerfile -t recyclops-clean .
#   docker run -p 127.0.0.1:8080:8080 -e RECYCLOPS_CLEAN_TOKEN=… -e RECYCLOPS_STORE__URL=s3://… recyclops-clean
#
# Inside the container it binds 0.0.0.0 (the port is published on 127.0.0.1 only), and
# bound publicly the review tool requires its token (RECYCLOPS_CLEAN_TOKEN).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS deps
WORKDIR /src
COPY docker/pip-install.sh docker/requirements.py docker/constraints.txt docker/
COPY pyproject.toml setup.py ./
RUN --mount=type=secret,id=pip_cert --mount=type=secret,id=pip_conf \
    python3 -m venv /opt/recyclops \
    && python3 docker/requirements.py pyproject.toml clean >/tmp/requirements.txt \
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
    RECYCLOPS_CLEAN__HOST=0.0.0.0 \
    RECYCLOPS_CLEAN__PORT=8080
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin recyclops
COPY --from=deps /opt/recyclops /opt/recyclops
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    /opt/recyclops/bin/pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && /opt/recyclops/bin/recyclops --version
COPY docker/healthcheck.py /usr/local/lib/recyclops-healthcheck.py
USER 10001:10001
WORKDIR /home/recyclops
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "/usr/local/lib/recyclops-healthcheck.py"]
ENTRYPOINT ["recyclops"]
CMD ["clean"]
