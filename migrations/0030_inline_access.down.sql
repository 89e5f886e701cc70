-- Inline access tokens get rows of their own again, so they stay live.
INSERT INTO oauth2_access (signature, request_id, requested_at, client_id, scopes, granted_scopes,
    requested_audience, granted_audience, form_data, session_data, subject, active, expires_at)
SELECT access_token_signature, request_id, requested_at, client_id, scopes, granted_scopes,
    requested_audience, granted_audience, form_data, session_data, subject, true,
    COALESCE((session_data->'id_token'->'expires_at'->>'access_token')::timestamptz,
        (session_data->'expires_at'->>'access_token')::timestamptz, expires_at)
FROM oauth2_refresh WHERE active AND access_inline
ON CONFLICT (signature) DO NOTHING;
DROP INDEX oauth2_refresh_inline_access_idx;
ALTER TABLE oauth2_refresh DROP COLUMN access_inline;
