//! Schema migrations, applied in order, each once, inside one transaction.
//!
//! A migration is written once; `{bigint}` and `{bytes}` become the
//! backend's spelling. Never edit a released migration: add a new one.

/// The backend a migration is rendered for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// One schema change.
pub(super) struct Migration(&'static str);

impl Migration {
    pub(super) fn render(&self, dialect: Dialect) -> String {
        let (bigint, bytes) = match dialect {
            Dialect::Sqlite => ("INTEGER", "BLOB"),
            Dialect::Postgres => ("BIGINT", "BYTEA"),
        };
        self.0.replace("{bigint}", bigint).replace("{bytes}", bytes)
    }
}

/// Every migration, oldest first; the schema version is the count applied.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration(
        "
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at {bigint} NOT NULL
);
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subtype TEXT,
    agent_id TEXT REFERENCES agents(id),
    created_at {bigint} NOT NULL
);
CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subtype TEXT,
    agent_id TEXT REFERENCES agents(id),
    resource_name TEXT REFERENCES resources(name),
    attributes TEXT NOT NULL,
    secret {bytes} NOT NULL,
    created_at {bigint} NOT NULL,
    updated_at {bigint} NOT NULL
);
CREATE INDEX connections_agent ON connections (agent_id);
CREATE TABLE plugins (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE plugin_connections (
    plugin TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    config TEXT NOT NULL,
    PRIMARY KEY (plugin, connection_id)
);
CREATE TABLE user_groups (
    name TEXT PRIMARY KEY
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    groups TEXT NOT NULL,
    created_at {bigint} NOT NULL
);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at {bigint} NOT NULL
);
",
    ),
    Migration(
        "
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    user_email TEXT NOT NULL,
    connection_id TEXT,
    connection_name TEXT NOT NULL,
    access_mode TEXT NOT NULL,
    protocol TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    started_at {bigint} NOT NULL,
    ended_at {bigint},
    bytes_in {bigint} NOT NULL,
    bytes_out {bigint} NOT NULL
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE TABLE session_events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq {bigint} NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
",
    ),
    Migration(
        "
CREATE TABLE guardrails (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    input_rules TEXT NOT NULL,
    output_rules TEXT NOT NULL,
    created_at {bigint} NOT NULL,
    updated_at {bigint} NOT NULL
);
",
    ),
    // Session events are stored a batch to a row (JSON lines), as the
    // agent sends them: one insert per statement made recording the
    // store's bottleneck. Existing events become batches of one.
    Migration(
        "
CREATE TABLE session_event_batches (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    first_seq {bigint} NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (session_id, first_seq)
);
INSERT INTO session_event_batches (session_id, first_seq, events)
    SELECT session_id, seq, event FROM session_events;
DROP TABLE session_events;
",
    ),
    // The agent that served a session: only it may send the session's
    // events outside the session's own stream (again, after a relink).
    Migration(
        "
ALTER TABLE sessions ADD COLUMN agent_id TEXT;
",
    ),
    // Names that differ only in case name one thing to a person (`ADMIN`
    // beside `admin`), so they are unique regardless of case. Identifiers
    // and e-mail addresses are ASCII, which both backends' `lower` folds
    // alike; guardrail names may not be, and SQLite folds only ASCII
    // letters where PostgreSQL folds them all. A store already holding two
    // such names fails this migration: rename one with the previous
    // version first.
    Migration(
        "
CREATE UNIQUE INDEX agents_name_nocase ON agents (lower(name));
CREATE UNIQUE INDEX resources_name_nocase ON resources (lower(name));
CREATE UNIQUE INDEX connections_name_nocase ON connections (lower(name));
CREATE UNIQUE INDEX guardrails_name_nocase ON guardrails (lower(name));
CREATE UNIQUE INDEX user_groups_name_nocase ON user_groups (lower(name));
CREATE UNIQUE INDEX users_email_nocase ON users (lower(email));
",
    ),
    // Reviews (access requests): a one-time exec held until approved, or
    // time-boxed connect access. `revision` counts the changes: a change
    // is made only on the revision it read, and each one is recorded once
    // in `review_events` (who, when, what), the audit of its transitions.
    Migration(
        "
CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    connection_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_email TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    input TEXT,
    output_format TEXT,
    access_duration_sec {bigint},
    time_window TEXT,
    review_groups TEXT NOT NULL,
    min_approvals {bigint},
    session_id TEXT,
    output TEXT,
    exit_code {bigint},
    error TEXT,
    created_at {bigint} NOT NULL,
    updated_at {bigint} NOT NULL,
    expires_at {bigint} NOT NULL,
    revoke_at {bigint},
    revision {bigint} NOT NULL
);
CREATE INDEX reviews_status ON reviews (status);
CREATE INDEX reviews_access ON reviews (user_id, connection_id);
CREATE INDEX reviews_session ON reviews (session_id);
CREATE TABLE review_events (
    review_id TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
    revision {bigint} NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    forced {bigint} NOT NULL,
    note TEXT,
    at {bigint} NOT NULL,
    PRIMARY KEY (review_id, revision)
);
",
    ),
    // The webhooks outbox: one row per event and endpoint, delivered at
    // least once, retried with backoff, kept across restarts; each
    // attempt's outcome in `webhook_attempts`. The endpoint's signing
    // secret is sealed with the gateway's key.
    Migration(
        "
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_url TEXT NOT NULL,
    secret {bytes} NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts {bigint} NOT NULL,
    next_attempt_at {bigint} NOT NULL,
    created_at {bigint} NOT NULL,
    updated_at {bigint} NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt {bigint} NOT NULL,
    at {bigint} NOT NULL,
    status_code {bigint},
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
",
    ),
    // The Slack messages posted for each review, to show its outcome.
    Migration(
        "
CREATE TABLE slack_messages (
    review_id TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (review_id, channel, ts)
);
",
    ),
];
