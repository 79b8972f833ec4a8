"""Builders for small real documents (txt, md, html, pdf, docx) written at test time, never checked in.

Each good document is about one distinctive topic, so a retrieval test can tell them apart with a
paraphrased question that shares few words with the text. ``TOPICS`` pairs each file with such a question.

Usage::

    paths = write_mixed_folder(tmp_path / "docs")  # {"txt": Path, "md": Path, ..., "corrupt": Path, "empty": Path}
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROUTER_TXT = """\
Resetting your home router

If the wireless network keeps dropping, unplug the router from the wall socket and wait thirty seconds.
Plug it back in and give the device two minutes to boot before you test the connection again.
For a factory reset, press the small recessed button on the back with a paperclip for ten seconds.
The status lights will blink amber while the firmware restores the default configuration.
After a factory reset the Wi-Fi name and admin password are the ones printed on the sticker underneath.
"""

SOURDOUGH_MD = """\
# Baking sourdough bread

Sourdough is leavened by a starter, a fermented culture of flour, water, wild yeast and lactobacilli.

## Feeding the starter

Feed the starter with equal weights of flour and water every day. It is ready when it doubles in
volume within six hours and smells pleasantly sour.

## Mixing and proofing

Combine the levain with flour, water and salt, then stretch and fold the dough every half hour.
Let the dough ferment in bulk until it has grown by half, shape a tight boule and proof it overnight
in the refrigerator.

## Baking

Score the loaf with a razor blade and bake it in a preheated Dutch oven at 250 degrees Celsius.
Remove the lid after twenty minutes so the crust caramelises to a deep brown.
"""

# Appended to the md's last section: its last chunk changes text (new id, old id stale).
SOURDOUGH_EXTRA_MD = """
Keep the cooled loaf cut side down on a wooden board and eat it within three days; slices freeze well.
"""

BIRDS_HTML = """\
<!doctype html>
<html><head><title>Bird migration</title></head>
<body>
<nav>Home | About | Contact</nav>
<article>
<h1>Bird migration</h1>
<p>Every autumn billions of songbirds, geese and swallows leave their breeding grounds in the north.
They travel thousands of kilometres to warmer wintering areas in Africa and South America.</p>
<h2>Navigation</h2>
<p>Migrating birds orient themselves using the earth's magnetic field, the position of the sun and
the pattern of the stars. Young cuckoos find their way to Africa without ever having flown the route.</p>
<h2>Stopover sites</h2>
<p>Wetlands and estuaries serve as stopover sites where the flocks rest and refuel on insects and seeds
before continuing their flight.</p>
</article>
</body></html>
"""

VOLCANO_PAGE = [
    "Volcanic eruptions",
    "A volcano erupts when molten rock called magma rises through cracks in the crust.",
    "Pressure from dissolved gases drives explosive eruptions that hurl ash high into the sky.",
    "Lava flows from shield volcanoes such as those on Hawaii move slowly and rarely kill people.",
    "Pyroclastic flows of hot gas and rock fragments race down the slopes at hundreds of km per hour.",
    "Geologists monitor earthquakes and ground swelling to forecast when a crater may explode.",
]

TAX_PAGE = [
    "Tax filing deadlines",
    "Individual income tax returns for the previous calendar year must be filed by the fifteenth of April.",
    "Taxpayers who need more time can request an automatic six month extension before that date.",
    "An extension to file is not an extension to pay: any balance owed still accrues interest.",
    "Self-employed people send estimated quarterly payments in April, June, September and January.",
    "Late returns are charged a penalty of five percent of the unpaid amount for each month.",
]

ONBOARDING_DOCX = [
    ("Onboarding policy for new employees", 1),
    (
        "This policy explains how the company welcomes people who join the staff. "
        "Human resources sends the employment contract and a welcome pack before the start date.",
        None,
    ),
    ("First day", 1),
    (
        "On the first day the new hire receives a laptop, a badge and accounts for email and payroll. "
        "Their manager introduces them to the team over lunch.",
        None,
    ),
    ("Probation and mentoring", 1),
    (
        "Every newcomer is paired with a mentor from another department for the first three months. "
        "The probation period ends with a review meeting where goals for the year are agreed.",
        None,
    ),
]

CORRUPT_PDF = b"%PDF-1.4 garbage"


@dataclass(frozen=True)
class Topic:
    key: str  # key in the dict returned by `write_mixed_folder`
    question: str  # a paraphrase that shares few words with the document
    page: int | None = None


TOPICS: tuple[Topic, ...] = (
    Topic("txt", "my internet box stopped working, how do I restart it?"),
    Topic("md", "how do I make naturally leavened loaves at home?"),
    Topic("html", "why do swallows fly south when the season turns cold?"),
    Topic("pdf", "what happens when a mountain spews lava and ash?", page=1),
    Topic("pdf", "by what date must I send my yearly income return to the revenue service?", page=2),
    Topic("docx", "what happens during a newcomer's first weeks at the firm?"),
)


def make_pdf(pages: list[list[str]]) -> bytes:
    """A real PDF (reportlab) with one wrapped text line per entry, one list per page."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for lines in pages:
        y = 780
        for line in lines:
            for piece in textwrap.wrap(line, 85):
                pdf.drawString(50, y, piece)
                y -= 16
            y -= 8
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx(paragraphs: list[tuple[str, int | None]]) -> bytes:
    """A real DOCX (python-docx); a paragraph with a level is a heading of that level."""
    import docx

    document = docx.Document()
    for text, level in paragraphs:
        if level is None:
            document.add_paragraph(text)
        else:
            document.add_heading(text, level=level)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_mixed_folder(folder: Path) -> dict[str, Path]:
    """Five good files on five topics, one corrupt PDF and one empty file; returns key -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "txt": folder / "router.txt",
        "md": folder / "sourdough.md",
        "html": folder / "birds.html",
        "pdf": folder / "volcano_tax.pdf",
        "docx": folder / "onboarding.docx",
        "corrupt": folder / "corrupt.pdf",
        "empty": folder / "empty.txt",
    }
    paths["txt"].write_text(ROUTER_TXT, encoding="utf-8")
    paths["md"].write_text(SOURDOUGH_MD, encoding="utf-8")
    paths["html"].write_text(BIRDS_HTML, encoding="utf-8")
    paths["pdf"].write_bytes(make_pdf([VOLCANO_PAGE, TAX_PAGE]))
    paths["docx"].write_bytes(make_docx(ONBOARDING_DOCX))
    paths["corrupt"].write_bytes(CORRUPT_PDF)
    paths["empty"].write_bytes(b"")
    return paths


GOOD_KEYS = ("txt", "md", "html", "pdf", "docx")
BAD_KEYS = ("corrupt", "empty")


# Six documents on clearly different topics: a paraphrased question must find the right one first.
API_CORPUS: dict[str, str] = {
    "router.md": """# Restarting the home router

