from __future__ import annotations

import io
import json
import zipfile

import pytest

from agent.retrieval import InvalidFile, UnsupportedFile, extract_text
from tests.retrieval.pdfgen import make_pdf


@pytest.mark.parametrize(
    "filename",
    ["notes.txt", "README.md", "main.py", "app.js", "x.ts", "A.java", "m.c", "m.cpp", "main.go", "lib.rs",
     "s.rb", "run.sh", "Dockerfile", "dir/sub/Q.KT"],
)  # fmt: skip
def test_text_and_source_files_are_decoded(filename: str) -> None:
    src = "def café():\n    return 'naïve'  # ünïcödé\n"
    assert extract_text(src.encode(), filename) == src


def test_utf8_bom_and_utf16_are_decoded() -> None:
    assert extract_text(b"\xef\xbb\xbfhello", "a.txt") == "hello"
    assert extract_text("hé there".encode("utf-16"), "a.txt") == "hé there"


def test_undecodable_text_is_invalid() -> None:
    with pytest.raises(InvalidFile) as info:
        extract_text("caf\xe9 latin-1".encode("latin-1"), "a.txt")
    assert info.value.code == "invalid_file"


def test_binary_content_and_unknown_extensions_are_unsupported() -> None:
    with pytest.raises(UnsupportedFile) as info:
        extract_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.png")
    assert info.value.code == "unsupported_file"
    with pytest.raises(UnsupportedFile):
        extract_text(b"\x00\x01\x02\x03binary", "data.txt")
    with pytest.raises(UnsupportedFile):
        extract_text(b"plain", "noextension")
    with pytest.raises(UnsupportedFile):
        extract_text(b"MZ\x90\x00", "tool.exe")


def test_json_and_csv() -> None:
    doc = json.dumps({"name": "widget", "tags": ["alpha", "beta"]}, indent=2)
    assert extract_text(doc.encode(), "data.json") == doc
    lines = '{"a": 1}\n{"b": 2}\n'
    assert extract_text(lines.encode(), "data.json") == lines  # JSON Lines accepted
    with pytest.raises(InvalidFile):
        extract_text(b'{"broken": ', "data.json")
    csv = "id,name,price\n1,apple,0.5\n2,pear,0.75\n"
    assert extract_text(csv.encode(), "table.csv") == csv


def test_html_strips_tags_scripts_and_styles() -> None:
    page = b"""<!doctype html><html><head><title>Doc Title</title>
    <style>body { color: red; } .secret { }</style>
    <script>var secret = "do not index";</script></head>
    <body><h1>Heading &amp; more</h1><p>First   paragraph<br>second line</p>
    <!-- a comment -->
    <ul><li>one</li><li>two</li></ul><pre>  keep
  this</pre>
    <table><tr><td>cell a</td><td>cell b</td></tr></table>
    <noscript>enable js</noscript></body></html>"""
    text = extract_text(page, "page.html")
    assert "Doc Title" in text
    assert "Heading & more" in text
    assert "First paragraph\nsecond line" in text
    assert "one\n" in text and "two" in text
    assert "keep\n  this" in text
    assert "cell a cell b" in text
    for hidden in ("color: red", "secret", "do not index", "a comment", "enable js", "<"):
        assert hidden not in text


def test_pdf_text_is_extracted_from_every_page() -> None:
    data = make_pdf([["Quarterly report", "Revenue grew (strongly)"], ["Second page about turbines"]])
    text = extract_text(data, "report.PDF")
    assert "Quarterly report" in text
    assert "Revenue grew (strongly)" in text
    assert "Second page about turbines" in text
    assert text.index("Quarterly") < text.index("turbines")


def test_corrupt_pdf_is_invalid() -> None:
    data = make_pdf([["some text"]])
    with pytest.raises(InvalidFile):
        extract_text(data[: len(data) // 3], "cut.pdf")
    with pytest.raises(InvalidFile):
        extract_text(b"this is not a pdf at all", "fake.pdf")
    with pytest.raises(InvalidFile):
        extract_text(b"%PDF-1.7\n" + bytes(range(256)) * 4, "garbage.pdf")


def _ooxml(parts: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in parts.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_docx_and_pptx() -> None:
    docx = _ooxml(
        {
            "word/document.xml": "<w:document><w:body><w:p><w:r><w:t>Hello</w:t></w:r>"
            '<w:r><w:t xml:space="preserve"> docx &amp; world</w:t></w:r></w:p>'
            "<w:p><w:r><w:t>Second para</w:t></w:r></w:p></w:body></w:document>"
        }
    )
    assert extract_text(docx, "letter.docx") == "Hello docx & world\nSecond para"
    pptx = _ooxml(
        {
            "ppt/slides/slide2.xml": "<p:sld><a:p><a:r><a:t>Slide two</a:t></a:r></a:p></p:sld>",
            "ppt/slides/slide10.xml": "<p:sld><a:p><a:r><a:t>Slide ten</a:t></a:r></a:p></p:sld>",
            "ppt/slides/slide1.xml": "<p:sld><a:p><a:r><a:t>Slide one</a:t></a:r></a:p></p:sld>",
        }
    )
    assert extract_text(pptx, "deck.pptx") == "Slide one\n\nSlide two\n\nSlide ten"
    with pytest.raises(InvalidFile):
        extract_text(b"PK\x03\x04 not really a zip", "broken.docx")
    with pytest.raises(UnsupportedFile):
        extract_text(b"\xd0\xcf\x11\xe0", "old.doc")
