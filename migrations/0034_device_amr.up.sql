-- How the user who approved a device authorization logged in (RFC 8176
-- amr of the browser session), so the device's tokens say it too.
ALTER TABLE oauth2_device ADD COLUMN amr text[];
