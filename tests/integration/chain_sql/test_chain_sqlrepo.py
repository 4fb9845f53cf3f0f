"""SqlChainRepository on the migrated registry database, SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from harness import require
from ironbridge.chain import (
    DEMO_CHAIN_NAME,
    Chain,
    Component,
    Enterprise,
    SqlChainRepository,
    SupplyLink,
    demo_chain,
    install_demo_chain,
    tables,
)
from ironbridge.model import Conflict, NotFound
from ironbridge.store.sql import SqlRegistry

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _postgres_url() -> Iterator[str]:
    import psycopg

    name = f"ib_chain_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        require(False, f"PostgreSQL at 127.0.0.1:5432 ({exc})", "start PostgreSQL with trust auth")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlRegistry]:
    """A registry database migrated by Alembic (chain_0001 included), one per backend."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter(
            [f"sqlite:///{tmp_path_factory.mktemp('chain_sql') / 'registry.sqlite3'}"]
        )
    else:
        urls = _postgres_url()
    reg = SqlRegistry.open(next(urls))
    try:
        yield reg
    finally:
        reg.close()
        for _ in urls:  # drops the PostgreSQL database
            pass


@pytest.fixture
def repo(registry: SqlRegistry) -> SqlChainRepository:
    """The repository over empty chain tables."""
    with registry.engine.begin() as conn:
        for table in reversed(tables.metadata.sorted_tables):
            conn.execute(table.delete())
    return SqlChainRepository(registry.engine)


ROOT, SUB_A, SUB_B = "/root/", "/root/sub_a/", "/root/sub_b/"


def _tiny(tenant_id: str, path: str, name: str = "tiny") -> Chain:
    return Chain(
        name=name,
        tenant_id=tenant_id,
        tenant_path=path,
        components=(
            Component(id="V", name="vehicle"),
            Component(id="P", name="pack", parent_id="V"),
        ),
        enterprises=(
            Enterprise(
                id="oem", name="OEM", province="Shandong", components=("V",), is_leader=True
            ),
            Enterprise(
                id="pk", name="Pack", province="Jiangsu", lat=31.2, lon=120.6, components=("P",)
            ),
        ),
        links=(SupplyLink(supplier_id="pk", customer_id="oem", component_id="P", value_cny=5.0),),
    )


def test_round_trip_of_the_demo_chain(repo: SqlChainRepository) -> None:
    chain = demo_chain(tenant_id="root", tenant_path=ROOT)
    repo.put(chain, caller_path=ROOT)
    assert repo.get("root", chain.name, caller_path=ROOT) == chain
    head = repo.header("root", chain.name, caller_path=ROOT)
    assert (head.revision, head.n_enterprises, head.n_links) == (
        1,
        len(chain.enterprises),
        len(chain.links),
    )


def test_replace_bumps_revision_and_keeps_links_of_remaining_firms(
    repo: SqlChainRepository,
) -> None:
    chain = _tiny("root", ROOT)
    repo.put(chain, caller_path=ROOT)
    repo.set_asset_links("root", "tiny", "pk", ["plant-1", "plant-2"], caller_path=ROOT)
    repo.set_asset_links("root", "tiny", "oem", ["hq"], caller_path=ROOT)
    assert repo.asset_links("root", "tiny", caller_path=ROOT) == {
        "oem": ("hq",),
        "pk": ("plant-1", "plant-2"),
    }
    without_oem_links = replace(chain, links=())
    repo.put(without_oem_links, caller_path=ROOT)
    assert repo.header("root", "tiny", caller_path=ROOT).revision == 2
    assert repo.get("root", "tiny", caller_path=ROOT).links == ()
    # drop the pack maker: its asset links go with it
    smaller = replace(chain, enterprises=chain.enterprises[:1], links=())
    repo.put(smaller, caller_path=ROOT)
    assert repo.asset_links("root", "tiny", caller_path=ROOT) == {"oem": ("hq",)}
    with pytest.raises(NotFound):
        repo.set_asset_links("root", "tiny", "pk", ["x"], caller_path=ROOT)
    repo.set_asset_links("root", "tiny", "oem", [], caller_path=ROOT)
    assert repo.asset_links("root", "tiny", caller_path=ROOT) == {}


def test_tenant_scoping(repo: SqlChainRepository) -> None:
    repo.put(_tiny("sub_a", SUB_A), caller_path=SUB_A)
    repo.put(_tiny("sub_b", SUB_B), caller_path=ROOT)  # a parent writes for a child
    with pytest.raises(NotFound):
        repo.put(_tiny("root", ROOT, "up"), caller_path=SUB_A)  # never upwards
    assert [(h.tenant_id, h.name) for h in repo.summaries(caller_path=ROOT)] == [
        ("sub_a", "tiny"),
        ("sub_b", "tiny"),
    ]
    assert [h.tenant_id for h in repo.summaries(caller_path=SUB_B)] == ["sub_b"]
    # LIKE wildcards in paths are literal: "/root/sub_/" is not a prefix of "/root/sub_a/"
    assert repo.summaries(caller_path="/root/sub_/") == []
    assert repo.summaries(caller_path="/root/sub%/") == []
    assert repo.summaries(caller_path="/root/sub") == []
    for call in (
        lambda: repo.get("sub_a", "tiny", caller_path=SUB_B),
        lambda: repo.header("sub_a", "tiny", caller_path=SUB_B),
        lambda: repo.asset_links("sub_a", "tiny", caller_path=SUB_B),
        lambda: repo.set_asset_links("sub_a", "tiny", "oem", [], caller_path=SUB_B),
        lambda: repo.delete("sub_a", "tiny", caller_path=SUB_B),
    ):
        with pytest.raises(NotFound):
            call()
    # same owner and name under another path is a conflict, not a silent move
    with pytest.raises(Conflict):
        repo.put(_tiny("sub_a", "/root/sub_b/sub_a/"), caller_path=ROOT)
    repo.delete("sub_a", "tiny", caller_path=ROOT)
    with pytest.raises(NotFound):
        repo.get("sub_a", "tiny", caller_path=ROOT)
    assert repo.list(caller_path=ROOT) == [_tiny("sub_b", SUB_B)]


def test_install_demo_chain_once(repo: SqlChainRepository) -> None:
    assert install_demo_chain(repo, tenant_id="root", tenant_path=ROOT) is True
    assert install_demo_chain(repo, tenant_id="root", tenant_path=ROOT) is False
    chain = repo.get("root", DEMO_CHAIN_NAME, caller_path=ROOT)
    assert len(chain.enterprises) == len(demo_chain().enterprises)


def test_ten_thousand_firms_load_in_seconds(repo: SqlChainRepository) -> None:
    """Not a timing assertion: a generous bound that catches per-row round trips."""
    base = demo_chain(tenant_id="root", tenant_path=ROOT)
    firms = list(base.enterprises)
    links = list(base.links)
    for i in range(10_000 - len(firms)):
        src = base.enterprises[3 + i % (len(base.enterprises) - 3)]
        clone = replace(src, id=f"{src.id}-X{i}", name=f"{src.name} #{i}", is_leader=False)
        firms.append(clone)
        buyer = base.enterprises[i % 3]
        links.append(
            SupplyLink(
                supplier_id=clone.id,
                customer_id=buyer.id,
                component_id=clone.components[0],
                volume_share=0.01,
                value_cny=1.0,
            )
        )
    big = replace(base, name="big", enterprises=tuple(firms), links=tuple(links))
    start = time.perf_counter()
    repo.put(big, caller_path=ROOT)
    assert repo.get("root", "big", caller_path=ROOT) == big
    assert time.perf_counter() - start < 60
