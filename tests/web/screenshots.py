"""Make the README's screenshots of the playground: ``python -m tests.web.screenshots [OUT_DIR]``.

It starts the scripted model and the service (with the Docker sandbox when there is one), fills them
through the API, drives the page in headless Chromium and writes PNGs to ``docs/`` (or OUT_DIR).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.conftest import LiveServer, LoopThread, make_settings
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls
from tests.web.browser import LAPTOP, PHONE, launch, open_playground

CSV = "month,amount\njan,12\nfeb,18\nmar,30\napr,26\n"
CODE = (
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('/mnt/data/sales.csv')\nprint('total', df['amount'].sum())\n"
    "df.plot(x='month', y='amount', kind='bar', legend=False, title='Sales by month')\n"
    "df.describe().to_csv('/mnt/data/summary.csv')"
)


def docker_ready() -> bool:
    try:
        import docker

        client = docker.from_env()
        client.images.get("agent-sandbox:latest")
        client.close()
        return True
    except Exception:
        return False


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sandbox = docker_ready()
    loop = LoopThread()
    with ScriptedModel() as model, tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp), model_url=model.url, sandbox_enabled=sandbox, sandbox_pool=1)
        server = LiveServer(loop, settings)
        loop.run(server.start())
        try:
            shoot(server, model, out, sandbox)
        finally:
            loop.run(server.stop(), timeout=120)
            loop.stop()


def shoot(server: LiveServer, model: ScriptedModel, out: Path, sandbox: bool) -> None:
    sdk = server.client()
    csv = sdk.files.create(file=("sales.csv", io.BytesIO(CSV.encode())), purpose="assistants")
    sdk.files.create(
        file=("handbook.md", io.BytesIO(b"# Handbook\nRefunds take 14 days.\n")), purpose="assistants"
    )
    tools = [{"type": "code_interpreter"}] if sandbox else []
    sdk.beta.assistants.create(
        model=model.model_name,
        name="Data analyst",
        instructions="You analyse the user's data with Python and answer briefly.",
        tools=[*tools, {"type": "calculator"}],  # type: ignore[list-item]
        tool_resources={"code_interpreter": {"file_ids": [csv.id]}} if sandbox else None,  # type: ignore[arg-type]
    )
    if sandbox:
        model.script(
            ToolCalls([Call("code_interpreter", {"code": CODE})]),
            Text(
                "Total sales over the four months: **86**. March was the best month (30).\n\n"
                "The summary statistics are in [summary.csv](sandbox:/mnt/data/summary.csv)."
            ),
        )
    else:
        model.script(Text("The sandbox is not available on this machine."))
    model.script(
        ToolCalls([Call("calculator", {"expression": "86 / 4"})]),
        Text("That is an average of 21.5 per month."),
    )
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={**LAPTOP, "height": 1080})
        page = context.new_page()
        open_playground(page, server.url)
        composer = page.get_by_label("Message")
        composer.fill("What were the total sales? Draw a chart.")
        composer.press("Enter")
        page.locator("[data-testid=run-status]", has_text="completed").first.wait_for()
        if sandbox:
            page.locator("img.chart-img[data-loaded]").wait_for()
        composer.fill("And the monthly average?")
        composer.press("Enter")
        page.locator("[data-testid=run-status]", has_text="completed").nth(1).wait_for()
        page.locator(".run-foot").first.scroll_into_view_if_needed()
        page.locator(".run-foot").first.evaluate("el => el.scrollIntoView({block: 'end'})")
        page.locator("#message").blur()
        page.screenshot(path=str(out / "playground.png"))
        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        open_playground(phone, server.url)
        phone.get_by_role("tab", name="Chat").click()
        phone.locator("#thread-select").select_option(index=1)
        phone.locator(".run").first.wait_for()
        if sandbox:
            phone.locator("img.chart-img[data-loaded]").wait_for()
        phone.locator(".log").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        phone.locator("#message").blur()
        phone.screenshot(path=str(out / "playground-phone.png"))
        phone.get_by_role("tab", name="Assistant").click()
        phone.screenshot(path=str(out / "playground-phone-assistant.png"))
        browser.close()
    print("wrote", ", ".join(sorted(p.name for p in out.glob("playground*.png"))))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "docs")
