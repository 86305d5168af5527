-- The key a device's agent encrypts its local cache with when it keeps one between sessions. A table
-- of its own, so that device rows (read, listed and returned everywhere) never carry the secret.
-- The key is 32 random bytes, stored in base64 as it is served; forgetting it deletes the row.
CREATE TABLE device_cache_keys (
  device_id  uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  key        text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
