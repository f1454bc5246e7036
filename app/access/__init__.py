"""Who may do what: API keys, admin accounts, the audit log, rate limits."""
