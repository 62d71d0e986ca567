# The service itself. code_interpreter starts sandbox containers on the host's engine, so run it with
# the Docker socket mounted:
#   docker build -t agent . && docker run -p 8000:8000 -v /var/run/docker.sock:/var/run/docker.sock \
#     -e AGENT_MODEL_URL=http://host.docker.internal:8080/v1 -v agent-data:/data agent
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY sandbox ./sandbox
RUN pip install --no-cache-dir .
ENV AGENT_HOST=0.0.0.0 AGENT_PORT=8000 AGENT_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["python", "-m", "agent", "serve"]
