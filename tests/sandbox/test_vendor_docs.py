"""Every fake's doc says what it leaves out: a gap between a fake and its vendor is never
silent (a '## Not followed' section listing the documented endpoints and fields it lacks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.server import VENDORS

DOCS = Path(__file__).resolve().parents[2] / "sandbox" / "docs"
# the fakes the sandbox serves, plus the docs of the fakes' webhooks and the real file drop
DOCUMENTED = sorted({*VENDORS, "webhooks", "sftp-pgp"})


def test_the_sandbox_serves_every_vendor_fake() -> None:
    assert {"bamboohr", "greenhouse", "gusto", "lever", "moodle", "surveymonkey"} <= set(VENDORS)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_each_fake_lists_what_it_does_not_follow(name: str) -> None:
    doc = DOCS / f"{name}.md"
    assert doc.exists(), f"the {name} fake has no doc ({doc.name})"
    text = doc.read_text(encoding="utf-8")
    match = re.search(r"^## Not followed\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{doc.name} has no '## Not followed' section"
    items = [line for line in match.group(1).splitlines() if line.startswith(("- ", "Not "))]
    assert items, f"{doc.name}: the 'Not followed' section lists nothing"


def test_lever_doc_names_the_endpoints_the_fake_serves_and_lacks() -> None:
    text = (DOCS / "lever.md").read_text(encoding="utf-8")
    followed, _, missing = text.partition("## Not followed")
    for served in ("/opportunities/{id}/resumes", "/opportunities/{id}/referrals", "/sources"):
        assert served in followed
    assert "`signatures`" in followed
    for absent in ("/opportunities/deleted", "/interviews", "/requisitions", "download"):
        assert absent in missing
