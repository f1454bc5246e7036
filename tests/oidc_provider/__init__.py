"""A real OpenID Connect provider (panva's oidc-provider on Node.js) for the admin sign-in tests (issue 31)."""
