-- Small blobs of local storage written with the commit that records their artifacts, so that
-- an upload's only flush is its commit. Every process moves the rows it finds to their files,
-- flushes them, and deletes the rows; until then reads find the bytes here.
CREATE TABLE blob_journal (
    sha256  TEXT PRIMARY KEY,
    -- The bytes in base64 (standard alphabet): the one dialect of both engines has no binary type.
    body    TEXT NOT NULL,
    created TEXT NOT NULL
);
