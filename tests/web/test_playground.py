"""The playground through a real browser: assistants, streaming chat, tools, cancel, errors, key, layout."""

from __future__ import annotations

import re

import httpx
import openai
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, Gate, HttpError, ScriptedModel, Text, ToolCalls
from tests.web.browser import PHONE, open_playground
from tests.web.conftest import KEY, PageErrors

STATUS = "[data-testid=run-status]"


def sdk(server: LiveServer) -> openai.OpenAI:
    return server.client(KEY)


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_page_is_public_and_self_contained(web_server: LiveServer) -> None:
    with httpx.Client(base_url=web_server.url) as http:
        landing = http.get("/")
        assert landing.status_code == 200 and 'href="/playground"' in landing.text
        page = http.get("/playground")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text
        script = http.get("/playground/static/app.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert http.get("/playground/config.json").json() == {"auth_required": True}
        assert http.get("/v1/assistants").status_code == 401  # the data still needs the key
        for bad in (
            "/playground/static/..%2F__init__.py",
            "/playground/static/nope.js",
            "/playground/static/.x",
        ):
            assert http.get(bad).status_code == 404, bad


def test_key_is_asked_for_and_kept_in_the_tab_only(
    page: Page, web_server: LiveServer, page_errors: PageErrors
) -> None:
    page_errors.allow(401)  # the wrong key, on purpose
    page.goto(web_server.url + "/playground")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.get_by_label("Key", exact=True).fill("sk-wrong")
    page.get_by_role("button", name="Use key").click()
    expect(dialog.get_by_role("alert")).to_have_text("Incorrect API key provided.")
    page.get_by_label("Key", exact=True).fill(KEY)
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.get_by_text("API key set")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('agent.playground.key')") == KEY
    assert KEY not in str(page.evaluate("JSON.stringify(localStorage)"))
    other = page.context.new_page()  # another tab asks again
    other.goto(web_server.url + "/playground")
    expect(other.get_by_role("dialog")).to_be_visible()
    other.close()


def test_create_edit_delete_assistant(page: Page, web_server: LiveServer, model: ScriptedModel) -> None:
    open_playground(page, web_server.url, KEY)
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_label("Name", exact=True).fill("Tutor")
    expect(page.locator("#a-model option")).to_contain_text([model.model_name])  # from /v1/models
    page.get_by_label("Instructions").fill("You teach maths.")
    page.get_by_label("calculator").check()
    page.get_by_label("Functions").fill('[{"name": "get_weather", "parameters": {"type": "object"}}]')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#assistant-saved")).to_have_text("Saved.")
    made = [a for a in sdk(web_server).beta.assistants.list().data if a.name == "Tutor"]
    assert len(made) == 1 and made[0].model == model.model_name and made[0].instructions == "You teach maths."
    assert [t.type for t in made[0].tools] == ["calculator", "function"]
    expect(page.locator("#assistant-select")).to_have_value(made[0].id)

    page.get_by_label("Name", exact=True).fill("Maths tutor")
    page.get_by_label("code_interpreter").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#assistant-select").locator("option:checked")).to_have_text("Maths tutor")
    again = sdk(web_server).beta.assistants.retrieve(made[0].id)
    assert again.name == "Maths tutor" and {t.type for t in again.tools} == {
        "calculator",
        "function",
        "code_interpreter",
    }

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#assistant-select").locator(f"option[value='{made[0].id}']")).to_have_count(0)
    assert made[0].id not in [a.id for a in sdk(web_server).beta.assistants.list().data]


def make_assistant(server: LiveServer, model: ScriptedModel, **kw: object) -> str:
    return sdk(server).beta.assistants.create(model=model.model_name, **kw).id  # type: ignore[arg-type]


def test_answer_streams_in_with_calculator_usage_and_duration(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    make_assistant(web_server, model, name="Streamer", tools=[{"type": "calculator"}])
    held = Gate()
    model.script(
        ToolCalls([Call("calculator", {"expression": "1/3 + 1/6"})]),
        Text("The sum is one half, exactly.", pause=held, pause_after=2),
    )
    open_playground(page, web_server.url, KEY)
    page.locator("#assistant-select").select_option(label="Streamer")
    send(page, "What is 1/3 + 1/6?")
    expect(page.locator(".msg.user").last).to_contain_text("What is 1/3 + 1/6?")
    expect(page.locator(".calc-line")).to_have_text("1/3 + 1/6 = 1/2")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("The sum")  # the first pieces are on screen while the model is held
    expect(answer).not_to_contain_text("exactly")
    expect(page.locator(STATUS).last).to_have_text("in progress")
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
    held.set()
    expect(answer).to_contain_text("The sum is one half, exactly.")
    expect(page.locator(STATUS).last).to_have_text("completed")
    foot = page.locator(".run-foot").last
    expect(foot.locator(".usage")).to_contain_text("tokens")
    expect(foot.locator(".duration")).to_have_text(__import__("re").compile(r"^\d+(\.\d)? m?s$"))
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_function_call_waits_for_the_output_the_person_types(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    fn = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    make_assistant(web_server, model, name="Weather", tools=[{"type": "function", "function": fn}])
    model.script(ToolCalls([Call("get_weather", {"city": "Paris"})]), Text("It is 21 degrees in Paris."))
    open_playground(page, web_server.url, KEY)
    page.locator("#assistant-select").select_option(label="Weather")
    send(page, "Weather in Paris?")
    expect(page.locator(STATUS).last).to_have_text("requires action")
    expect(page.locator(".tool.function")).to_contain_text('"city": "Paris"')
    field = page.get_by_label('Output of get_weather({"city": "Paris"})')
    expect(field).to_be_focused()
    field.fill('{"temperature": 21}')
    page.get_by_role("button", name="Submit output").click()
    expect(page.locator(".msg.assistant").last).to_have_text("AssistantIt is 21 degrees in Paris.")
    expect(page.locator(STATUS).last).to_have_text("completed")
    expect(page.locator(".tool.function")).to_contain_text('{"temperature": 21}')
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msg[0]["content"] == '{"temperature": 21}'


def test_a_run_can_be_cancelled(page: Page, web_server: LiveServer, model: ScriptedModel) -> None:
    make_assistant(web_server, model, name="Slow")
    held = Gate()
    model.script(Text("I will go on and on and on", pause=held, pause_after=1))
    try:
        open_playground(page, web_server.url, KEY)
        page.locator("#assistant-select").select_option(label="Slow")
        page.get_by_label("Message").fill("Talk")
        page.get_by_label("Message").press("Enter")  # the keyboard alone: Enter sends, the button cancels
        expect(page.locator(".msg.assistant").last).to_contain_text("I")
        page.get_by_role("button", name="Cancel run").focus()
        page.keyboard.press("Enter")
        expect(page.locator(STATUS).last).to_have_text("cancelled")
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        thread = page.evaluate("JSON.parse(localStorage.getItem('agent.playground.threads'))[0].id")
        runs = sdk(web_server).beta.threads.runs.list(thread).data
        assert runs[0].status == "cancelled"
    finally:
        held.set()


def test_errors_show_the_servers_message(
    page: Page, web_server: LiveServer, model: ScriptedModel, page_errors: PageErrors
) -> None:
    page_errors.allow(400)  # the bad function name, on purpose
    make_assistant(web_server, model, name="Fragile")
    model.script(*[HttpError(500, message="the model server fell over")] * 3)  # the first try and 2 retries
    open_playground(page, web_server.url, KEY)
    page.locator("#assistant-select").select_option(label="Fragile")
    send(page, "Hello?")
    expect(page.locator(STATUS).last).to_have_text("failed")
    expect(page.locator(".run-error").last).to_contain_text("the model server fell over")
    # the thread reopened later shows the same: the run wrote no message, so it is placed by its time
    page.reload()
    page.wait_for_selector("body[data-ready='true']")  # the key is still in this tab
    page.locator("#thread-select").select_option(index=1)
    expect(page.locator(".msg.user")).to_have_text("YouHello?")
    expect(page.locator(".run-error")).to_contain_text("the model server fell over")
    expect(page.locator(STATUS)).to_have_text("failed")
    # a thread made elsewhere (by the SDK) opens by its id
    other = sdk(web_server).beta.threads.create(messages=[{"role": "user", "content": "made by the SDK"}])
    page.locator("#thread-select").select_option(label="Open a thread by id…")
    page.get_by_label("Thread id").fill(other.id)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator(".msg.user")).to_have_text("Youmade by the SDK")
    # a request the API refuses: its message is shown as the server wrote it
    page.get_by_label("Functions").fill('[{"name": "no spaces allowed"}]')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#banner")).to_contain_text("Invalid 'tools[0].function.name'")
    page.get_by_label("Functions").fill("[{not json")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#a-functions-error")).to_contain_text("Functions are not valid JSON")


def test_files_vector_store_progress_and_citations(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    open_playground(page, web_server.url, KEY)
    page.get_by_role("tab", name="Files").click()
    page.locator("#file-upload").set_input_files(
        [{"name": "policy.txt", "mimeType": "text/plain", "buffer": b"Refunds take 14 days from the return."}]
    )
    expect(page.locator("#file-list")).to_contain_text("policy.txt")
    page.get_by_role("tab", name="Vector stores").click()
    page.get_by_label("New vector store").fill("Policies")
    page.locator("#store-files").get_by_label("policy.txt").first.check()
    page.get_by_role("button", name="Create vector store").click()
    store = page.locator("[data-store]", has_text="Policies")
    expect(store).to_contain_text("1 of 1 files ready")
    expect(store.locator(".pill")).to_have_text("completed")
    store_id = store.get_attribute("data-store")

    page.get_by_role("tab", name="Assistant").click()
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_label("Name", exact=True).fill("Librarian")
    page.get_by_label("file_search").check()
    page.locator("#a-store").select_option(label="Policies")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#assistant-saved")).to_have_text("Saved.")
    made = [a for a in sdk(web_server).beta.assistants.list().data if a.name == "Librarian"][0]
    assert made.tool_resources.file_search.vector_store_ids == [store_id]  # type: ignore[union-attr]

    model.script(
        ToolCalls([Call("file_search", {"query": "refund time"})]),
        Text("Refunds take 14 days【0†policy.txt】."),
    )
    send(page, "How long do refunds take?")
    expect(page.locator(STATUS).last).to_have_text("completed")
    expect(page.locator(".tool.search")).to_contain_text("policy.txt")
    expect(page.locator(".tool.search .snippet")).to_contain_text("Refunds take 14 days")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".text")).to_have_text("Refunds take 14 days[1].")
    expect(answer.locator(".footnotes li")).to_have_text("policy.txt")


def test_phone_width_and_keyboard(page: Page, web_server: LiveServer, model: ScriptedModel) -> None:
    page.set_viewport_size(PHONE)
    open_playground(page, web_server.url, KEY)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width}px)"
    assistant_tab = page.get_by_role("tab", name="Assistant")
    assistant_tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Files")).to_be_focused()
    expect(page.locator("#panel-files")).to_be_visible()
    expect(page.locator("#panel-assistant")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Chat")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Message")).to_be_visible()
    # every control can be named by assistive technology
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input, select, textarea, button')]
             .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                           && !(el.tagName === 'BUTTON' && el.textContent.trim()))
             .map(el => el.id || el.outerHTML.slice(0, 60))"""
    )
    assert unnamed == []
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"]


def test_a_run_started_elsewhere_is_followed_until_it_ends(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    assistant = make_assistant(web_server, model, name="Elsewhere")
    held = Gate()
    model.script(Text("Finished while you watched.", gate=held))
    try:
        client = sdk(web_server)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "from a script"}])
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
        open_playground(page, web_server.url, KEY)
        page.locator("#thread-select").select_option(label="Open a thread by id…")
        page.get_by_label("Thread id").fill(thread.id)
        page.get_by_label("Thread id").press("Enter")
        expect(page.locator(STATUS)).to_have_text("in progress")
        held.set()
        expect(page.locator(STATUS)).to_have_text("completed")
        expect(page.locator(".msg.assistant")).to_contain_text("Finished while you watched.")
    finally:
        held.set()


def use_responses(page: Page) -> None:
    page.get_by_label("Responses", exact=True).check()
    assert page.evaluate("localStorage.getItem('agent.playground.mode')") == "responses"


def test_responses_mode_streams_and_shares_the_threads_history(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    make_assistant(web_server, model, name="Responder", instructions="Answer in one sentence.")
    held = Gate()
    model.script(Text("Responses stream token by token.", pause=held, pause_after=2))
    try:
        open_playground(page, web_server.url, KEY)
        page.locator("#assistant-select").select_option(label="Responder")
        use_responses(page)
        send(page, "Which API is this?")
        answer = page.locator(".msg.assistant").last
        expect(answer).to_contain_text("Responses")  # the first pieces are on screen while the model is held
        expect(answer).not_to_contain_text("token by token")
        expect(page.locator(STATUS).last).to_have_text("in progress")
        held.set()
        expect(answer).to_have_text("AssistantResponses stream token by token.")
        expect(page.locator(STATUS).last).to_have_text("completed")
        expect(page.locator(".run-foot .usage").last).to_have_text(
            re.compile(r"^\d+ in · \d+ out · \d+ tokens$")
        )
    finally:
        held.set()
    sent = model.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    # the choice is remembered; the thread (the response's conversation) reopens with the same history
    thread = page.evaluate("JSON.parse(localStorage.getItem('agent.playground.threads'))[0].id")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.get_by_label("Responses", exact=True)).to_be_checked()
    page.get_by_label("Assistants run").check()
    page.locator("#thread-select").select_option(value=thread)
    expect(page.locator(".msg.user")).to_have_text("YouWhich API is this?")
    expect(page.locator(".msg.assistant")).to_have_text("AssistantResponses stream token by token.")
    listed = sdk(web_server).beta.threads.messages.list(thread, order="asc").data
    texts = [m.content[0].text.value for m in listed]  # type: ignore[union-attr]
    assert texts == ["Which API is this?", "Responses stream token by token."]


def test_responses_mode_function_call_takes_the_typed_output(
    page: Page, web_server: LiveServer, model: ScriptedModel
) -> None:
    fn = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    make_assistant(web_server, model, name="Weather R", tools=[{"type": "function", "function": fn}])
    model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]), Text("It is 21 degrees in Oslo."))
    open_playground(page, web_server.url, KEY)
    page.locator("#assistant-select").select_option(label="Weather R")
    use_responses(page)
    send(page, "Weather in Oslo?")
    expect(page.locator(STATUS).last).to_have_text("completed")  # a response with a call ends completed
    call = page.locator(".tool.function")
    expect(call).to_contain_text('"city": "Oslo"')
    expect(call.locator(".pill")).to_have_text("waiting for output")
    field = page.get_by_label('Output of get_weather({"city": "Oslo"})')
    expect(field).to_be_focused()
    field.fill('{"temperature": 21}')
    page.get_by_role("button", name="Submit output").click()
    expect(page.locator(".msg.assistant").last).to_have_text("AssistantIt is 21 degrees in Oslo.")
    expect(page.locator(STATUS)).to_have_text(["completed", "completed"])
    expect(call).to_contain_text('{"temperature": 21}')
    assert model.requests[0]["tools"][0]["function"]["name"] == "get_weather"
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msg[0]["content"] == '{"temperature": 21}'


def test_responses_mode_shows_tool_steps_and_errors(
    page: Page, web_server: LiveServer, model: ScriptedModel, page_errors: PageErrors
) -> None:
    make_assistant(web_server, model, name="Counter R", tools=[{"type": "calculator"}])
    model.script(ToolCalls([Call("calculator", {"expression": "2**10"})]), Text("It is 1024."))
    open_playground(page, web_server.url, KEY)
    page.locator("#assistant-select").select_option(label="Counter R")
    use_responses(page)
    send(page, "2 to the 10th?")
    expect(page.locator(".calc-line")).to_have_text("2**10 = 1024")
    expect(page.locator("[data-item=mcp_call] .pill")).to_have_text("done")
    expect(page.locator(".msg.assistant").last).to_have_text("AssistantIt is 1024.")
    assert model.requests[0]["tools"][0]["function"]["name"] == "calculator"
    model.script(*[HttpError(500, message="the model server fell over")] * 3)  # the first try and 2 retries
    send(page, "Again?")
    expect(page.locator(STATUS).last).to_have_text("failed")
    expect(page.locator(".run-error").last).to_contain_text("the model server fell over")
