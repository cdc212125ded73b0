-- The names the platforms show for accounts not configured under [[people]], learned when
-- they act or are flagged, so alerts, `/ticket show`, saved replies and digests name people
-- as the platform does instead of `slack:U0AGENT`, on every instance and after a restart.
CREATE TABLE account_names (
    account    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    learned_at TIMESTAMPTZ NOT NULL
);
