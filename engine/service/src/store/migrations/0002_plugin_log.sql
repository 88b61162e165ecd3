-- Crosswalk's store, version 2: each connection's plugin log, bounded as the error
-- log is (each append drops the lines past the newest kept).

CREATE TABLE plugin_log (
    seq bigserial PRIMARY KEY,
    connection_id text COLLATE "C" NOT NULL,
    doc text NOT NULL
);
CREATE INDEX plugin_log_by_connection ON plugin_log (connection_id, seq);
