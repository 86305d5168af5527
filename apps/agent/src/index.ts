/** The agent `upc` (issue 4): login and restore, write-through sync, logout. This package is its home. */
export const AGENT_VERSION = '0.1.0';
