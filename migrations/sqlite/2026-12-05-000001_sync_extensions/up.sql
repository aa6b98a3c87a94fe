-- When the task last changed in the client's tool: an older version is skipped.
ALTER TABLE tasks ADD COLUMN source_updated_at TIMESTAMP;

-- Idempotency keys and the answers stored under them.
CREATE TABLE idempotency_keys (
    token_id BIGINT NOT NULL REFERENCES api_tokens (id),
    idempotency_key TEXT NOT NULL,
    -- SHA-256 of the request that answered; NULL while the first request runs.
    fingerprint TEXT,
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    -- While the first request runs: when its claim lapses. Once answered: when the answer is forgotten.
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, idempotency_key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
