-- Index pages a remote's upstream answered with a validator (ETag or Last-Modified), kept so
-- that the next request for the same page (a re-sync, a pull-through page) is conditional and a
-- 304 is answered from here. One row per remote, URL and request headers (the plugin's Accept
-- picks JSON or HTML); only text pages up to a size limit are kept (plugins/host_http.rs).
CREATE TABLE upstream_pages (
    remote_id       TEXT NOT NULL REFERENCES remotes (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    -- The response's headers as a JSON list of [name, value] pairs.
    headers         TEXT NOT NULL,
    body            TEXT NOT NULL,
    fetched         TEXT NOT NULL,
    PRIMARY KEY (remote_id, url, request_headers)
);
