"""A structured long-document set with checkable answers, generated (seeded) for ``bench.chunking``.

Markdown handbooks, guides, runbooks and manuals of 6-20 KB in five domains (equipment, parks, software services,
a ship fleet, orchards), written from templates over varied vocabulary: many short H2/H3 sections, some only one
sentence long, entity headings ("## Model KT-17") with nothing under them but their subsections, a safety
part, a glossary of one-line entries. Under each entity, every H3 section plants one fact, a sentence found
exactly once in its handbook and nowhere else in the set. Most facts do not name their entity ("It lasts 14
months." under "## Model KT-17 / ### Warranty"), so "How long is the Model KT-17 pump covered under warranty?"
is answerable only with the heading path; about a quarter do ("The Model KT-17 warranty lasts 14 months."), and
many are the whole body of their section (``Fact.tiny``). Questions name the entity and ask in other words.

Usage::

    sset = generate_structured_set(30, questions_per_doc=6, seed=0)   # a pure function of its arguments
    folder = sset.write(Path("/tmp/handbooks"))                        # one .md per handbook
    fact = sset.facts[sset.questions[0].fact]                          # what the first question asks for
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ================================================================================================================
# The structured long-document set
# ================================================================================================================


@dataclass(frozen=True)
class Fact:
    id: str
    doc: str  # the handbook's file stem
    entity: str  # the H2 heading the fact sits under
    attribute: str  # the H3 heading of its section
    sentence: str  # in its handbook exactly once, and in no other
    named: bool  # the sentence names its entity (else only the heading path does)
    tiny: bool  # the sentence is the whole body of its section


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    fact: str  # the Fact's id
    doc: str


@dataclass(frozen=True)
class Manual:
    name: str  # file stem
    title: str
    text: str  # Markdown


@dataclass(frozen=True)
class StructuredSet:
    manuals: list[Manual]
    facts: dict[str, Fact]
    questions: list[Question]

    def write(self, folder: Path) -> Path:
        """One Markdown file per handbook, and nothing else, in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.md"):
            stale.unlink()
        for m in self.manuals:
            (folder / f"{m.name}.md").write_text(m.text, encoding="utf-8")
        return folder

    def describe(self) -> dict[str, Any]:
        sizes = [len(m.text.encode()) / 1024 for m in self.manuals]
        asked = [self.facts[q.fact] for q in self.questions]
        return {
            "docs": len(self.manuals),
            "kb": {"min": round(min(sizes), 1), "mean": round(statistics.mean(sizes), 1), "max": round(max(sizes), 1)},
            "sections": sum(m.text.count("\n## ") + m.text.count("\n### ") for m in self.manuals),
            "facts": len(self.facts),
            "questions": len(self.questions),
            "questions_needing_heading": sum(not f.named for f in asked),
            "questions_in_tiny_sections": sum(f.tiny for f in asked),
        }


Slots = Callable[[random.Random], dict[str, object]]


def _split(options: str) -> tuple[str, ...]:
    """Options written "a|b|c", so the tables below stay one line per field."""
    return tuple(o.strip() for o in options.split("|") if o.strip())


@dataclass(frozen=True)
class _Attr:
    heading: str
    context: tuple[str, ...]  # the fact without its entity: "It lasts {n} months."
    named: tuple[str, ...]  # the fact naming it: "The {e} warranty lasts {n} months."
    questions: tuple[str, ...]  # asked in other words, always naming the entity
    slots: Slots
    notes: tuple[str, ...] = ()  # section filler of this topic (no numbers, no entity)


def _attr(heading: str, context: str, named: str, ask: str, slots: Slots, notes: str = "") -> _Attr:
    return _Attr(heading, _split(context), _split(named), _split(ask), slots, _split(notes))


@dataclass(frozen=True)
class _Domain:
    kind: str  # handbook / guide / runbook / manual
    title: str  # "{brand} {product} Handbook"
    title_words: dict[str, tuple[str, ...]]
    entity: Callable[[random.Random], str]
    intro: tuple[str, ...]  # an optional first sentence under an entity heading
    attrs: tuple[_Attr, ...]
    words: dict[str, tuple[str, ...]]  # filler vocabulary: Verb, part, manner, step, person, state, ...


