"""The playground with the real Docker sandbox: code written live, its logs, a chart drawn inline, a file."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, Gate, ScriptedModel, Text, ToolCalls
from tests.web.browser import open_playground
from tests.web.conftest import KEY

pytestmark = pytest.mark.docker

CSV = b"month,amount\njan,10\nfeb,20\nmar,30\n"
CODE = (
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('/mnt/data/sales.csv')\nprint('total', df['amount'].sum())\n"
    "df.plot(x='month', y='amount')\ndf.describe().to_csv('/mnt/data/summary.csv')"
)


def test_code_interpreter_chart_and_file_from_an_attached_upload(
    page: Page, web_ci_server: LiveServer, model: ScriptedModel
) -> None:
    open_playground(page, web_ci_server.url, KEY)
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_label("Name", exact=True).fill("Analyst")
    page.get_by_label("code_interpreter").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#assistant-saved")).to_have_text("Saved.")

    page.locator("#attach").set_input_files([{"name": "sales.csv", "mimeType": "text/csv", "buffer": CSV}])
    expect(page.locator("#attachments")).to_contain_text("sales.csv")
    arguments = json.dumps({"code": CODE})
    cut1, cut2 = arguments.index("df = "), arguments.index("df.plot")
    pieces = [arguments[:cut1], arguments[cut1:cut2], arguments[cut2:]]
    held = Gate()
    model.script(
        ToolCalls([Call("code_interpreter", pieces=pieces)], pause=held, pause_after=2),
        Text("Total is 60. Summary: [summary.csv](sandbox:/mnt/data/summary.csv)"),
    )
    page.get_by_label("Message").fill("Analyse my sales")
    page.get_by_role("button", name="Send").click()

    expect(page.locator(".msg.user").last).to_contain_text("sales.csv")
    step = page.locator(".tool.code")
    # the code appears while the model is still writing it
    expect(step.locator("pre.code")).to_contain_text("print('total'")
    expect(step.locator("pre.code")).not_to_contain_text("df.plot")
    expect(step.locator(".pill")).to_have_text("running")
    held.set()
    expect(step.locator("pre.code")).to_have_text(CODE)
    expect(step.locator("pre.logs")).to_contain_text("total 60")
    expect(page.locator("[data-testid=run-status]").last).to_have_text("completed")
    chart = page.locator(".msg.assistant img.chart-img")
    expect(chart).to_have_count(1)
    expect(chart).to_have_attribute("data-loaded", "true")  # its load event fired
    assert chart.evaluate("img => img.naturalWidth") > 0
    assert chart.evaluate("img => img.src").startswith("blob:")  # fetched with the key, not by URL
    assert chart.bounding_box()["width"] > 100  # type: ignore[index]
    assert "/mnt/data/sales.csv" in model.requests[0]["messages"][0]["content"]

    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".text")).to_have_text("Total is 60. Summary: ⬇ summary.csv")
    with page.expect_download() as info:
        answer.get_by_role("button", name="summary.csv").click()
    download = info.value
    assert download.suggested_filename == "summary.csv"
    summary = download.path().read_text()
    assert "mean" in summary and "amount" in summary
