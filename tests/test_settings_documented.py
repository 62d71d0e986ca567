"""Every setting is in the README's settings table, and every variable there is a setting."""

from __future__ import annotations

import re
from pathlib import Path

from agent.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    table = text[text.index("## Settings") :]
    table = table[: table.index("\n## ")]
    documented = set(re.findall(r"`AGENT_([A-Z0-9_]+)`", table))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from the README table"
    assert documented - settings == set(), "README variables that are no setting"
