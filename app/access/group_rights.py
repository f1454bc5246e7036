"""What a company's sign-in grants: FACESHOT_ADMIN_GROUP_RIGHTS maps the groups an identity provider or a signing-in
reverse proxy names to faceshot's own rights (deployment admin; admin or viewer per collection).

    faceshot-admins=deployment_admin; warehouse-team=warehouse:admin; reception=default:viewer

Read again at every sign-in, so a person's rights follow their groups; a person whose groups grant nothing is
refused. Parsed at start, so a typo stops it rather than granting nothing (or too much) quietly.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import ValidationFailed

ROLES = ("admin", "viewer")
DEPLOYMENT_ADMIN = "deployment_admin"


@dataclass(frozen=True)
class Granted:
    deployment_admin: bool
    rights: dict[str, str]  # collection -> admin | viewer

    @property
    def anything(self) -> bool:
        return self.deployment_admin or bool(self.rights)


def parse_group_rights(spec: str) -> dict[str, list[str]]:
    """group -> what it grants (``deployment_admin`` or ``collection:role``), or ValidationFailed naming the entry."""
    mapping: dict[str, list[str]] = {}
    for entry in (e.strip() for e in (spec or "").split(";")):
        if not entry:
            continue
        group, sep, grant = (part.strip() for part in entry.partition("="))
        collection, colon, role = grant.partition(":")
        if not sep or not group or not (grant == DEPLOYMENT_ADMIN or (colon and collection and role in ROLES)):
            raise ValidationFailed(f"FACESHOT_ADMIN_GROUP_RIGHTS: {entry!r} is not `group=deployment_admin` or "
                                   "`group=collection:admin|viewer`", {"entry": entry})
        mapping.setdefault(group, []).append(grant)
    return mapping


def granted(groups: list[str], mapping: dict[str, list[str]]) -> Granted:
    """The rights ``groups`` bring together (admin wins over viewer in one collection)."""
    admin, rights = False, {}
    for group in groups:
        for grant in mapping.get(group, ()):
            if grant == DEPLOYMENT_ADMIN:
                admin = True
                continue
            collection, _, role = grant.partition(":")
            if rights.get(collection) != "admin":
                rights[collection] = role
    return Granted(admin, rights)