def _n(lo: int, hi: int, step: int = 1) -> Callable[[random.Random], int]:
    return lambda rng: rng.randrange(lo, hi + 1, step)


def _dec(lo: int, hi: int) -> Callable[[random.Random], str]:
    return lambda rng: f"{rng.randint(lo, hi)}.{rng.randint(0, 9)}"


def _clock(lo: int, hi: int, suffix: str) -> Callable[[random.Random], str]:
    return lambda rng: f"{rng.randint(lo, hi)}:{rng.randrange(0, 60, 5):02d} {suffix}"


def _pick(options: str) -> Callable[[random.Random], str]:
    choices = _split(options)
    return lambda rng: rng.choice(choices)


def _slots(**gens: Callable[[random.Random], object]) -> Slots:
    return lambda rng: {k: g(rng) for k, g in gens.items()}


def _code(rng: random.Random) -> str:
    return f"{rng.choice('BCDFGHJKLMNPRSTVWXZ')}{rng.choice('BCDFGHJKLMNPRSTVWXZ')}-{rng.randint(1000, 9999)}"


def _model(rng: random.Random) -> str:
    return f"Model {rng.choice('ABCDEFGHJKLMNPRSTUVWXZ')}{rng.choice('ABCDEFGHJKLMNPRSTUVWXZ')}-{rng.randint(10, 99)}"


def _names(first: str, second: str, *, prefix: str = "", suffix: str = "") -> Callable[[random.Random], str]:
    a, b = _split(first), _split(second)
    return lambda rng: " ".join(p for p in (prefix, rng.choice(a), rng.choice(b), suffix) if p)


def _words(**lists: str) -> dict[str, tuple[str, ...]]:
    return {k: _split(v) for k, v in lists.items()}


