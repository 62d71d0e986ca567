"""``agent doctor``: what it checks, what it tells the user to fix, and its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.model_server import Call, HttpError, ScriptedModel, ToolCalls

AGENT_SCRIPT = Path(sys.executable).with_name("agent")  # the console script, beside the interpreter


def doctor(tmp_path: Path, *, script: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    command = [str(AGENT_SCRIPT), "doctor"] if script else [sys.executable, "-m", "agent", "doctor"]
    full = {**os.environ, "AGENT_DATA_DIR": str(tmp_path / "data"), "AGENT_SANDBOX_ENABLED": "false", **env}
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=120)


def lines(out: str) -> dict[str, str]:
    """check name → its status, from the report."""
    found = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in ("ok", "warn", "FAIL"):
            name = parts[1][:15].strip()
            found[name] = parts[0]
    return found


def test_all_well_exits_zero(tmp_path: Path, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": "12345 * 6789"})]))
    done = doctor(tmp_path, script=True, AGENT_MODEL_URL=model.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines(done.stdout) == {
        "data directory": "ok",
        "database": "ok",
        "model server": "ok",
        "tool calling": "ok",
        "sandbox": "warn",
    }
    assert f"{model.url} answers; models: stories260K.gguf" in done.stdout
    assert "the model called 'calculator'" in done.stdout
    assert "all essential checks passed" in done.stdout
    assert model.requests[0]["tools"][0]["function"]["name"] == "calculator"


def test_a_model_that_answers_in_text_is_a_warning(tmp_path: Path, model: ScriptedModel) -> None:
    done = doctor(tmp_path, AGENT_MODEL_URL=model.url)  # the default turn is text
    assert done.returncode == 0
    assert lines(done.stdout)["tool calling"] == "warn"
    assert "AGENT_MODEL_TOOL_MODE=prompted" in done.stdout


def test_what_to_fix_when_essentials_fail(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = doctor(
        tmp_path,
        AGENT_MODEL_URL="http://127.0.0.1:9/v1",
        AGENT_DATA_DIR=str(blocker / "data"),
        AGENT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/agent.db",
    )
    assert done.returncode == 1
    found = lines(done.stdout)
    assert (found["data directory"], found["database"], found["model server"]) == ("FAIL", "FAIL", "FAIL")
    assert "fix: set AGENT_DATA_DIR to a directory this user can write" in done.stdout
    assert "fix: check AGENT_DATABASE_URL" in done.stdout
    assert "http://127.0.0.1:9/v1 is unreachable" in done.stdout
    assert "fix: start a model server" in done.stdout and "AGENT_MODEL_FILE" in done.stdout
    assert "3 essential check(s) failed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_server_that_rejects_tools_fails(tmp_path: Path, model: ScriptedModel) -> None:
    model.script(HttpError(500, "tools param requires --jinja flag"))
    done = doctor(tmp_path, AGENT_MODEL_URL=model.url)
    assert done.returncode == 1
    assert lines(done.stdout)["tool calling"] == "FAIL"
    assert "tools param requires --jinja flag" in done.stdout
    assert "fix: llama-server needs --jinja" in done.stdout


def test_docker_and_the_sandbox_image_are_checked(tmp_path: Path, model: ScriptedModel) -> None:
    done = doctor(
        tmp_path,
        AGENT_MODEL_URL=model.url,
        AGENT_SANDBOX_ENABLED="true",
        AGENT_SANDBOX_IMAGE="agent-sandbox:absent",
    )
    assert done.returncode == 0  # code_interpreter is optional: a warning, not a failure
    found = lines(done.stdout)
    if found["docker engine"] == "ok":
        assert found["sandbox image"] == "warn"
        assert "agent-sandbox:absent is missing" in done.stdout and "build-sandbox-image.sh" in done.stdout
    else:
        assert os.environ.get("CI") != "true", done.stdout
        assert "fix: start a Docker engine" in done.stdout


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    done = doctor(tmp_path, AGENT_MODEL_FILE=str(tmp_path / "missing.gguf"))
    assert done.returncode == 1
    assert lines(done.stdout)["managed model"] == "FAIL"
    assert f"model file {tmp_path / 'missing.gguf'} is missing or unreadable" in done.stdout
