-- Kudos may name the ticket they thank someone for (`/kudos @bob why T-42`).
ALTER TABLE kudos ADD COLUMN ticket_id INTEGER REFERENCES tickets (id);
