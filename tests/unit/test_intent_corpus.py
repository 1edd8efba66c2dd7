from __future__ import annotations

import collections
import re

import pytest

from netgpt.cloud_models.corpus import JARGON, corpus_name_tables, held_out_texts, normalized
from netgpt.cloud_models.intent_draft import draft_from_intent, draft_json, intent_from_draft
from netgpt.edge_models import intent_corpus as ic
from netgpt.edge_models.intent_corpus import LabeledRequest, generate_requests, lexicon_report
from netgpt.edge_models.intent_tagging import tag_request

pytestmark = pytest.mark.unit

KINDS = {"reachability", "access", "waypoint", "load_balancing", "bandwidth",
         "utilization_ceiling", "latency", "slo"}


@pytest.fixture(scope="module")
def tables() -> dict:
    return corpus_name_tables()


@pytest.fixture(scope="module")
def campus_train() -> list[tuple[LabeledRequest, list[tuple[str, str]]]]:
    samples, _ = ic._generate("campus", 400, split="train", seed=11, table=None, jargon=None)
    return samples


@pytest.fixture(scope="module")
def campus_heldout() -> list[tuple[LabeledRequest, list[tuple[str, str]]]]:
    samples, _ = ic._generate("campus", 400, split="heldout", seed=11, table=None, jargon=None)
    return samples


def test_same_seed_same_output_and_seeds_differ() -> None:
    a = generate_requests("abilene", 40, split="train", seed=3)
    b = generate_requests("abilene", 40, split="train", seed=3)
    c = generate_requests("abilene", 40, split="train", seed=4)
    assert len(a) == 40
    assert a == b
    assert [r.text for r in a] != [r.text for r in c]


@pytest.mark.parametrize("split", ["train", "heldout"])
@pytest.mark.parametrize("topology", ["campus", "abilene", "netconfeval"])
def test_every_draft_validates_in_canonical_form(tables: dict, topology: str, split: str) -> None:
    if topology not in tables:
        pytest.skip("NetConfEval data is not present")
    requests = generate_requests(topology, 60, split=split, seed=5)  # type: ignore[arg-type]
    assert len(requests) == 60
    for r in requests:
        assert (r.topology, r.split, r.source) == (topology, split, "generated")
        intent = intent_from_draft(r.draft, tables[topology])
        assert draft_from_intent(intent) == r.draft
        assert r.text and r.text == r.text.strip()
        assert "\x01" not in r.text and "\x02" not in r.text


def test_netconfeval_is_device_to_prefix_only(tables: dict) -> None:
    if "netconfeval" not in tables:
        pytest.skip("NetConfEval data is not present")
    for r in generate_requests("netconfeval", 60, split="train", seed=2):
        for e in r.draft["expectations"]:
            assert e["kind"] in {"reachability", "waypoint", "load_balancing"}
            assert e["source"].startswith("device:")
            assert re.fullmatch(r"prefix:100\.0\.\d+\.0/24", e["destination"])


def test_partition_is_deterministic_and_covers_both_splits() -> None:
    report = lexicon_report()
    assert report == lexicon_report()
    assert any(name.startswith("frame.") for name in report)
    held = sum(r["heldout"] for r in report.values())
    total = sum(r["train"] + r["heldout"] for r in report.values())
    assert 0.15 < held / total < 0.35
    for name, counts in report.items():
        assert counts["train"] + counts["heldout"] >= 4, name
        assert counts["heldout"] >= 1, name
        assert counts["train"] >= 1, name
    # the split of an entry depends on the entry alone (a stable hash), not on list order
    parts = ic._partition()
    for name, entries in ic._GRAMMAR.items():
        assert set(parts[name]["train"]) | set(parts[name]["heldout"]) == set(entries)
        assert not set(parts[name]["train"]) & set(parts[name]["heldout"])


@pytest.mark.parametrize("fixture", ["campus_train", "campus_heldout"])
def test_samples_draw_only_their_own_split(request: pytest.FixtureRequest, fixture: str) -> None:
    samples = request.getfixturevalue(fixture)
    parts = ic._partition()
    frames_seen = set()
    for r, used in samples:
        assert used
        for name, entry in used:
            assert entry in parts[name][r.split], (name, entry)
            if name.startswith("frame."):
                frames_seen.add(entry)
    assert len(frames_seen) >= 10


def _heldout_only_phrases() -> set[str]:
    """Heldout entries of word lists that no train entry (of any list) contains."""
    parts = ic._partition()
    train_text = " | ".join(e.lower() for p in parts.values() for e in p["train"])
    names = " ".join(n.lower() for t in corpus_name_tables().values()
                     for n in (*t.devices, *t.sites, *t.groups, *t.services))
    out = set()
    for name, p in parts.items():
        if name.startswith("frame.") or name == "lex.arrow":
            continue
        for entry in p["heldout"]:
            phrase = entry.strip().lower()
            if "{" in phrase or len(phrase) < 5 or phrase in train_text or phrase in names:
                continue
            out.add(phrase)
    return out


def test_train_texts_never_contain_heldout_only_phrases(
    campus_train: list[tuple[LabeledRequest, list[tuple[str, str]]]],
    campus_heldout: list[tuple[LabeledRequest, list[tuple[str, str]]]],
) -> None:
    phrases = _heldout_only_phrases()
    assert len(phrases) >= 30

    def hits(texts: list[str]) -> collections.Counter[str]:
        found: collections.Counter[str] = collections.Counter()
        for text in texts:
            low = text.lower()
            for p in phrases:
                if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", low):
                    found[p] += 1
        return found

    train_hits = hits([r.text for r, _ in campus_train])
    assert not train_hits, train_hits.most_common(5)
    held_hits = hits([r.text for r, _ in campus_heldout])
    assert len(held_hits) >= 15  # the check has power: heldout texts do use these phrases


