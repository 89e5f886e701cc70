-- Extensions and the shared helpers later migrations rely on.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
