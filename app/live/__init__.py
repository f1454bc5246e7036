"""Live recognition: watching cameras, tracking faces, the event log and the event sinks (webhooks) that send it on."""
