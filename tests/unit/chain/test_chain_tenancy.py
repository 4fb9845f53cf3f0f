"""Chains are tenant data: a caller sees its own subtree's chains and nothing else."""

from __future__ import annotations

import pytest
from chain_fixtures import small_chain

from ironbridge.chain import ChainCatalog
from ironbridge.model import Conflict, InvalidInput, NotFound

GROUP = "/group/"
SUB_A = "/group/sub_a/"
SUB_B = "/group/sub_b/"


@pytest.fixture
def catalog() -> ChainCatalog:
    cat = ChainCatalog()
    cat.put(small_chain("sub_a", SUB_A), caller_path=SUB_A)
    cat.put(small_chain("sub_b", SUB_B), caller_path=GROUP)  # a parent may write for a child
    return cat


def test_owner_and_parent_see_the_chain(catalog: ChainCatalog) -> None:
    assert catalog.get("sub_a", "small", caller_path=SUB_A).tenant_id == "sub_a"
    assert catalog.get("sub_a", "small", caller_path=GROUP).tenant_id == "sub_a"
    assert [c.tenant_id for c in catalog.list(caller_path=GROUP)] == ["sub_a", "sub_b"]


def test_sibling_and_child_cannot_see(catalog: ChainCatalog) -> None:
    with pytest.raises(NotFound):
        catalog.get("sub_a", "small", caller_path=SUB_B)
    assert [c.tenant_id for c in catalog.list(caller_path=SUB_B)] == ["sub_b"]
    with pytest.raises(NotFound):
        catalog.delete("sub_a", "small", caller_path=SUB_B)
    # a near-prefix is not an ancestor: "/group/sub" must not see "/group/sub_a/"
    assert catalog.list(caller_path="/group/sub") == []
    assert catalog.list(caller_path="/group/sub/") == []
    with pytest.raises(NotFound):
        catalog.get("sub_a", "small", caller_path="/group/sub")


def test_cannot_write_into_another_tenant() -> None:
    cat = ChainCatalog()
    with pytest.raises(NotFound):
        cat.put(small_chain("sub_a", SUB_A), caller_path=SUB_B)
    assert cat.list(caller_path=GROUP) == []


def test_same_tenant_id_with_another_path_conflicts(catalog: ChainCatalog) -> None:
    with pytest.raises(Conflict):
        catalog.put(small_chain("sub_a", "/other/sub_a/"), caller_path="/other/")


def test_delete_and_visible_to(catalog: ChainCatalog) -> None:
    chain = catalog.get("sub_b", "small", caller_path=SUB_B)
    assert chain.visible_to(GROUP)
    assert chain.visible_to(SUB_B)
    assert not chain.visible_to(SUB_A)
    catalog.delete("sub_b", "small", caller_path=GROUP)
    with pytest.raises(NotFound):
        catalog.get("sub_b", "small", caller_path=GROUP)


def test_chain_path_must_end_with_its_tenant() -> None:
    with pytest.raises(InvalidInput) as exc:
        small_chain("sub_a", "/group/sub_b/")
    assert exc.value.field == "chain.tenant_path"


def test_asset_links_follow_the_chain(catalog: ChainCatalog) -> None:
    catalog.set_asset_links("sub_a", "small", "cellX", ["p2", "p1", "p1"], caller_path=GROUP)
    assert catalog.asset_links("sub_a", "small", caller_path=SUB_A) == {"cellX": ("p1", "p2")}
    with pytest.raises(NotFound):
        catalog.asset_links("sub_a", "small", caller_path=SUB_B)
    with pytest.raises(NotFound):
        catalog.set_asset_links("sub_a", "small", "nobody", ["p1"], caller_path=SUB_A)
    head = catalog.header("sub_a", "small", caller_path=SUB_A)
    catalog.put(small_chain("sub_a", SUB_A), caller_path=SUB_A)
    assert catalog.header("sub_a", "small", caller_path=SUB_A).revision == head.revision + 1
    assert [h.n_enterprises for h in catalog.summaries(caller_path=SUB_A)] == [6]
    catalog.set_asset_links("sub_a", "small", "cellX", [], caller_path=SUB_A)
    assert catalog.asset_links("sub_a", "small", caller_path=SUB_A) == {}
