"""The personalized generative service's edge stage: directory, corpus, prompt model, training."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netgpt.edge_models.prompt_corpus import (
    BENCHMARK,
    _partition,
    generate_prompt_requests,
    personalization_set,
    request_words,
)
from netgpt.edge_models.prompt_model import (
    END,
    NONE,
    EdgePromptModel,
    SpellingVocabulary,
    render_prompt,
    slots,
)
from netgpt.edge_models.prompt_training import PromptModelSettings, train_global
from netgpt.errors import ConfigError
from netgpt.generative.base import LocalService, PromptCompleter, SiteContext
from netgpt.generative.directory import directory_from_mapping, load_directory, site_context
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit
DIRECTORY = load_directory()
CAMPUS = build_topology("campus")
ABILENE = build_topology("abilene")
NOON = datetime(2025, 3, 4, 14, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> EdgePromptModel:
    loaded = EdgePromptModel.load_shipped()
    assert loaded is not None, "the shipped prompt model weights are missing"
    return loaded


# -- directory -------------------------------------------------------------------------------

def test_site_context_time_zones_devices_and_services() -> None:
    north = site_context(CAMPUS, "north", at=NOON, network=("uplink 40% busy",))
    assert (north.device, north.local_time, north.utc_offset_h) == ("acc1", "14:05", 0.0)
    assert north.services[0].name == "print-north-lib" and north.network == ("uplink 40% busy",)
    assert site_context(CAMPUS, "datacenter", at=NOON).device == "core1"  # no access switch
    nyc = site_context(ABILENE, "New York", at=NOON)
    assert (nyc.device, nyc.local_time, nyc.utc_offset_h) == ("NYCMng", "09:05", -5.0)
    # the directory overrides round(lon / 15) = -6 for Indianapolis; naive times are UTC
    indy = site_context(ABILENE, "Indianapolis", at=NOON.replace(tzinfo=None))
    assert (indy.local_time, indy.utc_offset_h) == ("09:05", -5.0)
    la = site_context(ABILENE, "Los Angeles", at=NOON.astimezone(timezone(timedelta(hours=2))))
    assert la.local_time == "06:05"
    assert site_context(CAMPUS, "north", at=NOON, device="acc3").device == "acc3"


def test_site_context_errors_name_the_known_values() -> None:
    with pytest.raises(ConfigError, match=r"no site 'west'.*datacenter, north, south"):
        site_context(CAMPUS, "west", at=NOON)
    with pytest.raises(ConfigError, match=r"not at site 'north'.*acc1"):
        site_context(CAMPUS, "north", at=NOON, device="acc5")
    with pytest.raises(ConfigError, match=r"no topology 'linear,3'.*abilene, campus"):
        site_context(build_topology("linear,3"), "r1", at=NOON)


def test_directory_checks_its_file() -> None:
    assert set(DIRECTORY.topologies()) == {"campus", "abilene"}
    assert len(DIRECTORY.sites("abilene")) == 11  # Atlanta's two PoP routers are one site
    service = {"name": "p1", "kind": "printing", "where": "here"}
    good = {"kinds": ["printing"], "topologies": {"t": {"s": {"services": [service] * 1}}}}
    with pytest.raises(ConfigError, match="1 services; a site needs 4 to 8"):
        directory_from_mapping(good)
    bad_kind = {"kinds": ["printing"], "topologies": {"t": {"s": {
        "services": [{**service, "name": f"p{i}", "kind": "teleport"} for i in range(4)]}}}}
    with pytest.raises(ConfigError, match="kind 'teleport'; known kinds: printing"):
        directory_from_mapping(bad_kind)
    for entry in DIRECTORY.entries:  # site words say nothing their service's slot says
        for word in entry.words:
            slot = set(request_words(f"{word.service} {entry.service(word.service).where}"))
            assert not set(request_words(word.phrase)) - {"the"} & slot, word


# -- corpus ----------------------------------------------------------------------------------

def test_heldout_phrasings_are_disjoint_from_train() -> None:
    for name, parts in _partition().items():
        assert not set(parts["train"]) & set(parts["heldout"]), name
        assert parts["train"] and parts["heldout"], name
    train = {" ".join(request_words(x.request))
             for x in generate_prompt_requests("campus", 3000, split="train", seed=3)}
    held = [" ".join(request_words(x.request))
            for x in generate_prompt_requests("campus", 300, split="heldout", seed=3)]
    assert sum(h in train for h in held) / len(held) < 0.03  # only chance collisions ("video")


def test_labels_point_into_the_offered_list() -> None:
    examples = (generate_prompt_requests("abilene", 300, split="train", vary=True, seed=1)
                + personalization_set("campus", n=80, seed=2) + list(BENCHMARK))
    for ex in examples:
        offered = {s.name for s in ex.offered}
        assert set(ex.services) <= offered and len(ex.services) <= 2, ex
    assert {x.source for x in personalization_set("abilene", n=40)} == {"generated", "site-words"}
    assert len(personalization_set("campus", split="benchmark", n=100)) == 21
    assert any(not ex.services for ex in examples)  # requests that need no local service
    # the same arguments give the same requests
    assert (generate_prompt_requests("campus", 20, seed=5)
            == generate_prompt_requests("campus", 20, seed=5))


# -- the model -------------------------------------------------------------------------------

def test_protocol_and_printer_at_north(model: EdgePromptModel) -> None:
    assert isinstance(model, PromptCompleter)
    context = site_context(CAMPUS, "north", at=NOON, network=("18 ms to the cloud",))
    done = model.complete("printer?", context)
    assert len(done.services) == 1
    assert context.service(done.services[0]).kind == "printing"
    assert "site north" in done.text and "14:05 (UTC+0)" in done.text
    assert done.services[0] in done.text and "18 ms to the cloud" in done.text
    assert 0 < done.confidence <= 1 and done.elapsed_s < 1.0


def test_nothing_local_still_completes_site_and_time(model: EdgePromptModel) -> None:
    context = site_context(ABILENE, "Chicago", at=NOON)
    done = model.complete("what time is it", context, use_adapter=False)
    assert done.services == () and done.adapter is None
    assert done.text.startswith("I am at site Chicago (attached at CHINng), local time 08:05")


@settings(max_examples=40, deadline=None)
@given(words=st.lists(st.sampled_from(["printer", "wifi", "pod", "the", "xq", "zzzz", "lunch",
                                       "annex", "video", "and", "storage", "help"]),
                      min_size=1, max_size=12),
       picks=st.lists(st.integers(0, 200), min_size=1, max_size=10, unique=True))
def test_decoding_only_points_at_existing_slots(model: EdgePromptModel, words: list[str],
                                                picks: list[int]) -> None:
    every = [s for e in DIRECTORY.entries for s in e.services]
    services = [every[i % len(every)] for i in dict.fromkeys(p % len(every) for p in picks)]
    choice = model.choose(" ".join(words), services)
    offered = slots(services)
    assert set(choice.services) <= {s.name for s in offered.values()}
    assert len(set(choice.services)) == len(choice.services) <= 2
    assert choice.tokens[-1] == END
    assert all(t in offered or t in (NONE, END) for t in choice.tokens)


def test_spelling_and_bad_requests(model: EdgePromptModel) -> None:
    vocab = model.vocabulary
    assert isinstance(vocab, SpellingVocabulary)
    assert vocab.word_id("pritner") == vocab.word_id("printer") != vocab.unk_id
    assert vocab.word_id("qqqqqq") == vocab.unk_id
    context = site_context(CAMPUS, "south", at=NOON)
    for bad in ("", "  ?! ", "printer " * 41, "x" * 401):
        with pytest.raises(ConfigError, match="request"):
            model.complete(bad, context)


def test_render_prompt_is_deterministic() -> None:
    context = SiteContext("north", "acc2", "07:30", 5.5, (LocalService("p", "printing", "B2",
                                                                        1, "down"),))
    text = render_prompt("  printer   broken ", context, context.services)
    assert text == ("I am at site north (attached at acc2), local time 07:30 (UTC+5.5). "
                    "Printer broken. Relevant here: p (printing) at B2, 1 hop, down.")


def test_adapters_load_unload_and_learn_site_words(model: EdgePromptModel) -> None:
    from peft import PeftModel

    with pytest.raises(ConfigError, match="no prompt adapter for site 'Atlantis'"):
        model.load_adapter("Atlantis")
    context = site_context(ABILENE, "New York", at=NOON)
    done = model.complete("the pod is slow", context)
    assert done.adapter == "New York" and "new-york" in model.loaded_adapters
    assert model.complete("the pod is slow", context, use_adapter=False).adapter is None
    heldout = generate_prompt_requests("abilene", 8, split="heldout", site="New York",
                                       site_words=True, seed=11)

    def right(adapter: str | None) -> int:
        return sum(set(model.choose(x.request, x.offered, adapter=adapter).services)
                   == set(x.services) for x in heldout)

    assert right("New York") > right(None)
    model.load_adapter("Seattle")
    model.unload_adapter("New York")  # another one stays attached
    assert "new-york" not in model.loaded_adapters and isinstance(model.net, PeftModel)
    seattle = site_context(ABILENE, "Seattle", at=NOON)
    assert model.complete("the needle is lagging", seattle).adapter == "Seattle"
    for key in model.loaded_adapters:
        model.unload_adapter(key)
    assert model.loaded_adapters == [] and not isinstance(model.net, PeftModel)


def test_training_lowers_the_loss_on_a_tiny_corpus() -> None:
    s = PromptModelSettings(n_layer=1, n_embd=32, n_head=2, n_positions=96, steps=100,
                            batch_size=16, warmup=5, lr=3e-3)
    examples = generate_prompt_requests("campus", 200, split="train", seed=0)
    net, vocab, losses = train_global(examples, s, DIRECTORY)
    assert len(losses) == 2 and losses[-1] < losses[0] * 0.8
    assert len(vocab.get_vocab()) > 50 and net.config.n_layer == 1
