# The service. code_interpreter starts sandbox containers on the host's engine, so it needs the Docker
# socket and the engine's volume directory (see README, "Run the service in a container"):
#   docker build -t agent .
#   docker run -d -p 127.0.0.1:8000:8000 --read-only --tmpfs /tmp --cap-drop ALL \
#     --security-opt no-new-privileges --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --mount type=bind,source=/var/lib/docker/volumes,target=/var/lib/docker/volumes,bind-propagation=rslave \
#     -v agent-data:/data -e AGENT_MODEL_URL=http://host.docker.internal:8080/v1 \
#     --add-host host.docker.internal:host-gateway agent
# Without a registry, .ci/build-service-image.sh builds BASE from Debian packages first.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first (a layer that survives source edits): the project with empty packages.
COPY pyproject.toml ./
RUN python3 -m venv /opt/agent \
    && mkdir agent sandbox && touch README.md agent/__init__.py sandbox/__init__.py \
    && /opt/agent/bin/pip install -q '.[postgres]' && /opt/agent/bin/pip uninstall -q -y agent \
    && rm -rf README.md agent sandbox build ./*.egg-info
COPY README.md ./
COPY agent ./agent
COPY sandbox ./sandbox
RUN /opt/agent/bin/pip install -q --no-deps . \
    && /opt/agent/bin/pip uninstall -q -y pip \
    && rm -rf /src/* \
    && mkdir -p /data && chown 65534:65534 /data

# The sandbox user (65534): the service reads and writes the sandboxes' 0700 tmpfs volumes as their owner.
# Give it the Docker socket's group at run time (--group-add); nothing else in the image is writable.
USER 65534:65534
WORKDIR /data
ENV PATH=/opt/agent/bin:$PATH HOME=/tmp AGENT_HOST=0.0.0.0 AGENT_PORT=8000 AGENT_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/opt/agent/bin/python", "-c", \
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('AGENT_PORT', '8000'), timeout=4)"]
CMD ["/opt/agent/bin/python", "-m", "agent", "serve"]
