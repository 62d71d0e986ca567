"""Text extraction for file_search.

``extract_text(data, filename)`` turns the bytes of an uploaded file into plain text, choosing the
reader from the file extension (like OpenAI, which also goes by extension):

* plain text, markdown, source code, csv, json and similar: decoded as UTF-8 (a UTF-8 BOM is
  dropped) or as UTF-16 when the data starts with a UTF-16 BOM. Other encodings are rejected with
  :class:`InvalidFile` (OpenAI accepts only utf-8, utf-16 and ascii for text files).
* html / htm / xhtml: tags stripped with the stdlib ``html.parser``; ``script``/``style`` and similar
  elements are dropped, block elements become line breaks, entities are decoded.
* pdf: text of every page via ``pypdf``.
* docx / pptx: the text runs of the Office Open XML parts (stdlib ``zipfile``).

Errors map to vector-store-file ``last_error`` codes: :class:`UnsupportedFile` ->
``unsupported_file`` (unknown extension or binary content), :class:`InvalidFile` -> ``invalid_file``
(a supported type that cannot be read: corrupt PDF, undecodable bytes, ...).

Extraction is synchronous and CPU-bound; async callers should run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import html
import io
import json
import re
import warnings
import zipfile
from html.parser import HTMLParser
from pathlib import PurePosixPath

__all__ = [
    "ExtractionError",
    "InvalidFile",
    "SUPPORTED_EXTENSIONS",
    "UnsupportedFile",
    "extract_text",
]


class ExtractionError(Exception):
    """Base class; ``code`` is the vector-store-file ``last_error.code``."""

    code = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFile(ExtractionError):
    code = "unsupported_file"


class InvalidFile(ExtractionError):
    code = "invalid_file"


# fmt: off
_TEXT_EXTENSIONS = frozenset([
    "txt", "text", "md", "markdown", "rst", "adoc", "org", "tex", "log", "ini", "cfg", "conf", "toml",
    "yaml", "yml", "xml", "svg", "csv", "tsv", "json", "jsonl", "ndjson", "py", "pyi", "js", "mjs",
    "cjs", "jsx", "ts", "tsx", "java", "kt", "kts", "scala", "groovy", "c", "h", "cc", "cpp", "cxx",
    "hpp", "hh", "hxx", "cs", "go", "rs", "rb", "php", "pl", "pm", "swift", "m", "mm", "r", "jl", "lua",
    "sh", "bash", "zsh", "fish", "ps1", "bat", "cmd", "sql", "css", "scss", "sass", "less", "vue",
    "svelte", "dart", "ex", "exs", "erl", "hrl", "hs", "ml", "mli", "fs", "fsx", "clj", "cljs", "el",
    "vim", "tf", "hcl", "proto", "graphql", "gql", "dockerfile", "makefile", "cmake", "gradle",
    "properties", "env", "gitignore", "diff", "patch"
])
# fmt: on
_HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
_OOXML_EXTENSIONS = frozenset({"docx", "pptx"})
SUPPORTED_EXTENSIONS: frozenset[str] = _TEXT_EXTENSIONS | _HTML_EXTENSIONS | _OOXML_EXTENSIONS | {"pdf"}

# Extension-less files that are conventionally text.
_TEXT_FILENAMES = frozenset({"dockerfile", "makefile", "readme", "license", "changelog"})


def _extension(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name.lower()
    if "." not in name.strip("."):
        return name if name in _TEXT_FILENAMES else ""
    return name.rsplit(".", 1)[1]


def extract_text(data: bytes, filename: str) -> str:
    """Return the plain text of ``data``; raise UnsupportedFile / InvalidFile."""
    ext = _extension(filename)
    if ext == "pdf":
        return _extract_pdf(data)
    if ext in _OOXML_EXTENSIONS:
        return _extract_ooxml(data, ext)
    if ext in _HTML_EXTENSIONS:
        return html_to_text(_decode(data, filename))
    if ext in _TEXT_EXTENSIONS or ext in _TEXT_FILENAMES:
        text = _decode(data, filename)
        if ext == "json":
            _check_json(text, filename)
        return text
    shown = f".{ext}" if ext else "(no extension)"
    raise UnsupportedFile(f"Files with extension {shown} are not supported for file search: {filename}")


# --------------------------------------------------------------------------- text decoding


def _decode(data: bytes, filename: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InvalidFile(f"{filename}: invalid UTF-16 text ({exc.reason})") from None
    if b"\x00" in data[:8192]:
        raise UnsupportedFile(f"{filename}: binary content is not supported for file search")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidFile(
            f"{filename}: the file is not valid UTF-8 or UTF-16 text (byte offset {exc.start})"
        ) from None


def _check_json(text: str, filename: str) -> None:
    try:
        json.loads(text)
    except ValueError:
        # JSON Lines or a truncated document: still searchable as text.
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            for line in lines:
                json.loads(line)
        except ValueError:
            raise InvalidFile(f"{filename}: the file is not valid JSON") from None


# --------------------------------------------------------------------------- HTML

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
# fmt: off
_BLOCK_TAGS = frozenset([
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "head", "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul"
])
# fmt: on


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            if tag not in _VOID_TAGS:
                self._skip_depth += 1
            return
        if tag == "pre":
            self._pre_depth += 1
        if tag in ("td", "th"):
            self.parts.append("\t")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS and not self._skip_depth:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag in _BLOCK_TAGS and tag not in ("td", "th"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self.parts.append(data.translate(_PROTECT))  # kept verbatim by the whitespace folding
        else:
            self.parts.append(data)


_PROTECT = str.maketrans({"\n": "\x00", " ": "\x01", "\t": "\x02"})
_RESTORE = str.maketrans({"\x00": "\n", "\x01": " ", "\x02": "\t"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{2,}")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document (scripts, styles and comments removed)."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    raw = "".join(parser.parts)
    lines = (_SPACES.sub(" ", line).strip() for line in raw.split("\n"))
    text = "\n".join(lines)
    text = _BLANK_LINES.sub("\n", text).strip()
    return text.translate(_RESTORE)


# --------------------------------------------------------------------------- PDF


def _extract_pdf(data: bytes) -> str:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise InvalidFile("The file is not a PDF document (missing %PDF header)")
    from pypdf import PdfReader

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise InvalidFile("The PDF is encrypted with a password")
            pages = [page.extract_text() or "" for page in reader.pages]
    except InvalidFile:
        raise
    except Exception as exc:  # pypdf raises a wide variety of errors on damaged files
        raise InvalidFile(f"The PDF could not be read: {type(exc).__name__}: {exc}") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


# --------------------------------------------------------------------------- DOCX / PPTX

_XML_PARA = re.compile(r"</(?:w|a):p>")
_XML_TEXT = re.compile(r"<(?:w|a):t(?:\s[^>]*)?>([^<]*)</(?:w|a):t>|<w:tab/>|<w:br/>")
_MAX_XML_PART = 200 * 1024 * 1024


def _xml_text(xml: str) -> str:
    paragraphs: list[str] = []
    for para in _XML_PARA.split(xml):
        pieces = []
        for m in _XML_TEXT.finditer(para):
            pieces.append(html.unescape(m.group(1)) if m.group(1) is not None else " ")
        line = "".join(pieces).strip()
        if line:
            paragraphs.append(line)
    return "\n".join(paragraphs)


def _slide_number(name: str) -> int:
    m = re.search(r"(\d+)\.xml$", name)
    return int(m.group(1)) if m else 0


def _extract_ooxml(data: bytes, ext: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if ext == "docx":
                parts = [n for n in names if n == "word/document.xml"]
            else:
                parts = sorted(
                    (n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)), key=_slide_number
                )
            if not parts:
                raise InvalidFile(f"The .{ext} file has no document content")
            texts = []
            for name in parts:
                if zf.getinfo(name).file_size > _MAX_XML_PART:
                    raise InvalidFile(f"The .{ext} file is too large to read")
                texts.append(_xml_text(zf.read(name).decode("utf-8", errors="replace")))
    except InvalidFile:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InvalidFile(f"The .{ext} file could not be read: {exc}") from None
    return "\n\n".join(t for t in texts if t)
