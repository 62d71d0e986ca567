"""The calculator as a run tool: a ``function`` call named ``calculator`` whose output we fill in."""

from __future__ import annotations

import json
from typing import Any

from agent.tools.base import ToolContext, ToolOutput, function_schema
from agent.tools.calculator import Calculator


class CalculatorTool:
    name = "calculator"
    step_type = "function"
    input_field: str | None = None

    def __init__(self, calculator: Calculator) -> None:
        self.calculator = calculator

    def schema(self) -> dict[str, Any]:
        return function_schema(
            "calculator",
            "Evaluate a math expression exactly (integers and fractions stay exact). Supports + - * / // % **, "
            "comparisons and functions such as sqrt, sin, cos, log, exp, factorial, gcd.",
            "expression",
            "The expression, e.g. '1/3 + 1/6' or 'sqrt(2)*3'",
        )

    def start_record(self, call_id: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": "calculator", "arguments": "", "output": None},
        }

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            out = "Error: the calculator takes one string argument 'expression'."
        else:
            out = await self.calculator.evaluate(expression, key=ctx.owner)
        record = {"name": "calculator", "arguments": json.dumps(arguments), "output": out}
        return ToolOutput(text=out, record=record)
