"""Named admin accounts (deployment admin key): who signs in to the admin page, with which rights."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.access.audit import Actor
from app.api.deps import AccountsDep, DeploymentAdminKey
from app.api.gate import GatedRoute
from app.core.schemas import AccountIn, AccountOut, AccountPatch, error_responses

router = APIRouter(tags=["admin accounts"], route_class=GatedRoute,
                   responses=error_responses(401, 403, 422, 429, 503))


@router.post("/admin-accounts", status_code=status.HTTP_201_CREATED, response_model=AccountOut,
             responses=error_responses(404, 409, 413), summary="Create a named admin account")
def create_account(accounts: AccountsDep, key: DeploymentAdminKey, body: AccountIn):
    """A deployment admin (`deployment_admin: true`), or `rights` per collection: `admin` changes anything in it,
    `viewer` looks and tries. The password is stored as an argon2id hash; it signs in on the admin page only."""
    return vars(accounts.create(body.name, body.password, deployment_admin=body.deployment_admin,
                                        rights=body.rights, actor=Actor.of_key(key)))


@router.get("/admin-accounts", response_model=list[AccountOut], summary="Every admin account and its rights")
def list_accounts(accounts: AccountsDep, _key: DeploymentAdminKey):
    """Names, rights and whether each is disabled; never a password or its hash."""
    return [vars(a) for a in accounts.list()]


@router.patch("/admin-accounts/{account_id}", response_model=AccountOut, responses=error_responses(404, 413),
              summary="Change an account's password, rights, or disable it")
def update_account(accounts: AccountsDep, key: DeploymentAdminKey, account_id: str, body: AccountPatch):
    """Only the fields sent change. A new password or disabling ends the account's sign-ins at once; a right taken
    away is gone from its next request."""
    return vars(accounts.update(account_id, password=body.password, deployment_admin=body.deployment_admin,
                                        rights=body.rights, disabled=body.disabled, actor=Actor.of_key(key)))


@router.delete("/admin-accounts/{account_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=error_responses(404), summary="Delete an admin account (its sign-ins end)")
def delete_account(accounts: AccountsDep, key: DeploymentAdminKey, account_id: str):
    """The audit log keeps what the account did, under its name."""
    accounts.delete(account_id, Actor.of_key(key))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
