"""Federation: the XMPP server-to-server side (streams, dialback, outbox, policy)."""
