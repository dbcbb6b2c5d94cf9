"""The README's first screen and its links: what a newcomer reads first stays true."""

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_first_screen_says_what_it_does_and_the_commands():
    first = "\n".join(README.splitlines()[:40])
    assert "dilation" in first and ".caffemodel" in first
    assert re.search(r"python -m caffe_atrous \S+\.prototxt -o \S+\.prototxt", first)
    assert "python -m caffe_atrous verify" in first
    assert "make demo" in first and "make test" in first


def test_every_linked_page_exists_and_every_page_is_linked():
    linked = set(re.findall(r"\]\((docs/[^)#]+)\)", README))
    assert linked and all((ROOT / p).is_file() for p in linked), linked
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, pages - linked


def test_the_docs_link_only_to_what_exists():
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)


def test_the_readme_tells_the_layering_of_the_package_docstring():
    import caffe_atrous
    chain = re.search(r"LAYERS:\s*(.+)", caffe_atrous.__doc__).group(1)
    shown = chain.replace(", __main__", "").strip()
    assert shown in README
