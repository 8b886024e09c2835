"""The project's documents hold together: every citation of the method points at docs/method.md and at a section
that page has, every relative link in the README and docs/ lands on a file and heading that exist, the README stays
short, and LICENSE and CITATION.cff say what pyproject declares."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs/method.md"
README = ROOT / "README.md"
README_MAX_LINES = 220
SCREENSHOTS = ("compare.png", "frontier.png", "benchmarks.png")  # of real demo runs (scripts/dashboard_screenshots.py)
SCREENSHOT_MAX_BYTES = 300_000

REF = r"\d+(?:\.\d+)*(?:\s+(?:item|step|plot)\s+\d+)?"
CITATION = re.compile(rf"docs/method\.md §(?P<first>{REF})(?P<rest>(?:(?:,[ \t]*|[ \t]+and[ \t]+)§{REF})*)")
FURTHER_REF = re.compile(rf"§({REF})")
WITHOUT_DOCS_PATH = re.compile(r"(?<!docs/)\bmethod\.md")
SECTION_SIGN = re.compile(r"§(?=\d)")
YEAR_BEFORE = re.compile(r"\b\d{4}[a-z]?,\s*$")  # "(2020, §2.1)" cites a section of someone's paper
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s#]*)#([^)\s]+)\)")
HEADING = re.compile(r"^(#{2,6})[ \t]+(\d+(?:\.\d+)*)[ \t]+(.+?)[ \t]*$", re.M)
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
ANY_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFC", heading).lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def _sections() -> dict[str, tuple[str, str]]:
    """Section number → (anchor, body up to the next heading of the same or a higher level)."""
    page = PAGE.read_text(encoding="utf-8")
    headings = list(HEADING.finditer(page))
    found = {}
    for i, h in enumerate(headings):
        level = len(h.group(1))
        end = next((later.start() for later in headings[i + 1 :] if len(later.group(1)) <= level), len(page))
        found[h.group(2)] = (_slug(f"{h.group(2)} {h.group(3)}"), page[h.end() : end])
    return found


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for every heading of a Markdown page (code blocks are not headings)."""
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading)) for heading in ANY_HEADING.findall(prose)}


def _user_docs() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _links(page: Path) -> list[tuple[str, str, str]]:
    """(image mark, label, target) of every Markdown link in the page's prose."""
    prose = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return LINK.findall(prose)


