// Package store defines the document store cmbs keeps its categories and
// entities in, and the behaviour every backend must share.
//
// Callers (occi, broker) see one small interface, Store: Get, Put with
// revisions (a stale revision is a conflict, never an overwrite), Delete,
// List by id prefix, Watch (the change feed), an atomic batch Write and a
// paged Scan. Backends live in subpackages: store/bolt (embedded, the
// default) and store/couch (CouchDB through kivik). Abilities a backend may
// implement natively, such as attribute queries (Finder) and index creation
// (Indexer), are separate interfaces; the package-level Find falls back to
// a scan when a backend lacks Finder, in the manner of database/sql and
// kivik drivers. Entities are stored under their location path, categories
// under "category:" and their id. One conformance suite (store/storetest)
// runs against both backends.
//
// Errors are values callers test with errors.Is: ErrNotFound, ErrConflict,
// ErrClosed, ErrInvalid, and ErrUnavailable when the database cannot be
// reached (the OCCI interface answers 503 with Retry-After for it).
//
// # The embedded store (file:DIR)
//
// bbolt, the B+tree store behind etcd: one file, ACID transactions with
// fsync on commit (crash-safe), a file lock for single-process use, no
// server to run, pure Go. A lone writer commits at once; overlapping
// writers go through db.Batch and share one fsync (group commit). The
// indexes the server asks for are real secondary indexes kept in the same
// transaction as each write, so the queries on kind, link source and
// target, and category location read index entries, not every document (a
// resource GET with 10 000 documents stored: 0.1 ms, against 2 ms
// scanning). The change feed is an in-process fan-out in commit order.
//
// # CouchDB (http://user:pass@host:5984/db)
//
// Through kivik v4's couchdb driver: the database is created if missing,
// Mango indexes are created at start for the queries the server makes
// (category by location, entity by kind, link by source and target),
// queries run as _find with paging and name the index that serves them
// (use_index, since the planners would otherwise pick _all_docs for a
// selector holding an _id range), and the change feed is the continuous
// _changes feed. The tests run it against a real pouchdb-server.
package store
