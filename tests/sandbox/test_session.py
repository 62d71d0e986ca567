"""Executing code in a session: state, results, errors, charts, files."""

from __future__ import annotations

import pytest

from sandbox import SandboxManager, Session

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="session")]


async def test_state_persists_across_calls(shared: Session) -> None:
    first = await shared.execute("import math\ncounter = 40")
    assert first.ok and first.result is None
    second = await shared.execute("counter += 2\ncounter")
    assert second.result == "42"
    third = await shared.execute("math.sqrt(counter * 0 + 16)")
    assert third.result == "4.0"


async def test_stdout_stderr_and_trailing_expression(shared: Session) -> None:
    r = await shared.execute(
        "import sys, os\nprint('out')\nprint('err', file=sys.stderr)\nos.system('echo fd')\n'v'"
    )
    assert r.stdout == "out\nfd\n"
    assert r.stderr == "err\n"
    assert r.result == "'v'"
    assert not r.timed_out and not r.reset and not r.truncated and r.duration > 0


async def test_error_has_name_value_and_cell_traceback(shared: Session) -> None:
    r = await shared.execute("def f():\n    return 1 / 0\nf()")
    assert r.error is not None
    assert (r.error.name, r.error.value) == ("ZeroDivisionError", "division by zero")
    assert "line 2, in f" in r.error.traceback and "return 1 / 0" in r.error.traceback
    assert "kernel" not in r.error.traceback.lower()
    syntax = await shared.execute("def (")
    assert syntax.error is not None and syntax.error.name == "SyntaxError"
    stdin = await shared.execute("input()")
    assert stdin.error is not None and stdin.error.name == "EOFError"
    exits = await shared.execute("import sys\nsys.exit(3)")
    assert exits.error is not None and exits.error.name == "SystemExit" and not exits.reset
    assert (await shared.execute("1 + 1")).result == "2"


async def test_chart_comes_back_as_png(shared: Session) -> None:
    r = await shared.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('chart')\n"
        "fig2 = plt.figure()\nplt.bar(['a', 'b'], [1, 2])\nNone"
    )
    assert r.ok, r.error
    assert len(r.images) == 2
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in r.images)
    again = await shared.execute("len(plt.get_fignums())")
    assert again.result == "0" and again.images == []


async def test_scientific_stack_is_there(shared: Session) -> None:
    r = await shared.execute(
        "import numpy as np, pandas as pd, scipy.linalg, sympy, PIL.Image\n"
        "df = pd.DataFrame({'a': np.arange(4)})\n"
        "(int(df.a.sum()), str(sympy.factor(sympy.Symbol('x')**2 - 1)))"
    )
    assert r.result == "(6, '(x - 1)*(x + 1)')", r.error


async def test_files_round_trip(shared: Session) -> None:
    await shared.write_file("in/data.csv", b"a,b\n1,2\n")
    r = await shared.execute(
        "import pandas as pd\ndf = pd.read_csv('/mnt/data/in/data.csv')\n"
        "df['c'] = df.a + df.b\ndf.to_csv('/mnt/data/out.csv', index=False)\nimport os\nprint(os.getcwd())"
    )
    assert r.ok, r.error
    assert r.stdout == "/mnt/data\n"
    assert [f.path for f in r.files] == ["out.csv"]
    assert r.files[0].sandbox_path == "/mnt/data/out.csv"
    assert await shared.read_file("/mnt/data/out.csv") == b"a,b,c\n1,2,3\n"
    assert {f.path for f in await shared.list_files()} >= {"in/data.csv", "out.csv"}
    with pytest.raises(FileNotFoundError):
        await shared.read_file("missing.txt")
    unchanged = await shared.execute("open('/mnt/data/out.csv').read()")
    assert unchanged.files == []


async def test_binary_file_written_by_host_is_readable_inside(shared: Session) -> None:
    blob = bytes(range(256)) * 4096
    await shared.write_file("blob.bin", blob)
    r = await shared.execute("import hashlib\nhashlib.sha256(open('blob.bin','rb').read()).hexdigest()")
    import hashlib

    assert r.result == repr(hashlib.sha256(blob).hexdigest())


async def test_same_key_same_session(manager: SandboxManager, shared: Session) -> None:
    assert await manager.session("shared") is shared
