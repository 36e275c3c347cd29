-- dev-only: runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- One database per service; each service creates its own tables on start.
-- The password is a dev-only placeholder; never reuse it anywhere else.
CREATE ROLE slotcast LOGIN PASSWORD 'dev-only-slotcast';

CREATE DATABASE scheduling OWNER slotcast;
CREATE DATABASE matching   OWNER slotcast;
CREATE DATABASE email      OWNER slotcast;
CREATE DATABASE inapp      OWNER slotcast;
CREATE DATABASE sms        OWNER slotcast;
