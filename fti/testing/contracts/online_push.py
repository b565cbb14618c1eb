"""The online-store contract for rows pushed ahead of their offline commit (``fg.push``).

Mixed into a backend's contract test class beside
:class:`~fti.testing.contracts.online.OnlineStoreContract` (same ``online_store`` fixture)::

    class TestOnlineStores(OnlineStoreContract, PushedWritesContract): ...
"""

from __future__ import annotations

from fti.storage.online.base import OnlineStore
from fti.testing.contracts.online import at, values, write


class PushedWritesContract:
    """A write with ``version=None`` is visible at once and claims no applied version."""

    def test_a_write_without_a_version_leaves_the_applied_version(self, online_store: OnlineStore) -> None:
        # rows pushed ahead of their offline commit (fg.push): visible at once, no version claimed
        write(online_store, "new", {"id": [1], "ts": [at(1)], "v": [1]}, version=None)
        assert online_store.applied_version("new") is None
        assert values(online_store, "new", [1]) == [1]
        write(online_store, "t", {"id": [1], "ts": [at(1)], "v": [1]}, version=3)
        write(online_store, "t", {"id": [1, 2], "ts": [at(2), at(0)], "v": [2, 5]}, version=None)
        assert online_store.applied_version("t") == 3
        assert values(online_store, "t", [1, 2]) == [2, 5]
        # the offline commit of those rows re-applies them and records its version
        write(online_store, "t", {"id": [1], "ts": [at(2)], "v": [2]}, version=4)
        assert online_store.applied_version("t") == 4 and values(online_store, "t", [1]) == [2]