_DOMAINS: tuple[_Domain, ...] = (
    _Domain(
        kind="handbook",
        title="{brand} {product} Handbook",
        title_words=_words(
            brand="Orvane|Tallis|Brightwater|Holm and Pike|Varda|Norquist|Ashgrove|Kessler",
            product="Pump|Compressor|Generator|Boiler|Chiller|Blower",
        ),
        entity=_model,
        intro=_split("The {e} is the {size} unit in the range.|Most sites run the {e} as their {size} {noun}."),
        attrs=(
            _attr(
                "Warranty",
                "It lasts {n} months.|Cover runs for {n} months from delivery.",
                "The {e} warranty lasts {n} months.",
                "How long is the {e} {noun} covered under warranty?|For how many months is the {e} guaranteed?",
                _slots(n=_n(6, 180)),
                "Keep the delivery note with the logbook.|Claims go through the regional dealer.|"
                "Damage from misuse is not covered.|Register the unit online to activate cover.",
            ),
            _attr(
                "Calibration",
                "Recalibrate every {n} weeks.|A fresh calibration is due every {n} weeks.",
                "The {e} must be recalibrated every {n} weeks.",
                "How often does the {e} need calibrating?|What is the calibration interval of the {e} {noun}?",
                _slots(n=_n(2, 150)),
                "Use the certified reference kit.|Only trained staff may adjust the sensors.|"
                "Note the date on the sticker inside the cover.",
            ),
            _attr(
                "Operating conditions",
                "Run it only between {a} and {b} degrees Celsius.|"
                "The permitted ambient range is {a} to {b} degrees Celsius.",
                "The {e} runs only between {a} and {b} degrees Celsius.",
                "What ambient temperatures is the {e} rated for?|In what temperature range may the {e} {noun} operate?",
                _slots(a=_n(-30, 10), b=_n(25, 60)),
                "Shade the unit from direct sun.|Leave a clear space around the air inlets.",
            ),
            _attr(
                "Spare parts",
                "Order replacement seals as part {code}.|Spare seals carry the code {code}.",
                "Seals for the {e} are ordered as part {code}.",
                "Which catalogue number gets new seals for the {e}?|What code do I quote when buying {e} seals?",
                _slots(code=_code),
                "Genuine parts keep the warranty valid.|Store seals away from heat and oil.",
            ),
            _attr(
                "Support",
                "Dial extension {n} for help.|The support desk answers on extension {n}.",
                "Support for the {e} answers on extension {n}.",
                "Which phone extension handles {e} problems?|What number do I call when the {e} {noun} fails?",
                _slots(n=_n(1000, 9999)),
                "Have the serial plate in front of you when calling.|Out of hours, leave a message.",
            ),
            _attr(
                "Weight",
                "It weighs {n} kilograms empty.|Empty, the unit weighs {n} kilograms.",
                "The {e} weighs {n} kilograms empty.",
                "How heavy is the {e} without fluid?|What is the dry mass of the {e} {noun}?",
                _slots(n=_n(20, 900)),
                "Lift it with the marked points only.|Two people are needed to move it.",
            ),
            _attr(
                "Filters",
                "Swap the filter after {n} running hours.|A new filter goes in every {n} operating hours.",
                "The {e} needs a new filter every {n} running hours.",
                "After how many hours of operation should the {e} get a fresh filter?|"
                "When is the {e} filter due for replacement?",
                _slots(n=_n(100, 5000, 50)),
                "Dispose of used filters as oily waste.|Prime the new filter before fitting it.",
            ),
            _attr(
                "Noise",
                "Expect about {n} decibels at one metre.|Sound levels reach {n} decibels close by.",
                "The {e} produces about {n} decibels at one metre.",
                "How loud is the {e} {noun}?|What sound level does the {e} make when running?",
                _slots(n=_n(40, 110)),
                "Wear ear protection near the housing.",
            ),
        ),
        words=_words(
            Verb="Inspect|Clean|Check|Tighten|Wipe|Label",
            part="intake valve|drive belt|pressure gauge|control panel|drain plug|inlet screen|mounting frame|"
            "cooling fan",
            manner="by hand|with a dry cloth|slowly|with the power off",
            step="starting the unit|closing the cover|the shift handover|restoring power",
            person="site engineer|shift lead|service technician",
            state="loose|worn|damp|cracked",
            size="smallest|largest|quietest|newest|oldest|most common",
        ),
    ),
    _Domain(
        kind="guide",
        title="{city} Parks and Trails Guide",
        title_words=_words(city="Eastbridge|Harrowgate|Millbrook|Stonehaven|Westmere|Oakhurst|Lowick"),
        entity=_names(
            "Alder|Birch|Cedar|Heron|Otter|Juniper|Willow|Falcon|Maple|Larch|Osprey|Bramble|Thistle|Fern|Kestrel|"
            "Linden|Rowan|Sorrel|Teal|Wren",
            "Hollow|Point|Meadow|Ridge|Brook|Commons|Bend|Fields|Grove|Landing",
            suffix="Park",
        ),
        intro=_split("{e} lies on the {side} edge of the city.|{e} is one of the {size} parks in the network."),
        attrs=(
            _attr(
                "Opening hours",
                "Gates open at {h} and close at dusk.|The first entry is at {h} every day.",
                "{e} opens its gates at {h}.",
                "What time can visitors first get into {e}?|When does {e} open in the morning?",
                _slots(h=_clock(5, 9, "a.m.")),
                "Hours change on public holidays.",
            ),
            _attr(
                "Parking",
                "The car park has {n} spaces.|There is room for {n} cars.",
                "The car park at {e} has {n} spaces.",
                "How many vehicles can park at {e}?|How big is the parking area at {e}?",
                _slots(n=_n(12, 400)),
                "Overnight parking is not allowed.|Coaches use the side entrance.",
            ),
            _attr(
                "Dogs",
                "Leads may be at most {x} metres long.|Dogs stay on leads no longer than {x} metres.",
                "Dog leads at {e} may be at most {x} metres long.",
                "What is the longest dog leash allowed in {e}?|How long may a lead be for dogs walked at {e}?",
                _slots(x=_dec(1, 9)),
                "Bag and bin all dog waste.|Dogs are not allowed in the play area.",
            ),
            _attr(
                "Group permits",
                "A group permit costs {n} dollars.|Groups pay {n} dollars for a permit.",
                "A group permit for {e} costs {n} dollars.",
                "What does a group booking at {e} cost?|How much is the permit for groups visiting {e}?",
                _slots(n=_n(15, 500)),
                "Book at least a week ahead.|Schools apply through the education office.",
            ),
            _attr(
                "Camping",
                "Each pitch takes at most {n} tents and {m} cars.|"
                "No more than {n} tents and {m} cars may share a pitch.",
                "Each pitch at {e} takes at most {n} tents and {m} cars.",
                "How many tents fit on one campsite at {e}?|What is the tent limit per pitch at {e}?",
                _slots(n=_n(2, 9), m=_n(1, 5)),
                "Fires are allowed in the metal rings only.",
            ),
            _attr(
                "Trails",
                "The loop trail is {x} kilometres long.|Walking the full loop covers {x} kilometres.",
                "The loop trail at {e} is {x} kilometres long.",
                "How far is the circular walk at {e}?|What distance is the round path at {e}?",
                _slots(x=_dec(1, 15)),
                "Waymarks are painted on posts.|Stay on the path in the nesting season.",
            ),
            _attr(
                "Rangers",
                "Rangers stay on duty until {h}.|Staff leave the visitor hut at {h}.",
                "Rangers at {e} stay on duty until {h}.",
                "Until what time is someone on duty at {e}?|When do the staff at {e} go home?",
                _slots(h=_clock(3, 9, "p.m.")),
                "Lost property is kept at the hut.",
            ),
        ),
        words=_words(
            Verb="Report|Check|Photograph|Sweep|Inspect",
            part="boardwalk|picnic shelter|footbridge|boat ramp|notice board|play area|bird hide|stile",
            manner="on every patrol|after storms|in pairs|before opening",
            step="locking the gates|the morning patrol|a school visit|the weekend market",
            person="duty ranger|volunteer lead|park manager",
            state="slippery|damaged|flooded|overgrown",
            side="northern|southern|eastern|western",
            size="largest|quietest|oldest|busiest",
        ),
    ),
    _Domain(
        kind="runbook",
        title="{team} Platform Runbook",
        title_words=_words(team="Northwind|Bluefield|Copperline|Redwood|Silverlake|Greyhound|Lakeside"),
        entity=_names(
            "Ledger|Beacon|Quartz|Harbor|Atlas|Cobalt|Ember|Granite|Helix|Indigo|Kepler|Lumen|Meridian|Nimbus|Onyx|"
            "Pylon|Quill|Sable|Tundra|Zephyr",
            "Billing|Search|Upload|Identity|Routing|Export|Notification|Scheduling|Audit|Pricing|Inventory|Reporting",
            suffix="Service",
        ),
        intro=_split("The {e} is owned by the {team} team.|The {e} sits behind the public gateway."),
        attrs=(
            _attr(
                "Timeouts",
                "Requests give up after {n} seconds.|Calls are cut off after {n} seconds.",
                "Requests to the {e} time out after {n} seconds.",
                "How long does the {e} wait before abandoning a request?|What is the request timeout of the {e}?",
                _slots(n=_n(2, 300)),
                "Clients retry with backoff.|Long exports use the asynchronous endpoint instead.",
            ),
            _attr(
                "Backups",
                "Snapshots are kept for {n} days.|Each backup is retained for {n} days.",
                "Backups of the {e} are kept for {n} days.",
                "For how many days are {e} snapshots retained?|How long does the {e} keep its backups?",
                _slots(n=_n(3, 400)),
                "Restores are tested every quarter.|Backups are encrypted at rest.",
            ),
            _attr(
                "Networking",
                "It listens on port {n}.|Traffic arrives on port {n}.",
                "The {e} listens on port {n}.",
                "Which port does the {e} accept connections on?|On what port should clients reach the {e}?",
                _slots(n=_n(1025, 65000)),
                "Only the gateway may reach it directly.",
            ),
            _attr(
                "Escalation",
                "Page the secondary engineer after {n} minutes without acknowledgement.|"
                "Unanswered pages move to the backup engineer after {n} minutes.",
                "Incidents in the {e} go to the secondary engineer after {n} minutes.",
                "When is the second on-call person paged for {e} incidents?|"
                "How long before an unacknowledged {e} alert escalates?",
                _slots(n=_n(3, 90)),
                "Open an incident channel for every outage.",
            ),
            _attr(
                "Resources",
                "Each replica is capped at {n} megabytes.|A single replica may use up to {n} megabytes.",
                "Each {e} replica is capped at {n} megabytes.",
                "What is the memory limit per {e} instance?|How much RAM may one {e} replica use?",
                _slots(n=_n(128, 16384, 64)),
                "Raise limits only with a capacity review.",
            ),
            _attr(
                "Releases",
                "Releases go out on {day} at {t}.|New versions ship on {day} at {t}.",
                "The {e} is released on {day} at {t}.",
                "When are new versions of the {e} deployed?|On which day and time does the {e} get updates?",
                _slots(
                    day=_pick("Monday|Tuesday|Wednesday|Thursday|Friday"),
                    t=lambda rng: f"{rng.randint(7, 18):02d}:{rng.randrange(0, 60, 5):02d}",
                ),
                "Freeze periods are announced a week ahead.",
            ),
            _attr(
                "Scaling",
                "Production runs {n} replicas.|There are {n} copies behind the load balancer.",
                "The {e} runs {n} replicas in production.",
                "How many instances of the {e} run in production?|How many replicas serve the {e} in production?",
                _slots(n=_n(2, 64)),
                "Autoscaling is off during releases.",
            ),
        ),
        words=_words(
            Verb="Review|Check|Rotate|Verify|Archive",
            part="config file|deploy pipeline|health check|feature flag|access log|alert rule|connection pool|cache",
            manner="during business hours|with a second reviewer|from the bastion host|in staging first",
            step="merging a change|a failover drill|the weekly release|rotating credentials",
            person="incident commander|team lead|platform engineer",
            state="stale|misconfigured|noisy|saturated",
            team="payments|growth|core|data|edge",
        ),
    ),
    _Domain(
        kind="manual",
        title="{company} Fleet Maintenance Manual",
        title_words=_words(company="Saltmarsh|Greywater|Tidewell|Kittiwake|Longshore|Seahold|Brackwater"),
        entity=_names(
            "Northern|Southern|Coastal|Island|Silver|Amber|Western|Eastern|Morning|Evening|Harbour|Polar",
            "Tern|Gannet|Petrel|Puffin|Skua|Fulmar|Guillemot|Cormorant|Plover|Curlew|Dunlin|Shearwater",
            prefix="MV",
        ),
        intro=_split("The {e} works the {route} route.|The {e} joined the fleet as a {role}."),
        attrs=(
            _attr(
                "Hull inspection",
                "Divers inspect the hull every {n} months.|An underwater survey is due every {n} months.",
                "Divers inspect the hull of the {e} every {n} months.",
                "How often is the bottom of the {e} surveyed?|"
                "At what interval do divers check the {e} below the waterline?",
                _slots(n=_n(3, 60)),
                "Photograph any damage for the insurer.",
            ),
            _attr(
                "Crew",
                "It sails with {n} crew.|The minimum crew is {n}.",
                "The {e} sails with {n} crew.",
                "How many sailors does the {e} need?|What is the crew complement of the {e}?",
                _slots(n=_n(4, 80)),
                "Crew lists are filed before departure.",
            ),
            _attr(
                "Fuel",
                "The tanks hold {n} tonnes of diesel.|Bunker capacity is {n} tonnes of diesel.",
                "The tanks of the {e} hold {n} tonnes of diesel.",
                "What is the fuel capacity of the {e}?|How much diesel can the {e} take on?",
                _slots(n=_n(20, 900)),
                "No smoking on deck while bunkering.|Take a fuel sample at every delivery.",
            ),
            _attr(
                "Registration",
                "It is registered in {port} under number {n}.|The flag papers name {port} and number {n}.",
                "The {e} is registered in {port} under number {n}.",
                "Where is the {e} registered?|What is the port of registry of the {e}?",
                _slots(
                    port=_pick("Aberdeen|Bergen|Cork|Dundee|Esbjerg|Falmouth|Grimsby|Hull|Lerwick|Oban"),
                    n=_n(1000, 99999),
                ),
                "Certificates are kept on the bridge.",
            ),
            _attr(
                "Lifeboats",
                "The lifeboats seat {n} people in total.|Boat capacity is {n} people altogether.",
                "The lifeboats of the {e} seat {n} people in total.",
                "How many people can the lifeboats of the {e} take?|"
                "What is the total survival craft capacity of the {e}?",
                _slots(n=_n(20, 400)),
                "Drills are held with every crew change.",
            ),
            _attr(
                "Engine",
                "The main engine is overhauled every {n} running hours.|"
                "A major engine service falls due every {n} running hours.",
                "The main engine of the {e} is overhauled every {n} running hours.",
                "When is the {e}'s engine due for a major service?|"
                "How many hours does the {e} main engine run between overhauls?",
                _slots(n=_n(4000, 40000, 500)),
                "Keep the old parts until the report is signed.",
            ),
            _attr(
                "Speed",
                "Service speed is {x} knots.|It normally cruises at {x} knots.",
                "The {e} cruises at {x} knots.",
                "How fast does the {e} usually travel?|What is the normal cruising speed of the {e}?",
                _slots(x=_dec(8, 30)),
                "Slow down in fog and near fishing gear.",
            ),
        ),
        words=_words(
            Verb="Inspect|Grease|Test|Paint|Secure",
            part="anchor winch|bilge pump|radar mast|fire hose|gangway|liferaft cradle|steering gear|fuel filter",
            manner="in calm weather|at the start of each watch|with two crew present|in port",
            step="leaving harbour|the fire drill|bunkering|a crew change",
            person="chief engineer|first officer|bosun",
            state="corroded|loose|leaking|seized",
            route="island ferry|coastal cargo|offshore supply|harbour tug",
            role="supply vessel|ferry|tug|survey ship",
        ),
    ),
    _Domain(
        kind="manual",
        title="{valley} Orchard Cooperative Manual",
        title_words=_words(valley="Hollin Valley|Wyre Vale|Teme Valley|Evesham Vale|Cider Hill|Ledbury Vale"),
        entity=_names(
            "Hawthorn|Sloe|Quince|Medlar|Bramley|Russet|Pippin|Damson|Greengage|Pearmain|Codlin|Costard",
            "Hill|Lane|Farm|Slope|Terrace|Valley|Barn|Gate|Well|Cross|Green|End",
            suffix="Orchard",
        ),
        intro=_split("{e} is farmed by the {family} family.|{e} is the {size} member of the cooperative."),
        attrs=(
            _attr(
                "Harvest",
                "Picking starts in week {n} and lasts {m} days.|"
                "The first crates are filled in week {n}, over {m} days.",
                "Picking at {e} starts in week {n} and lasts {m} days.",
                "When does harvesting begin at {e}?|In which week is the fruit at {e} first picked?",
                _slots(n=_n(30, 44), m=_n(8, 40)),
                "Pickers are paid by the crate.",
            ),
            _attr(
                "Irrigation",
                "Drip lines run for {n} minutes each evening.|Watering lasts {n} minutes a night.",
                "Drip lines at {e} run for {n} minutes each evening.",
                "How long is {e} watered per night?|For how many minutes do the sprinklers at {e} run in the evening?",
                _slots(n=_n(10, 180)),
                "Flush the lines after every storm.",
            ),
            _attr(
                "Varieties",
                "Most trees are {variety} on rootstock M{n}.|The main crop is {variety}, grafted on rootstock M{n}.",
                "Most trees at {e} are {variety} on rootstock M{n}.",
                "Which apple variety dominates {e}?|What cultivar makes up most of {e}?",
                _slots(
                    variety=_pick(
                        "Cox|Egremont Russet|Discovery|Worcester Pearmain|Braeburn|Jazz|Gala|Spartan|Bramley|Jonagold"
                    ),
                    n=_n(2, 120),
                ),
                "Labels on the end posts give the planting year.",
            ),
            _attr(
                "Pest control",
                "Moth traps are checked every {n} days from week {w}.|"
                "Pest traps get a look every {n} days, starting in week {w}.",
                "Moth traps at {e} are checked every {n} days from week {w}.",
                "How frequently are the pest traps at {e} inspected?|"
                "How often does someone look at the moth traps in {e}?",
                _slots(n=_n(2, 30), w=_n(12, 26)),
                "Spray only after the bees have gone.",
            ),
            _attr(
                "Cold storage",
                "Crates are held at {x} degrees Celsius.|The store keeps fruit at {x} degrees Celsius.",
                "Crates from {e} are held at {x} degrees Celsius.",
                "At what temperature is fruit from {e} stored?|How cold is the store for the {e} crop?",
                _slots(x=_dec(0, 4)),
                "Check the thermometer at every shift.",
            ),
            _attr(
                "Planting",
                "There are {n} trees per hectare.|Trees stand at {n} per hectare.",
                "{e} has {n} trees per hectare.",
                "How densely is {e} planted?|What is the tree density at {e}?",
                _slots(n=_n(400, 3500, 10)),
                "Gaps are replanted in the autumn.",
            ),
        ),
        words=_words(
            Verb="Clean|Check|Repair|Store|Inspect",
            part="ladder|sprayer|irrigation valve|fruit bin|pruning saw|bird net|windbreak|tractor trailer",
            manner="at the end of each day|before the frost|in dry weather|with the foreman",
            step="the first picking round|spraying|grading the fruit|closing the packhouse",
            person="orchard foreman|packhouse manager|grower",
            state="blunt|torn|blocked|damp",
            family="Ashby|Croft|Marsh|Penrose|Tilling|Yardley",
            size="largest|smallest|oldest|newest",
        ),
    ),
)

