-- Crosswalk's store, version 1. Records are the JSON documents the embedded store
-- keeps (`doc`), beside the columns they are found by. Text keys sort by byte
-- (COLLATE "C"), as the embedded store's keys do, whatever the database's locale.

CREATE TABLE tenants (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL
);

-- Only the sha256 of a key's secret is stored.
CREATE TABLE api_keys (
    secret_sha256 bytea PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    doc text NOT NULL
);

-- `credentials` are sealed (ChaCha20-Poly1305 under CROSSWALK_SECRET_KEY) before
-- they reach the database.
CREATE TABLE connections (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    doc text NOT NULL,
    credentials bytea
);
CREATE INDEX connections_by_tenant ON connections (tenant_id, id);

-- The last version of each mapping: its row is locked by every append, which
-- numbers versions one after another whichever replica appends.
CREATE TABLE mapping_heads (
    connection_id text COLLATE "C" NOT NULL,
    entity text COLLATE "C" NOT NULL,
    last bigint NOT NULL,
    PRIMARY KEY (connection_id, entity)
);

-- Append-only, but for pruning past the versions kept.
CREATE TABLE mapping_versions (
    connection_id text COLLATE "C" NOT NULL,
    entity text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    doc text NOT NULL,
    PRIMARY KEY (connection_id, entity, version)
);

CREATE TABLE plugins (
    tenant_id text COLLATE "C" NOT NULL,
    sha256 text COLLATE "C" NOT NULL,
    doc text NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);
CREATE INDEX plugins_by_sha256 ON plugins (sha256);

-- A component's bytes, once for every tenant that uploaded them.
CREATE TABLE plugin_bytes (
    sha256 text COLLATE "C" PRIMARY KEY,
    bytes bytea NOT NULL
);

-- Bounded: each append drops the entries past the newest kept.
CREATE TABLE error_log (
    seq bigserial PRIMARY KEY,
    connection_id text COLLATE "C" NOT NULL,
    doc text NOT NULL
);
CREATE INDEX error_log_by_connection ON error_log (connection_id, seq);

CREATE TABLE subscriptions (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    doc text NOT NULL
);
CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant_id, id);

-- The webhook outbox: ids start with their due time, so id order is delivery order.
CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    subscription_id text COLLATE "C" NOT NULL,
    due_ms bigint NOT NULL,
    doc text NOT NULL
);
CREATE INDEX outbox_by_subscription ON outbox (subscription_id, id);

-- Which replica delivers a subscription's due deliveries, until when: one at a time,
-- in order. A replica that stops mid-delivery leaves its claim to expire, and
-- another claims the subscription.
CREATE TABLE outbox_claims (
    subscription_id text COLLATE "C" PRIMARY KEY,
    claimed_by text NOT NULL,
    claimed_until_ms bigint NOT NULL
);

CREATE TABLE delivery_log (
    seq bigserial PRIMARY KEY,
    subscription_id text COLLATE "C" NOT NULL,
    doc text NOT NULL
);
CREATE INDEX delivery_log_by_subscription ON delivery_log (subscription_id, seq);

-- What the replicas of one store agree on once: who set the store up, which secret
-- key seals it.
CREATE TABLE store_meta (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
