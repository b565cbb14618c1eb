"""Tags of feature groups and feature views (``add_tag``, ``remove_tag``, ``tags``): one
implementation for both entities, over :mod:`fti.tags`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from fti.features._project import FeatureProject


class Tagged:
    """Mixed into an entity with a project, a catalog id and a name; ``_tag_kind`` names it to
    :mod:`fti.tags` (``"feature_group"``, ``"feature_view"``)."""

    _tag_kind: ClassVar[str]
    _project: FeatureProject

    if TYPE_CHECKING:

        @property
        def id(self) -> int: ...

        @property
        def name(self) -> str: ...

    def add_tag(self, tag: str) -> None:
        """Tag this version (e.g. ``"pii"``); see :mod:`fti.tags`."""
        from fti import tags

        tags.add(self._project, self._tag_kind, self.id, tag)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; NotFoundError when this version does not have it."""
        from fti import tags

        what = f"{self._tag_kind.replace('_', ' ')} {self.name!r}"
        tags.remove(self._project, self._tag_kind, self.id, tag, what=what)

    @property
    def tags(self) -> list[str]:
        """This version's tags, sorted."""
        from fti import tags

        return tags.tags_of(self._project, self._tag_kind, self.id)