_FILLER = (
    "{Verb} the {part} {manner}.",
    "{Verb} the {part} before {step}.",
    "Ask the {person} whenever the {part} looks {state}.",
    "Never leave the {part} {state}.",
    "Write every change to the {part} into the log.",
    "The {person} checks the {part} after {step}.",
    "If the {part} seems {state}, stop and call the {person}.",
    "Only the {person} may sign off work on the {part}.",
)
_SAFETY = ("Before you start", "Protective equipment", "Emergencies", "Working alone", "Reporting incidents")


def _fill(rng: random.Random, words: Mapping[str, Sequence[str]], template: str, **extra: object) -> str:
    names = set(re.findall(r"{(\w+)}", template))
    values = {n: extra[n] if n in extra else rng.choice(words[n]) for n in sorted(names)}
    return template.format(**values)


def _filler(rng: random.Random, d: _Domain, n: int) -> list[str]:
    return [_fill(rng, d.words, rng.choice(_FILLER)) for _ in range(n)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _Writer:
    """Builds one handbook: its Markdown and its facts, each fact sentence unique in the whole set."""

    def __init__(self, rng: random.Random, domain: _Domain, name: str, used: set[str]) -> None:
        self.rng, self.d, self.name, self.used = rng, domain, name, used
        self.lines: list[str] = []
        self.facts: list[Fact] = []

    def section(self, level: int, heading: str, sentences: Sequence[str]) -> None:
        self.lines += ["#" * level + " " + heading, ""]
        if sentences:
            self.lines += [" ".join(sentences), ""]

    def fact_sentence(self, attr: _Attr, entity: str, noun: str, named: bool) -> tuple[str, dict[str, object]]:
        for _ in range(200):
            slots = attr.slots(self.rng)
            template = self.rng.choice(attr.named if named else attr.context)
            sentence = template.format(e=entity, noun=noun, **slots)
            if sentence not in self.used:
                self.used.add(sentence)
                return sentence, slots
        raise RuntimeError(f"no unused value left for {attr.heading!r}: widen its value range")

    def entity(self, entity: str, noun: str) -> None:
        rng, d = self.rng, self.d
        intro = [_fill(rng, d.words, rng.choice(d.intro), e=entity, noun=noun)] if rng.random() < 0.4 else []
        self.section(2, entity, intro)  # often a heading with nothing under it but its subsections
        attrs = rng.sample(d.attrs, rng.randint(4, min(7, len(d.attrs))))
        for attr in attrs:
            named = rng.random() < 0.25
            sentence, _ = self.fact_sentence(attr, entity, noun, named)
            extra = rng.choices((0, 1, 2, 3, 4, 5, 6), weights=(35, 14, 14, 10, 10, 9, 8))[0]
            notes = list(rng.sample(attr.notes, min(len(attr.notes), rng.randint(0, extra)))) if attr.notes else []
            body = notes + _filler(rng, d, extra - len(notes))
            body.insert(rng.randint(0, len(body)), sentence)
            fact_id = f"{self.name}-f{len(self.facts):02d}"
            self.facts.append(Fact(fact_id, self.name, entity, attr.heading, sentence, named, tiny=len(body) == 1))
            self.section(3, attr.heading, body)


def generate_structured_set(n_docs: int = 30, *, questions_per_doc: int = 6, seed: int = 0) -> StructuredSet:
    """``n_docs`` handbooks (domains in turn) with their facts and ``questions_per_doc`` questions each.

    A pure function of its arguments. At least a third of each handbook's questions (when it has such facts)
    ask about a fact that is the whole of a one-sentence section.
    """
    rng = random.Random(seed)
    used_sentences: set[str] = set()
    used_entities: set[str] = set()
    used_titles: set[str] = set()
    manuals: list[Manual] = []
    facts: dict[str, Fact] = {}
    questions: list[Question] = []
    for i in range(n_docs):
        d = _DOMAINS[i % len(_DOMAINS)]
        for attempt in range(100):
            picks = {k: rng.choice(v) for k, v in sorted(d.title_words.items())}
            title = d.title.format(**picks) + (f", Volume {i}" if attempt == 99 else "")
            if title not in used_titles:
                break
        used_titles.add(title)
        noun = str(picks.get("product", "")).lower()
        name = f"{i:02d}-{_slug(title)}"
        w = _Writer(rng, d, name, used_sentences)
        w.lines += [f"# {title}", ""]
        w.section(2, f"About this {d.kind}", _filler(rng, d, rng.randint(3, 7)))
        entities: list[str] = []
        n_entities = rng.randint(7, 13)
        while len(entities) < n_entities:
            e = d.entity(rng)
            if e not in used_entities:
                used_entities.add(e)
                entities.append(e)
        safety_at = rng.randint(1, len(entities) - 1)
        for j, e in enumerate(entities):
            if j == safety_at:
                w.section(2, "Safety", [])
                for h in rng.sample(_SAFETY, rng.randint(2, 3)):
                    w.section(3, h, _filler(rng, d, rng.randint(1, 3)))
            w.entity(e, noun)
        w.section(2, "Glossary", [])
        for part in rng.sample(d.words["part"], rng.randint(3, 5)):
            person = rng.choice(d.words["person"])
            w.section(3, part.capitalize(), [f"The {part} is looked after by the {person}."])
        w.section(2, "Revision history", [_fill(rng, d.words, "Updated by the {person} after {step}.")])
        text = "\n".join(w.lines).rstrip() + "\n"
        manuals.append(Manual(name, title, text))
        for f in w.facts:
            facts[f.id] = f
        tiny = [f for f in w.facts if f.tiny]
        chosen = rng.sample(tiny, min(len(tiny), max(1, questions_per_doc // 3)))
        rest = [f for f in w.facts if f not in chosen]
        chosen += rng.sample(rest, min(len(rest), questions_per_doc - len(chosen)))
        for f in chosen:
            attr = next(a for a in d.attrs if a.heading == f.attribute)
            text_q = rng.choice(attr.questions).format(e=f.entity, noun=noun)
            questions.append(Question(f"{name}-q{len(questions):03d}", text_q, f.id, name))
    _check(manuals, facts)
    return StructuredSet(manuals, facts, questions)


def _check(manuals: Sequence[Manual], facts: Mapping[str, Fact]) -> None:
    """Each fact's sentence appears exactly once in its handbook (relevance is "holds the sentence")."""
    text = {m.name: m.text for m in manuals}
    for f in facts.values():
        if text[f.doc].count(f.sentence) != 1:
            raise AssertionError(f"fact {f.id} appears {text[f.doc].count(f.sentence)} times in {f.doc}")
