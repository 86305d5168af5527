-- uPC initial schema: users and their tokens, devices, workspaces with their versions,
-- stored objects and packs, leases, audit events and login attempts.

CREATE TYPE "Role" AS ENUM ('user', 'admin');
CREATE TYPE "VersionKind" AS ENUM ('sync', 'logout', 'checkpoint', 'recovery', 'conflict');

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  username      text NOT NULL UNIQUE,
  role          "Role" NOT NULL DEFAULT 'user',
  password_hash text NOT NULL,
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz(3) NOT NULL DEFAULT now(),
  updated_at    timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
  id           uuid PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash   text NOT NULL UNIQUE,
  created_at   timestamptz(3) NOT NULL DEFAULT now(),
  expires_at   timestamptz(3) NOT NULL,
  revoked_at   timestamptz(3),
  last_used_at timestamptz(3),
  address      text
);
CREATE INDEX tokens_user_id_idx ON tokens(user_id);

CREATE TABLE devices (
  id            uuid PRIMARY KEY,
  owner_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  machine_id    text NOT NULL,
  name          text NOT NULL,
  os            text NOT NULL,
  agent_version text NOT NULL,
  created_at    timestamptz(3) NOT NULL DEFAULT now(),
  last_seen_at  timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (owner_id, machine_id)
);

CREATE TABLE workspaces (
  id              uuid PRIMARY KEY,
  owner_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name            text NOT NULL,
  policy          jsonb,
  head_version_id uuid UNIQUE,
  fencing_token   bigint NOT NULL DEFAULT 0,
  quota_bytes     bigint,
  created_at      timestamptz(3) NOT NULL DEFAULT now(),
  updated_at      timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (owner_id, name)
);

CREATE TABLE versions (
  id           uuid PRIMARY KEY,
  workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  parent_id    uuid REFERENCES versions(id) ON DELETE SET NULL,
  root_tree    text NOT NULL,
  kind         "VersionKind" NOT NULL,
  device_id    uuid REFERENCES devices(id) ON DELETE SET NULL,
  author_id    uuid,
  stats        jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX versions_workspace_id_created_at_idx ON versions(workspace_id, created_at);

-- HEAD points into the workspace's own history. DEFERRABLE so that deleting a workspace
-- (which cascades to its versions) does not trip over its own HEAD.
ALTER TABLE workspaces ADD CONSTRAINT workspaces_head_version_id_fkey
  FOREIGN KEY (head_version_id) REFERENCES versions(id) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE packs (
  workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  hash         text NOT NULL,
  size         bigint NOT NULL,
  object_count integer NOT NULL,
  created_at   timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, hash)
);

CREATE TABLE stored_objects (
  workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  hash         text NOT NULL,
  size         bigint NOT NULL,
  pack_hash    text,
  pack_offset  bigint,
  created_at   timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, hash),
  FOREIGN KEY (workspace_id, pack_hash) REFERENCES packs(workspace_id, hash) ON DELETE CASCADE,
  CHECK ((pack_hash IS NULL) = (pack_offset IS NULL))
);

CREATE TABLE leases (
  workspace_id  uuid PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  device_id     uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  user_id       uuid NOT NULL,
  fencing_token bigint NOT NULL,
  acquired_at   timestamptz(3) NOT NULL,
  renewed_at    timestamptz(3) NOT NULL,
  expires_at    timestamptz(3) NOT NULL
);

CREATE TABLE audit_events (
  id           bigserial PRIMARY KEY,
  at           timestamptz(3) NOT NULL DEFAULT now(),
  actor_id     uuid,
  action       text NOT NULL,
  target_type  text NOT NULL,
  target_id    text,
  workspace_id uuid,
  address      text,
  details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at_idx ON audit_events(at);
CREATE INDEX audit_events_actor_id_at_idx ON audit_events(actor_id, at);
CREATE INDEX audit_events_workspace_id_at_idx ON audit_events(workspace_id, at);

CREATE TABLE login_attempts (
  id       bigserial PRIMARY KEY,
  at       timestamptz(3) NOT NULL DEFAULT now(),
  username text NOT NULL,
  address  text NOT NULL
);
CREATE INDEX login_attempts_username_at_idx ON login_attempts(username, at);
CREATE INDEX login_attempts_address_at_idx ON login_attempts(address, at);
