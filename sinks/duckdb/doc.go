// Package duckdb is the DuckDB destination: each stream lands in a table of
// one database file, with the stream's checkpoint stored in the same
// transaction as its rows, so a commit is exactly once as PostgreSQL's is.
//
// Rows are staged in an uncompressed Parquet file beside the database
// (written by the Parquet sink's encoder) and moved in at each commit with
// DuckDB's own Parquet reader: nested columns arrive as DuckDB's STRUCT
// and LIST types, amounts as DECIMAL(18,4), times as TIMESTAMPTZ, with no
// row-by-row conversion in Go.
//
// Type mapping (Arrow -> DuckDB): string -> VARCHAR (JSON for columns
// marked as JSON documents), bool -> BOOLEAN, int32 -> INTEGER, int64 ->
// BIGINT, float64 -> DOUBLE, decimal(p,s) -> DECIMAL(p,s), timestamp ->
// TIMESTAMPTZ, date32 -> DATE, binary -> BLOB, list<T> -> T[], struct ->
// STRUCT(...).
//
// Modes: append inserts; merge deletes the rows whose key the commit brings
// and inserts the commit's latest version of each (no index is needed, so
// none is built); overwrite loads a shadow table and swaps it in at the
// final commit, in one transaction.
//
// DuckDB lets one process write a database file at a time. The sink opens
// the file for the length of a run (claim, writers, checkpoint reads share
// one handle in the process) and closes it after, so other tools can query
// the file between runs; a run that finds the file held by another process
// is refused as a held claim (exit 3) naming that process.
//
// The driver needs cgo (DuckDB is a C++ library linked into the host). A
// host built without cgo still knows the sink's name and refuses it at its
// block, saying how to get a build that has it.
package duckdb
