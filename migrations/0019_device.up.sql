-- Device authorization grant (RFC 8628). Both codes are stored as SHA-256
-- hashes: the device code is a bearer credential, the user code is short
-- and a leaked table must not let anyone approve a pending login.
CREATE TABLE oauth2_device (
    device_code_hash   text PRIMARY KEY,
    user_code_hash     text NOT NULL UNIQUE,
    request_id         text NOT NULL,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes             text[] NOT NULL DEFAULT '{}',
    audience           text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    -- the polling interval in seconds; slow_down raises it for good
    poll_interval      integer NOT NULL CHECK (poll_interval > 0),
    last_polled_at     timestamptz,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    subject            text,
    browser_session_id text,
    auth_time          timestamptz
);
CREATE INDEX oauth2_device_expires_at_idx ON oauth2_device (expires_at);