def test_every_kind_appears_for_campus(
    campus_train: list[tuple[LabeledRequest, list[tuple[str, str]]]],
    campus_heldout: list[tuple[LabeledRequest, list[tuple[str, str]]]],
) -> None:
    for samples in (campus_train, campus_heldout):
        assert len(samples) == 400
        kinds = collections.Counter(e["kind"] for r, _ in samples
                                    for e in r.draft["expectations"])
        assert set(kinds) == KINDS
        two = sum(len(r.draft["expectations"]) == 2 for r, _ in samples)
        assert 0.05 < two / len(samples) < 0.2
        prioritized = sum(r.draft["priority"] != 5 for r, _ in samples)
        assert 0.03 < prioritized / len(samples) < 0.15
        assert len({r.text for r, _ in samples}) > 390


def test_held_out_benchmark_texts_are_never_emitted(
    campus_train: list[tuple[LabeledRequest, list[tuple[str, str]]]],
) -> None:
    held = held_out_texts()
    assert not [r.text for r, _ in campus_train if normalized(r.text) in held]


_RATE = re.compile(
    r"\d+(\.\d+)? ?(Mbps|mbps|Mbit/s|Mb/s|megabits per second|megabit/s|megs|meg|Gbps|Gbit/s|"
    r"gigabits per second|gig|G|kbps|Kbit/s)\b")


def test_rates_use_the_tagger_spellings(
    campus_train: list[tuple[LabeledRequest, list[tuple[str, str]]]],
) -> None:
    checked = 0
    for r, _ in campus_train:
        exps = r.draft["expectations"]
        if len(exps) == 1 and exps[0]["kind"] == "bandwidth":
            assert _RATE.search(r.text), r.text
            checked += 1
    assert checked >= 20


def test_jargon_samples_use_site_words_and_keep_canonical_names(tables: dict) -> None:
    jargon = JARGON["campus"]
    requests = generate_requests("campus", 60, split="train", seed=9, jargon=jargon)
    assert len(requests) == 60
    for r in requests:
        assert r.source == "jargon"
        low = r.text.lower()
        used = [name for name, words in jargon.items() if any(w in low for w in words)]
        assert used, r.text
        labels = draft_json(r.draft)
        assert any(f":{name}\"" in labels for name in used), (r.text, labels)
        intent_from_draft(r.draft, tables["campus"])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="topology"):
        generate_requests("nowhere", 3, split="train", seed=0)
    with pytest.raises(ValueError, match="split"):
        generate_requests("campus", 3, split="test", seed=0)  # type: ignore[arg-type]
    assert generate_requests("campus", 0, split="train", seed=0) == []


def test_novel_words_stand_in_for_lexical_entries_only(tables: dict) -> None:
    plain = generate_requests("campus", 80, split="train", seed=21)
    assert not any(ic.NOVEL_WORD in r.text for r in plain)
    samples, _ = ic._generate("campus", 80, split="train", seed=21, table=None, jargon=None,
                              novel_share=0.3)
    assert samples == ic._generate("campus", 80, split="train", seed=21, table=None,
                                   jargon=None, novel_share=0.3)[0]
    novel = [r for r, _ in samples if ic.NOVEL_WORD in r.text]
    assert len(novel) > 40
    hidden: collections.Counter[str] = collections.Counter()
    for r, used in samples:
        intent_from_draft(r.draft, tables["campus"])  # labels still validate
        hidden.update(name.split(".")[0] for name, entry in used if ic.NOVEL_WORD in entry)
    assert hidden["lex"] and hidden["np"] and not hidden["frame"]  # frames keep their words
    for _, used in samples:  # a priority said in words is a value of the label: never hidden
        assert not any(n.startswith("lex.prio") and ic.NOVEL_WORD in e for n, e in used)
    # names and quantities are never hidden: the tagger still finds every endpoint of a label
    found = 0
    for r, _ in samples:
        labels = set(re.findall(r'"((?:group|site|device|prefix):[^"]+)"', draft_json(r.draft)))
        tagged = tag_request(r.text, tables["campus"])
        found += labels <= {str(m.value) for m in tagged.of_kind("endpoint") if m.mentioned}
    assert found >= 0.95 * len(samples)
    with pytest.raises(ValueError, match="novel_share"):
        generate_requests("campus", 3, split="train", seed=0, novel_share=1.0)


def test_custom_table_with_a_name_of_two_kinds() -> None:
    from netgpt.intents.names import NameTable

    table = NameTable.from_names(devices=["edge", "r2", "r3"], sites=["edge", "west"],
                                 groups=["staff", "guests"], services=["ssh", "web"])
    requests = generate_requests("custom", 40, split="heldout", seed=1, table=table)
    assert len(requests) == 40
    for r in requests:
        assert draft_from_intent(intent_from_draft(r.draft, table)) == r.draft


def test_abilene_jargon() -> None:
    requests = generate_requests("abilene", 30, split="heldout", seed=1,
                                 jargon=JARGON["abilene"])
    assert len(requests) == 30
    assert all(r.source == "jargon" for r in requests)