def _repository_texts() -> dict[str, str]:
    """Every text file git knows of (tracked, or untracked and not ignored), but the page itself."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    texts = {}
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path == PAGE or not path.is_file():
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def _cited_refs(text: str) -> list[str]:
    refs = []
    for citation in CITATION.finditer(text):
        refs += [citation.group("first"), *FURTHER_REF.findall(citation.group("rest"))]
    return refs


def test_the_page_numbers_each_section_once():
    numbers = HEADING.findall(PAGE.read_text(encoding="utf-8"))
    counted = [number for _, number, _ in numbers]
    assert len(counted) == len(set(counted)), f"repeated section numbers in docs/method.md: {sorted(counted)}"


def _relative_link_to_the_page(name: str, text: str, at: int) -> bool:
    """A link's target in a page beside the method's page names it relatively, as Markdown links must."""
    return name.endswith(".md") and text[at - 2 : at] == "](" and (ROOT / name).parent / PAGE.name == PAGE


def test_no_file_cites_the_method_note_without_the_docs_path():
    offenders = [
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}"
        for name, text in _repository_texts().items()
        for m in WITHOUT_DOCS_PATH.finditer(text)
        if not _relative_link_to_the_page(name, text, m.start())
    ]
    assert not offenders, f"cite the project's page by its path, docs/method.md §N: {offenders}"


def test_no_section_sign_stands_without_the_page_it_cites():
    offenders = []
    for name, text in _repository_texts().items():
        cited = [m.span() for m in CITATION.finditer(text)]
        for sign in SECTION_SIGN.finditer(text):
            at = sign.start()
            in_citation = any(start <= at < end for start, end in cited)
            linked_further_ref = name.endswith(".md") and text[at - 1 : at] == "["
            if not (in_citation or linked_further_ref or YEAR_BEFORE.search(text[max(0, at - 12) : at])):
                offenders.append(f"{name}:{text.count(chr(10), 0, at) + 1}")
    assert not offenders, f"write docs/method.md §N, not a bare §N: {offenders}"


def test_every_cited_section_is_a_section_of_the_page():
    sections = _sections()
    missing = sorted(
        {
            f"{name}: §{ref}"
            for name, text in _repository_texts().items()
            for ref in _cited_refs(text)
            if ref.split()[0] not in sections
        }
    )
    assert not missing, f"cited but not a heading of docs/method.md: {missing}"


def test_every_cited_item_step_or_plot_is_numbered_in_its_section():
    sections = _sections()
    missing = []
    for name, text in _repository_texts().items():
        for ref in _cited_refs(text):
            number, *item = ref.split()
            if item and number in sections:
                body = sections[number][1]
                if not re.search(rf"^\s*{item[1]}\. ", body, re.M):
                    missing.append(f"{name}: §{' '.join(ref.split())}")
    assert not missing, f"cited but not a numbered entry of its section in docs/method.md: {sorted(set(missing))}"


def test_markdown_citations_are_links_that_land_on_their_section():
    anchors = {anchor: number for number, (anchor, _) in _sections().items()}
    problems = []
    for name, text in _repository_texts().items():
        if not name.endswith(".md"):
            continue
        prose = FENCE.sub("", text)
        for citation in CITATION.finditer(prose):
            if prose[citation.start() - 1 : citation.start()] != "[":
                problems.append(f"{name}: not a link: {citation.group(0)!r}")
        for label, target, anchor in MARKDOWN_LINK.findall(prose):
            if (ROOT / name).parent.joinpath(target).resolve() != PAGE:
                continue
            cited = FURTHER_REF.search(label)
            if anchors.get(anchor) is None or (cited and anchors[anchor] != cited.group(1).split()[0]):
                problems.append(f"{name}: [{label}] links to #{anchor}")
    assert not problems, problems


def test_every_relative_link_in_the_readme_and_docs_lands_on_a_file_and_heading():
    broken = []
    for page in _user_docs():
        for _, label, target in _links(page):
            if SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: [{label}]({target}): no file {path}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: [{label}]({target}): no heading #{anchor}")
    assert not broken, broken


def test_the_readme_stays_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to a page under docs/"


def test_the_screenshots_are_of_real_runs_shown_on_the_dashboard_page_captioned_with_what_produced_them():
    shown = {
        page.name: [target for image, _, target in _links(page) if image and Path(target).name in SCREENSHOTS]
        for page in _user_docs()
    }
    assert {name for name, targets in shown.items() if targets} <= {"dashboard.md"}, shown
    text = (ROOT / "docs/dashboard.md").read_text(encoding="utf-8")
    for name in SCREENSHOTS:
        if f"]({name})" not in text:
            continue  # not shown (and so not shipped, below)
        caption = text.split(f"]({name})", 1)[1].lstrip("\n").split("\n\n", 1)[0]
        facts = ("frpo demo", "seeds", "commit", "toy-scale CPU run", "cores")
        assert caption.startswith("*") and all(fact in caption for fact in facts) and "synthetic" not in caption, (
            f"docs/dashboard.md: {name} needs a caption right below it naming what produced it ({', '.join(facts)}); "
            f"found {caption[:120]!r}"
        )
        assert (ROOT / "docs" / name).stat().st_size < SCREENSHOT_MAX_BYTES, f"docs/{name}: keep it under 300 KB"
    for path in (ROOT / "docs").glob("*.png"):
        assert f"]({path.name})" in text, f"docs/{path.name} is shipped but shown nowhere: remove it"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_is_the_apache_2_0_text_that_pyproject_declares():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert _pyproject()["license"] == "Apache-2.0"
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text


def test_citation_cff_is_valid_citation_file_format():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.citation-file-format", "CITATION.cff"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_citation_cff_names_the_version_and_license_of_pyproject_and_the_paper():
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    project = _pyproject()
    assert (cff["cff-version"], cff["version"], cff["license"]) == ("1.2.0", project["version"], project["license"])
    assert any("2602.08813" in reference.get("url", "") for reference in cff["references"])