If the internet connection stops working, restart the router. Unplug the router's power cable, wait thirty
seconds, and plug it back in. The lights blink while the modem reconnects to the provider; after about two
minutes the internet light turns solid green and Wi-Fi is back.
""",
    "sourdough.md": """# Baking sourdough bread

A sourdough loaf rises with a starter of flour and water instead of commercial yeast. Feed the starter a day
before baking, mix it with flour, water and salt, and let the dough ferment overnight in the fridge. Bake the
loaf in a preheated Dutch oven at 250 degrees Celsius for forty minutes until the crust is dark brown.
""",
    "tax.md": """# Income tax filing deadlines

Individual income tax returns for the previous year must be filed by April 15. Self-employed people pay
estimated tax quarterly, in April, June, September and January. Missing the filing deadline adds a late
penalty of five percent of the unpaid tax for each month, so request an extension before the due date.
""",
    "volcano.md": """# How volcanoes erupt

A volcano erupts when molten rock called magma rises from the mantle through cracks in the crust. Gas
dissolved in the magma expands as the pressure drops, and the eruption throws out lava, ash and volcanic
bombs. Mount Etna in Sicily is one of the most active volcanoes on Earth.
""",
    "onboarding.md": """# Employee onboarding

New employees receive their laptop and badge from the IT desk on their first day. During the first week they
meet their manager and their onboarding buddy, complete the security training, and sign the code of conduct.
Payroll details must be submitted to human resources before the end of the first month.
""",
    "password.md": """# Resetting your account password

If you forgot your password, open the sign-in page and click "Forgot password". Enter the email address of
your account and we send you a reset link that is valid for one hour. Choose a new password of at least twelve
characters; the old password stops working immediately.
""",
}
