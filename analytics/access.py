"""Who is asking: the principal every query and write is run as.

Scoping is applied in SQL by the query functions (``project_id IN (...)``), so no page, download
or CLI command can see rows of a project outside the principal's list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["owner", "member", "reader"]
ROLES: tuple[Role, ...] = ("owner", "member", "reader")


class AccessDenied(PermissionError):
    """The acting user may not do this; the message says why in plain words."""


@dataclass(frozen=True)
class Principal:
    """A user acting on the store. ``projects`` None means every project."""

    username: str
    role: Role
    projects: frozenset[str] | None = None

    @property
    def can_import(self) -> bool:
        return self.role in ("owner", "member")

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def require(self, action: str, *, owner_only: bool = False) -> None:
        """Raise ``AccessDenied`` unless this role may perform ``action``."""
        if owner_only and not self.is_owner:
            raise AccessDenied(f"Only an Owner can {action}; {self.username} is a {self.role}.")
        if not owner_only and not self.can_import:
            raise AccessDenied(f"A Reader cannot {action}; ask an Owner for the Member role.")

    def sees(self, project_id: str) -> bool:
        return self.projects is None or project_id in self.projects

    def cache_key(self) -> str:
        """A stable text for cache keys, so cached frames are never shared across scopes."""
        scope = ",".join(sorted(self.projects)) if self.projects is not None else "*"
        return f"{self.username}|{self.role}|{scope}"


SYSTEM = Principal("system", "owner", None)
"""The CLI acting on a store it has file access to: a shell user can read the database anyway."""
