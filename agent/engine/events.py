"""The seam between the run loop and the APIs: what the loop reads, what it emits, how a leg ends.

The loop reads a `RunSpec` and a `Transcript` (the explicit model transcript: chat messages, each tool
result as the tool message the model reads) from a `Sink`, and emits API-neutral events to it. The
Assistants adapter (`engine/records.py`) renders them as messages, run steps and ``thread.*`` events;
the Responses adapter (`engine/responding.py`) as output items and ``response.*`` events.

Errors, by whose fault they are::

    RunError                    ends the run ``failed`` with ``code`` and ``message``
    ├── ModelFault              the model misbehaved (invalid tool calls again and again, no end)
    ├── ToolFault               a server-side tool's infrastructure failed beyond what the model can read
    ├── ClientFault             the request cannot be served as given (e.g. input over the context)
    └── OurFault                a bug or broken invariant of ours
    agent.llm.ModelError        the model *server* failed or could not be reached (infrastructure)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.llm import Usage
from agent.tools import ServerTool, ToolContext, ToolOutput


# --- what the loop reads ----------------------------------------------------------------------------
@dataclass
class RunSpec:
    """What one run (or response) asks of the model, in API-neutral terms."""

    model: str
    instructions: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    """Assistants-shaped tools: ``{"type": "function", "function": {…}}`` or ``{"type": "<server tool>"}``."""
    tool_choice: str | dict[str, Any] = "auto"
    """``"auto" | "none" | "required"`` or ``{"type": "function", "function": {"name": …}}``."""
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    """Across the whole run (all legs): reaching it ends the run ``incomplete``."""
    response_format: dict[str, Any] | None = None
    """Chat-completions ``response_format`` (``json_object`` / ``json_schema``), None for text."""
    truncation: dict[str, Any] | None = None
    """``{"type": "auto"}``, ``{"type": "last_messages", "last_messages": n}`` or ``{"type": "disabled"}``."""
    usage: Usage = field(default_factory=Usage)
    """Tokens used by earlier legs of the same run."""
    max_tool_calls: int | None = None
    """Cap on server-side tool calls; further calls are answered without running the tool."""


@dataclass
class Transcript:
    """The explicit model transcript of one turn: chat messages plus facts the tools need."""

    messages: list[dict[str, Any]]
    note: str = ""
    """Facts about the tools appended to the system message (e.g. files in /mnt/data)."""
    called_before: bool = False
    """Whether earlier legs already called a tool (a forced tool_choice is then spent)."""
    attached: list[str] = field(default_factory=list)
    """File ids attached to the transcript's messages for code_interpreter."""


# --- what the loop emits ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    status: str
    """``in_progress`` when the leg starts executing."""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class MessageDone:
    """The assistant message being written is finished (more may follow after tool calls)."""


@dataclass(frozen=True)
class ToolCallStarted:
    index: int
    call_id: str
    name: str
    tool: ServerTool | None
    """The server-side tool, None for a client function (or a name the model made up)."""


@dataclass(frozen=True)
class ToolCallArgumentsDelta:
    index: int
    delta: str
    """A fragment of the arguments JSON text, as the model writes it."""
    input_piece: str = ""
    """For server tools with an ``input_field`` (code): the decoded piece of that field."""


@dataclass(frozen=True)
class ToolCallOutput:
    index: int
    call_id: str
    name: str
    arguments: str
    """The authoritative (possibly repaired) arguments JSON text."""
    tool: ServerTool | None
    output: ToolOutput | None
    """What the server-side tool produced; ``output.text`` is what the model reads next. None for a
    client function call (it waits for the client)."""
    error: str | None = None
    """A malformed call or an unknown name: this text is the tool result the model reads."""


@dataclass(frozen=True)
class TurnUsage:
    usage: Usage


Event = (
    Status | TextDelta | MessageDone | ToolCallStarted | ToolCallArgumentsDelta | ToolCallOutput | TurnUsage
)


# --- how a turn or a leg ends -----------------------------------------------------------------------
@dataclass(frozen=True)
class Final:
    """The model answered in text: the run is completed."""

    usage: Usage | None = None


@dataclass(frozen=True)
class RunAgain:
    """Server-side tools ran: their outputs are in the transcript; ask the model again."""

    usage: Usage | None = None


@dataclass(frozen=True)
class RequiresAction:
    """The model called client functions: the leg ends until the client sends their outputs."""

    calls: list[dict[str, Any]]
    """``[{"id", "type": "function", "function": {"name", "arguments"}}]``"""
    usage: Usage | None = None


@dataclass(frozen=True)
class Incomplete:
    """A token limit was reached."""

    reason: str
    """``max_completion_tokens`` / ``max_prompt_tokens`` (Assistants names; adapters translate)."""


Outcome = Final | RunAgain | RequiresAction | Incomplete


# --- errors by whose fault ----------------------------------------------------------------------------
class RunError(Exception):
    code = "server_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ModelFault(RunError):
    """The model misbehaved: invalid tool calls again and again, or no answer within the turn cap."""


class ToolFault(RunError):
    """A server-side tool's infrastructure failed in a way the model cannot be told about."""


class ClientFault(RunError):
    """The request cannot be served as given."""

    code = "invalid_prompt"


class OurFault(RunError):
    """A bug of ours: a broken invariant."""


class Sink(Protocol):
    """One API's rendering of a run: reads the transcript, receives the loop's events and outcome."""

    spec: RunSpec

    async def transcript(self) -> Transcript: ...

    async def emit(self, event: Event) -> None: ...

    async def end(self, outcome: Outcome) -> None:
        """Persist and publish the outcome (``RunAgain`` ends a turn, the others end the leg)."""
        ...


class Leg(Sink, Protocol):
    """What the executor drives: a sink that also knows how to start, stop early and recover."""

    run: dict[str, Any]
    owner: str
    thread_id: str

    async def tool_context(self) -> ToolContext: ...

    async def stop_as(self, outcome: str, error: dict[str, str] | None = None) -> None:
        """End early: ``cancelled``, ``expired`` or ``failed`` (with ``error``)."""
        ...

    async def discard_partial(self) -> None:
        """After a crash, drop what the interrupted turn left half-written."""
        ...
