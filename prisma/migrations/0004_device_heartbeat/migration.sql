-- What a device's agent said with its last heartbeat (HeartbeatRequest): the sync state of its
-- session and what it had not yet made durable. All null until an agent that reports them beats;
-- an older agent's empty heartbeat moves only last_seen_at. reported_at is when they were said.
ALTER TABLE devices
  ADD COLUMN session_state   text,
  ADD COLUMN pending_changes bigint,
  ADD COLUMN pending_bytes   bigint,
  ADD COLUMN reported_at     timestamptz(3);

-- GET /stats counts the versions of every workspace by hour and by day.
CREATE INDEX versions_created_at_idx ON versions(created_at);
