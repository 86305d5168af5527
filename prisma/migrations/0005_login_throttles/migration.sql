-- The sign-in limit counts failures per username per address, and per address over every username
-- (username ''), in one row each. A try is counted in the database before its password is checked,
-- and past the limit each further try from there waits longer than the last (LoginThrottleRepository);
-- an attacker elsewhere can no longer lock a user out. failures: tries counted since the row was last
-- quiet for a whole window; last_at: when the last one was counted.
CREATE TABLE login_throttles (
  username text NOT NULL,
  address  text NOT NULL,
  failures integer NOT NULL,
  last_at  timestamptz(3) NOT NULL,
  PRIMARY KEY (username, address)
);
CREATE INDEX login_throttles_last_at_idx ON login_throttles(last_at);

-- One row per failed try, counted after the password was checked: parallel tries raced past it.
DROP TABLE login_attempts;
